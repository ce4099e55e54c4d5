"""Held-out group-level scores and the win rate of one model's generations over another's (same seeds).

The group-level score is the one DPO pairs are ranked by (:mod:`idglow.eval.group_score`), computed here
on benchmark generations with the evaluation ``judge`` and the benchmark's ``mu_real`` instead of the
training ``encoder``: DPO never saw these identities, this embedder, or this calibration target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import stats

from idglow.cast.crops import to_tensor
from idglow.data.images import read_rgb
from idglow.data.manifest import load_manifest
from idglow.eval.group_score import PairScoring, group_score, subject_scores
from idglow.eval.mu_real import read_mu_real


@torch.no_grad()
def benchmark_group_scores(generations: str | Path, manifest: str | Path, judges: dict[str, torch.nn.Module],
                           scoring: PairScoring | None = None, ids: set[str] | None = None) -> dict[str, float]:
    """Group-level score of each ``<id>.png`` in ``generations`` (records of ``manifest``, optionally only ``ids``).

    Raises:
        FileNotFoundError: a record's image is missing (naming it).
    """
    scoring, manifest, generations = scoring or PairScoring(), Path(manifest), Path(generations)
    mu = read_mu_real(manifest)
    out = {}
    for record in load_manifest(manifest, "benchmark"):
        if ids is not None and record["id"] not in ids:
            continue
        path = generations / f"{record['id']}.png"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no generation for {manifest}:{record['_line']}")
        where = f"{manifest}:{record['_line']}"
        refs = torch.stack([to_tensor(read_rgb(manifest.parent / r, f"{where}: refs")) for r in record["refs"]])
        out[record["id"]] = record_group_score(to_tensor(read_rgb(path, str(path))), refs, record, judges, mu, scoring)
    return out


@torch.no_grad()
def record_group_score(image: torch.Tensor, refs: torch.Tensor, record: dict, judges: dict[str, torch.nn.Module],
                       mu: float, scoring: PairScoring | None = None) -> float:
    """The group-level score of one generated image [3, H, W] in [-1, 1] of a benchmark ``record``, given its reference
    crops [N, 3, h, w]: judged with the evaluation ``judge`` against the benchmark's ``mu`` (its mu_real)."""
    expected = record["expected"]
    ages = [expected.get("age", "child" if record["task"] == "age" else "adult")] * len(refs)
    scores = subject_scores(image, judges["judge"](refs), ages, expected["clothing"], judges, mu, embedder="judge")
    return group_score(scores, scoring or PairScoring())


def win_rate(candidate: dict[str, float], baseline: dict[str, float], confidence: float = 0.95,
             resamples: int = 10_000) -> dict[str, float]:
    """Share of records where ``candidate`` scores above ``baseline`` (ties count half), with a bootstrap
    percentile interval over records.

    Returns:
        ``{"win_rate", "low", "high", "wins", "ties", "losses", "records", "mean_gain"}``.
    """
    keys = sorted(candidate.keys() & baseline.keys())
    if len(keys) < 2:
        raise ValueError(f"win_rate: need at least 2 records scored by both, got {len(keys)}")
    gain = np.array([candidate[k] - baseline[k] for k in keys])
    outcome = np.where(gain > 0, 1.0, np.where(gain < 0, 0.0, 0.5))
    interval = stats.bootstrap((outcome,), np.mean, confidence_level=confidence, n_resamples=resamples,
                               method="percentile", random_state=0).confidence_interval
    return {"win_rate": float(outcome.mean()), "low": float(interval.low), "high": float(interval.high),
            "wins": int((gain > 0).sum()), "ties": int((gain == 0).sum()), "losses": int((gain < 0).sum()),
            "records": len(keys), "mean_gain": float(gain.mean())}
