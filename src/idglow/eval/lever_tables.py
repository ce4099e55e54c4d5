"""Tables of one lever against its baseline at equal budget (issue 19's exploratory runs): benchmark scores paired
over records, and what the references do to the held-out flow-matching loss by sigma (``diagnostics.jsonl``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference


def lever_table(benchmark: str, keys: Sequence[str], title: str, baseline: str | Path,
                lever: str | Path) -> tuple[list[str], dict]:
    """A lever against its baseline as markdown: one ``sft-eval`` folder each (one noise seed), their estimates of
    ``keys`` and judge Fréchet, and the lever minus the baseline paired over records. Returns the table's lines and the
    :func:`folder_difference` of each key (and ``frechet_judge``)."""
    summaries = {"baseline": json.loads((Path(baseline) / f"{benchmark}.json").read_text()),
                 "lever": json.loads((Path(lever) / f"{benchmark}.json").read_text())}
    diffs = {k: folder_difference([lever], [baseline], benchmark, k) for k in (*keys, "frechet_judge")}
    lines = [f"### {title}\n", "| | " + " | ".join(keys) + " | frechet_judge |", "|---|" + "---|" * (len(keys) + 1)]
    for name, summary in summaries.items():
        lines.append(f"| {name} | " + " | ".join(estimate_text(summary, k) for k in keys)
                     + f" | {summary['frechet_judge']:.2f} |")
    lines += ["| lever minus baseline | " + " | ".join(difference_text(diffs[k]) for k in (*keys, "frechet_judge"))
              + " |", ""]
    return lines, diffs


def reference_effect(diagnostics: str | Path, sigmas: Sequence[str]) -> dict:
    """Held-out flow loss with the true references minus without any, per sigma (as written in ``diagnostics.jsonl``,
    e.g. ``"0.05"``), at the run's last diagnostic step, with that ``step`` (positive: the references hurt)."""
    last = [json.loads(line) for line in Path(diagnostics).read_text().splitlines() if line.strip()][-1]
    return {s: last[f"heldout_true_sigma_{s}"] - last[f"heldout_none_sigma_{s}"] for s in sigmas} | {"step": last["step"]}


def reference_effect_table(effects: dict[str, dict], sigmas: Sequence[str]) -> list[str]:
    """Markdown of :func:`reference_effect` per run name (x1000)."""
    lines = ["### The references' effect on the held-out flow loss (true minus none, x1000; + = they hurt)\n",
             "| run (step) | " + " | ".join(f"sigma {s}" for s in sigmas) + " |", "|---|" + "---|" * len(sigmas)]
    for name, e in effects.items():
        lines.append(f"| {name} ({e['step']}) | " + " | ".join(f"{1000 * e[s]:+.2f}" for s in sigmas) + " |")
    return lines
