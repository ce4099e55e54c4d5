"""Results over several training seeds: per-record scores pooled into one summary with bootstrap intervals over
the pooled records, beside each seed's own value and the seed-to-seed spread (``benchmarks/claims.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from idglow.eval.cast_bench import summarise

SPREAD_KEYS = ("facesim_norm", "count_accuracy", "identification", "leakage_rate", "swap_rate", "child_rate", "mini_adult_rate",
               "copy_paste")


def read_scores(folder: str | Path, benchmark: str) -> list[dict]:
    """The per-record scores ``idglow train sft-eval`` wrote to ``folder/<benchmark>.scores.jsonl``."""
    path = Path(folder) / f"{benchmark}.scores.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-record scores (written by `idglow train sft-eval`)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pooled_summary(per_seed: Sequence[Sequence[dict]], mu_real: float) -> dict:
    """:func:`summarise` of every seed's records together (its ``intervals`` resample the pooled records), plus
    ``per_seed`` (each seed's value of :data:`SPREAD_KEYS`) and ``spread`` (max - min over seeds) and ``seeds``."""
    if not per_seed or any(not scores for scores in per_seed):
        raise ValueError("per_seed: every training seed needs at least one scored record")
    pooled = summarise([s for scores in per_seed for s in scores], mu_real)
    singles = [summarise(list(scores), mu_real) for scores in per_seed]
    pooled["seeds"] = len(per_seed)
    pooled["per_seed"] = {k: [m.get(k) for m in singles] for k in SPREAD_KEYS if pooled.get(k) is not None}
    pooled["spread"] = {k: float(np.ptp([v for v in values if v is not None])) for k, values in pooled["per_seed"].items()
                        if any(v is not None for v in values)}
    return pooled
