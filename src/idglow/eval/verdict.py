"""A claim's verdict from paired comparisons: reproduced, partly, or not (``benchmarks/claims.py``, issue 22).

A claim names the model it is about (the paper's variant) and the checks that make it true: one metric of that model
higher or lower than an alternative's. A check holds when its 95% interval of the difference lies wholly on the
claimed side of zero (:func:`idglow.eval.pooling.paired_difference`), or, for a set-level metric with no per-record
values (Fréchet distance), when every training seed shows the difference on the claimed side. Verdict: every check
holds -> reproduced; some -> partly; none -> not reproduced; a check with no data -> not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMES = {"facesim_norm": "FaceSim/mu", "frechet_judge": "Fréchet", "copy_paste": "copy-paste", "child_rate": "child rate",
         "mini_adult_rate": "mini-adult rate", "leakage_rate": "leakage", "swap_rate": "swap", "count_accuracy": "count acc",
         "colour_accuracy": "colour acc", "group_score": "group score"}


@dataclass(frozen=True)
class Check:
    """The claimed model's ``metric`` on ``benchmark`` is ``higher`` (else lower) than model ``against``'s; ``model``
    names the claimed model where a claim's checks are about several (else the claim's own)."""

    benchmark: str
    metric: str
    against: str
    higher: bool
    model: str | None = None


def holds(check: Check, difference: dict | None) -> bool | None:
    """Whether ``difference`` (claimed model minus ``check.against``: ``{"difference", "interval"}`` or
    ``{"difference", "per_seed"}``) is on the claimed side of zero beyond doubt; None without data."""
    if difference is None:
        return None
    sign = 1.0 if check.higher else -1.0
    if "interval" in difference:
        return min(sign * v for v in difference["interval"]) > 0
    return all(sign * v > 0 for v in difference["per_seed"])


def verdict(results: list[bool | None]) -> str:
    """``reproduced`` when every check holds, ``partly`` when some do, ``not reproduced`` when none, ``not measured``
    when a check has no data."""
    if not results or any(r is None for r in results):
        return "not measured"
    return "reproduced" if all(results) else "partly" if any(results) else "not reproduced"


def describe(check: Check, difference: dict | None) -> str:
    """One check as text: ``FaceSim/mu vs constant +0.031 [+0.012, +0.050] ✓``."""
    name = NAMES.get(check.metric, check.metric)
    if difference is None:
        return f"{name} vs {check.against}: not measured"
    text = f"{name} {'↑' if check.higher else '↓'} vs {check.against}: {difference['difference']:+.3f}"
    if "interval" in difference:
        text += " [{:+.3f}, {:+.3f}]".format(*difference["interval"])
    else:
        text += " (per seed " + ", ".join(f"{v:+.2f}" for v in difference["per_seed"]) + ")"
    return text + (" ✓" if holds(check, difference) else " ✗")
