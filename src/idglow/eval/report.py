"""Evaluation outputs: ``metrics.json``, a Markdown table, per-image scores and plots; ``--compare`` tables.

Orchestration around :mod:`idglow.eval.suite` (scoring) and :mod:`idglow.eval.cast_bench` (cast extras).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from idglow.faces import load_backend
from idglow.utils.defaults import JUDGES
from idglow.utils.io import atomic_write

TABLE_KEYS = [("facesim", "FaceSim"), ("facesim_norm", "FaceSim/mu"), ("identification", "identified"), ("id_conf", "ID-Conf"),
              ("count_accuracy", "count acc"), ("swap_rate", "swap rate"), ("child_rate", "child rate"),
              ("mini_adult_rate", "mini-adult rate"), ("leakage_rate", "leakage"), ("colour_accuracy", "colour acc"),
              ("frechet_judge", "Fréchet (judge)"), ("artifact_score", "artifact")]


def evaluate_generations(generations: str | Path, manifest: str | Path, out: str | Path, backend: str = "synth",
                         judges: str = JUDGES, model_dir: str | None = None, mu_real: float | None = None,
                         skip_missing: bool = False, skip_bad: bool = False, progress: bool = True,
                         check_prompts: bool = True, ids: set[str] | None = None) -> dict:
    """Score a folder of generations against its benchmark; write the outputs under ``out``.

    Args:
        backend: ``synth | dlib | insightface`` (:func:`idglow.faces.load_backend`).
        mu_real: FaceSim of true photos to normalise by (default: ``<manifest>.mu_real.json`` if present).
        ids: score only these records (a subset generated on purpose; others are not "missing").

    Returns:
        the metrics written to ``out/metrics.json``.
    """
    from idglow.eval.cast_bench import cast_extras
    from idglow.eval.mu_real import read_mu_real
    from idglow.eval.suite import score_folder, summarise_identity

    generations, manifest, out = Path(generations), Path(manifest), Path(out)
    faces = load_backend(backend, judges=judges, model_dir=model_dir)
    scores, images, skipped = score_folder(generations, manifest, faces, skip_missing, skip_bad, progress, check_prompts, ids)
    for kind in ("missing", "unreadable"):
        if skipped[kind]:
            print(f"warning: eval skipped {skipped[kind]} {kind} generation(s) in {generations}", file=sys.stderr)
    metrics = summarise_identity(scores, mu_real if mu_real is not None else read_mu_real(manifest, required=False))
    if backend == "synth":
        extras, cast_scores = cast_extras(images, manifest, faces.judges)
        metrics.update(extras)
        for score, cast in zip(scores, cast_scores):  # per subject, for the badcase library
            score.update({k: cast[k] for k in ("leaked_slots", "adult_slots", "unmatched_slots")})
    metrics.update({"backend": backend, "benchmark": str(manifest), "generations": str(generations), "skipped": skipped})
    write_outputs(out, metrics, scores)
    return metrics


def markdown_table(rows: dict[str, dict]) -> str:
    """One row per run, the metrics of :data:`TABLE_KEYS` that any row has."""
    keys = [(k, name) for k, name in TABLE_KEYS if any(r.get(k) is not None for r in rows.values())]
    lines = ["| run | images | " + " | ".join(name for _, name in keys) + " |", "|---|---|" + "---|" * len(keys)]
    for run, r in rows.items():
        cells = ["–" if r.get(k) is None else f"{r[k]:.3f}" for k, _ in keys]
        lines.append(f"| {run} | {r['images']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, metrics: dict, scores: list[dict]) -> None:
    """``metrics.json``, ``metrics.md``, ``scores.jsonl`` (per image) and ``by_size.png``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2) + "\n"))
    table = markdown_table({metrics["generations"]: metrics})
    by_size = " | ".join(f"N={k}: {v:.3f}" for k, v in metrics["facesim_by_size"].items())
    atomic_write(out / "metrics.md", lambda p: p.write_text(f"{table}\n\nFaceSim by group size: {by_size}\n"))
    lines = "".join(json.dumps({k: v for k, v in s.items() if not k.startswith("_")}) + "\n" for s in scores)
    atomic_write(out / "scores.jsonl", lambda p: p.write_text(lines))
    _plot_by_size({"this run": metrics}, out / "by_size.png")


def _plot_by_size(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, r in rows.items():
        sizes = sorted(r["facesim_by_size"], key=int)
        ax.plot([int(s) for s in sizes], [r["facesim_by_size"][s] for s in sizes], marker="o", label=short_label(name))
    ax.set_xlabel("people in the image (N)")
    ax.set_ylabel("FaceSim")
    ax.set_title("FaceSim by group size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def compare(runs: list[str | Path], out: str | Path) -> str:
    """One table (``out/compare.md``) and plots (Pareto FaceSim vs quality, FaceSim by size) over eval folders.

    Each of ``runs`` is a folder holding ``metrics.json`` (an ``idglow eval`` output) or that file itself.
    """
    rows = {}
    for run in map(Path, runs):
        path = run / "metrics.json" if run.is_dir() else run
        if not path.is_file():
            raise FileNotFoundError(f"compare: {path} not found; run `idglow eval` first")
        rows[str(run)] = json.loads(path.read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    atomic_write(out / "compare.md", lambda p: p.write_text(table + "\n"))
    _plot_by_size(rows, out / "by_size.png")
    _plot_pareto(rows, out / "pareto.png")
    return table


def short_label(run: str) -> str:
    """``runs/demo/eval/sft/synth-group/eval`` -> ``sft/synth-group``: the two names above the eval folder."""
    parts = [p for p in Path(run).parts if p not in ("metrics.json",)]
    while parts and parts[-1] == "eval":
        parts.pop()
    return "/".join(parts[-2:]) or run


def _plot_pareto(rows: dict[str, dict], path: Path) -> None:
    """FaceSim (x) against quality (y: judge Fréchet distance on the cast, else the artifact score; lower is better)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quality = "frechet_judge" if all(r.get("frechet_judge") is not None for r in rows.values()) else "artifact_score"
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, r in rows.items():
        ax.scatter(r["facesim"], r[quality])
        ax.annotate(short_label(name), (r["facesim"], r[quality]), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.set_xlabel("FaceSim (higher is better)")
    ax.set_ylabel(f"{quality} (lower is better)")
    ax.set_title("identity vs quality")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
