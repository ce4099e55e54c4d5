"""``idglow demo``: the whole method on the synthetic cast, from the shipped base model to ``report.html``.

Stages (each reused when re-run, redone with ``--force``): cast, judges (shipped, or trained with
``--train-judges``) and mu_real, SFT, pairs, DPO,
one prompt-refine round, evaluation of both held-out benchmarks; then the report.
"""

from idglow.demo.presets import PRESETS, DemoPreset
from idglow.demo.runner import STAGES, run_demo

__all__ = ["PRESETS", "STAGES", "DemoPreset", "run_demo"]
