"""Names and default paths shared across the package, defined once.

The default paths are relative to the working directory, as the README's commands run from the
repository root: the shipped models under ``assets/`` and the cast's data under ``data/cast``.
"""

from __future__ import annotations

TASKS = ("group", "age")  # the method's two tasks; tensors that index tasks use this order

ASSETS = "assets"
JUDGES = f"{ASSETS}/judges"          # the cast's judges (detector, embedders, age and colour classifiers)
BASE = f"{ASSETS}/base"              # the shipped base text-to-image model of the cast
IDGLOW_MODEL = f"{ASSETS}/idglow"    # the shipped IdGlow model of the cast (SFT + DPO, exported)
CAST = "data/cast"                   # where `idglow synth build` writes the cast by default


def cast_manifest(name: str, cast: str = CAST) -> str:
    """The path of one of the cast's manifests, e.g. ``cast_manifest("sft-group-train")``."""
    return f"{cast}/{name}.jsonl"


SFT_TRAIN = [cast_manifest("sft-group-train"), cast_manifest("sft-age-train")]
SFT_HELDOUT = [cast_manifest("sft-group-heldout"), cast_manifest("sft-age-heldout")]
BENCHMARKS = [cast_manifest("synth-group"), cast_manifest("synth-age")]
HELDOUT = [*SFT_HELDOUT, *BENCHMARKS]  # every manifest whose identities training must never see

# Arithmetic of sampling (idglow.utils.precision): the choices, and the variable holding the process default.
PRECISIONS = ("auto", "bf16", "fp32")
PRECISION_ENV = "IDGLOW_PRECISION"
