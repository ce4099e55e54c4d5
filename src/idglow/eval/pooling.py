"""Results over several training seeds: per-record scores pooled into one summary with bootstrap intervals over
the pooled records, beside each seed's own value and the seed-to-seed spread (``benchmarks/claims.py``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from idglow.eval.cast_bench import summarise

SPREAD_KEYS = ("facesim_norm", "count_accuracy", "identification", "leakage_rate", "swap_rate", "colour_accuracy", "child_rate",
               "mini_adult_rate", "copy_paste", "group_score")


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


# Each metric of :func:`summarise` as a ratio of per-record sums, sum(numerator) / sum(denominator): the record's
# (numerator, denominator), or None where the record does not count towards that metric.
RATIO_TERMS = {
    "facesim_norm": lambda s, mu: (s["facesim"] / mu, 1.0),
    "count_accuracy": lambda s, mu: (float(s["count_ok"]), 1.0),
    "identification": lambda s, mu: (float(s["identified"]), float(s["size"])) if "identified" in s else None,
    "leakage_rate": lambda s, mu: (float(s["leaked"]), float(s["matched"])) if s["size"] >= 2 and s["matched"] else None,
    "colour_accuracy": lambda s, mu: (float(s["own_colour"]), float(s["matched"])) if s["matched"] else None,
    "swap_rate": lambda s, mu: (float(s["swaps"]), float(s["size"])) if s.get("swaps") is not None else None,
    "copy_paste": lambda s, mu: (s["copy_paste"], 1.0) if s.get("copy_paste") is not None else None,
    "group_score": lambda s, mu: (s["group_score"], 1.0) if s.get("group_score") is not None else None,
    "child_rate": lambda s, mu: (s["child"] * s["size"], float(s["size"])) if s["task"] == "age" else None,
    "mini_adult_rate": lambda s, mu: (s["adult"] * s["size"], float(s["size"])) if s["task"] == "age" else None,
}


def paired_difference(a: Sequence[Sequence[dict]], b: Sequence[Sequence[dict]], key: str, mu_real: float,
                      confidence: float = 0.95, resamples: int = 2000) -> dict | None:
    """``key`` of model A minus model B on the same records, pooled over seeds, with a paired bootstrap interval.

    ``a[k]`` and ``b[k]`` are training seed k's per-record scores of the two models (:func:`read_scores`); a record is
    paired with the one of the same seed and id (the same prompt, references and noise), and only records that count
    for ``key`` in both enter. Resampling pairs whole keeps what the two models share out of the interval, which is
    why it is much narrower than the difference of two separate intervals.

    Returns:
        ``{"difference", "interval": [low, high], "records"}``, or None when no record counts for ``key``.
    """
    if key not in RATIO_TERMS:
        raise ValueError(f"key: expected one of {sorted(RATIO_TERMS)}, got {key!r}")
    if len(a) != len(b):
        raise ValueError(f"a, b: the same training seeds are needed ({len(a)} against {len(b)})")
    term = RATIO_TERMS[key]
    rows = []
    for seed, (scores_a, scores_b) in enumerate(zip(a, b)):
        by_id = {s["id"]: s for s in scores_b}
        for s in scores_a:
            if s["id"] not in by_id:
                raise ValueError(f"seed {seed}: record {s['id']} was scored for one model only (evaluate both on the same records)")
            pair = term(s, mu_real), term(by_id[s["id"]], mu_real)
            if pair[0] is not None and pair[1] is not None:
                rows.append([*pair[0], *pair[1]])
    if not rows:
        return None
    num_a, den_a, num_b, den_b = np.asarray(rows, dtype=float).T

    def difference(na, da, nb, db):
        return na.sum() / da.sum() - nb.sum() / db.sum()

    value = float(difference(num_a, den_a, num_b, den_b))
    if len(rows) < 2:
        return {"difference": value, "interval": [value, value], "records": len(rows)}
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(rows), size=(resamples, len(rows)))
    samples = (num_a[draws].sum(1) / den_a[draws].sum(1)) - (num_b[draws].sum(1) / den_b[draws].sum(1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {"difference": value, "interval": [float(low), float(high)], "records": len(rows)}


def independent_difference(a: Sequence[dict], b: Sequence[dict], key: str, mu_real_a: float, mu_real_b: float,
                           confidence: float = 0.95, resamples: int = 10000) -> dict | None:
    """``key`` of model A minus model B scored on *different* records (other benchmarks, other casts, each over its
    own ``mu_real``), with a bootstrap interval that resamples each side's records on its own.

    ``a`` and ``b`` are per-record scores (:func:`read_scores`). Without pairing, what the two sets of records differ
    in stays in the interval, so it is wider than :func:`paired_difference`'s on shared records.

    Returns:
        ``{"difference", "interval": [low, high], "records": [n_a, n_b]}``, or None when either side has no record
        that counts for ``key``.
    """
    if key not in RATIO_TERMS:
        raise ValueError(f"key: expected one of {sorted(RATIO_TERMS)}, got {key!r}")
    term = RATIO_TERMS[key]
    sides = []
    for scores, mu_real in ((a, mu_real_a), (b, mu_real_b)):
        rows = [t for t in (term(s, mu_real) for s in scores) if t is not None]
        if not rows:
            return None
        sides.append(np.asarray(rows, dtype=float).T)
    value = float(sum(sign * num.sum() / den.sum() for sign, (num, den) in zip((1, -1), sides)))
    rng = np.random.default_rng(0)
    samples = np.zeros(resamples)
    for sign, (num, den) in zip((1, -1), sides):
        draws = rng.integers(0, len(num), size=(resamples, len(num)))
        samples += sign * num[draws].sum(1) / den[draws].sum(1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {"difference": value, "interval": [float(low), float(high)], "records": [len(sides[0][0]), len(sides[1][0])]}


def evaluated(folder: str | Path, benchmarks: Sequence[str]) -> bool:
    """Whether ``folder`` holds a finished ``sft-eval`` of every benchmark (summary and per-record scores)."""
    return all((Path(folder) / f"{b}{ext}").is_file() for b in benchmarks for ext in (".json", ".scores.jsonl"))


def keep_evaluation(source: str | Path, kept: str | Path, benchmarks: Sequence[str]) -> Path:
    """Copy ``source``'s summaries and per-record scores of ``benchmarks`` to ``kept`` (a committed folder); returns it."""
    kept = Path(kept)
    kept.mkdir(parents=True, exist_ok=True)
    for bench in benchmarks:
        for ext in (".json", ".scores.jsonl"):
            shutil.copyfile(Path(source) / f"{bench}{ext}", kept / f"{bench}{ext}")
    return kept


def folder_difference(a: Sequence[str | Path], b: Sequence[str | Path], benchmark: str, key: str) -> dict | None:
    """``key`` on ``benchmark`` of models A minus B, each given as one ``sft-eval`` folder per training seed: a
    :func:`paired_difference` over the pooled records, or for Fréchet (a set-level distance, no per-record values)
    ``{"difference": mean, "per_seed": [...]}``."""
    summaries = lambda folders: [json.loads((Path(f) / f"{benchmark}.json").read_text()) for f in folders]  # noqa: E731
    if key == "frechet_judge":
        per_seed = [x[key] - y[key] for x, y in zip(summaries(a), summaries(b))]
        return {"difference": sum(per_seed) / len(per_seed), "per_seed": per_seed}
    scores = lambda folders: [read_scores(f, benchmark) for f in folders]  # noqa: E731
    return paired_difference(scores(a), scores(b), key, summaries(a)[0]["mu_real"])


def estimate_text(summary: dict | None, key: str) -> str:
    """``key`` of an ``sft-eval`` summary (or a :func:`pooled_summary`) as table text: ``0.664 [0.644, 0.684]``, the
    point estimate alone when it has no interval, ``–`` when it was not measured."""
    value = None if summary is None else summary.get(key)
    if value is None:
        return "–"
    interval = summary.get("intervals", {}).get(key)
    return f"{value:.3f}" + (" [{:.3f}, {:.3f}]".format(*interval) if interval else "")


def difference_text(d: dict | None, mean_digits: int = 3) -> str:
    """A :func:`folder_difference` as table text: ``+0.041 [+0.021, +0.063]``, or for Fréchet the mean and each seed's
    difference; ``–`` when nothing was measured."""
    if d is None:
        return "–"
    if "interval" in d:
        return "{:+.3f} [{:+.3f}, {:+.3f}]".format(d["difference"], *d["interval"])
    return f"{d['difference']:+.{mean_digits}f} (per seed " + ", ".join(f"{v:+.2f}" for v in d["per_seed"]) + ")"
