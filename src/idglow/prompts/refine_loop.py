"""``idglow prompts refine``: generate -> find failures -> record them -> rewrite prompts -> regenerate -> re-measure.

Round 0 generates a benchmark with its own prompts; every image is scored with the cast judges and
its failures go to the badcase library; the failing records get new prompts (``rules``: explicit
binding, reordering and emphasis; ``openai``: a VLM with the library's cases as few-shot guidance);
round 1 regenerates the benchmark with the same seeds and re-measures.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from idglow.data.manifest import evenly_spread, load_manifest
from idglow.eval.report import evaluate_generations
from idglow.prompts import rules
from idglow.prompts.badcases import append_library, detect_failures, few_shot_guidance, library_entries
from idglow.prompts.scene import SceneDescription
from idglow.utils.defaults import JUDGES
from idglow.utils.io import atomic_write

REPORT_KEYS = ("leakage_rate", "swap_rate", "count_accuracy", "facesim_norm", "colour_accuracy", "child_rate")


def find_failures(eval_dir: Path, records: list[dict]) -> dict[str, dict]:
    """Failures per record id (only records that have some), from the per-image scores that
    ``idglow eval`` (synth backend) wrote to ``eval_dir/scores.jsonl``."""
    scores = {s["id"]: s for s in map(json.loads, (eval_dir / "scores.jsonl").read_text().splitlines())}
    found = {}
    for record in records:
        failures = detect_failures(record, scores[record["id"]])
        if failures:
            found[record["id"]] = failures
    return found


def rewrite_prompts(records: list[dict], failures: dict[str, dict], synthesizer, library: list[dict],
                    reorder: bool = False) -> dict[str, str]:
    """New prompts for the failing records (id -> prompt)."""
    failing = [r for r in records if r["id"] in failures]
    if synthesizer is None:  # rules
        return {r["id"]: rules.refine(SceneDescription.from_record(r), failures[r["id"]], reorder) for r in failing}
    scenes = [SceneDescription.from_record(r) for r in failing]
    prompts = synthesizer.synthesize_many(scenes, guidance=few_shot_guidance(library))
    return {r["id"]: p for r, p in zip(failing, prompts)}


def generate_and_record(pipe, run: str | Path, manifest: Path, records: list[dict], options, schedule: dict, out: Path,
                        judges: str, batch: int, progress: bool) -> tuple[dict, dict[str, dict], list[dict]]:
    """Generate ``records`` of ``manifest`` into ``out/round0``, judge them, and write their failures to
    ``out/badcases.jsonl`` (rebuilt on a re-run from the same images). Returns (metrics, failures by id, entries)."""
    from idglow.generate.files import generate_benchmark

    generate_benchmark(pipe, run, manifest, options, out / "round0", schedule, batch=batch, progress=progress,
                       ids={r["id"] for r in records})
    metrics = evaluate_generations(out / "round0", manifest, out / "round0" / "eval", judges=judges, skip_missing=True,
                                   progress=progress)
    failures = find_failures(out / "round0" / "eval", records)
    entries = [e for r in records if r["id"] in failures
               for e in library_entries(r, failures[r["id"]], str(out / "round0" / f"{r['id']}.png"), 0)]
    library = out / "badcases.jsonl"
    library.unlink(missing_ok=True)
    append_library(library, entries)
    return metrics, failures, entries


def refine(run: str | Path, manifest: str | Path, out: str | Path, synthesizer=None, judges: str = JUDGES,
           limit: int | None = None, steps: int = 20, seed: int = 0, id_guidance: float = 1.0, batch: int = 16,
           progress: bool = True, reorder: bool = False) -> dict:
    """One refine round on a benchmark; writes under ``out``: ``round0/``, ``round1/`` (images + eval),
    ``badcases.jsonl``, ``refined_prompts.jsonl`` and ``summary.json`` / ``summary.md``.

    Args:
        synthesizer: None for ``rules``, or a :class:`idglow.prompts.vlm.VLMPromptSynthesizer`.
        reorder: ``rules`` puts the failing people's clauses first (else keeps left-to-right order).

    Returns:
        the summary: metrics before and after, failure counts, prompts rewritten.
    """
    from idglow.generate.files import SamplingOptions, generate_benchmark, override_schedules
    from idglow.generate.pipeline import IdGlowPipeline

    manifest, out = Path(manifest), Path(out)
    records = evenly_spread(load_manifest(manifest, "benchmark"), limit)
    pipe = IdGlowPipeline.from_run(run)
    options = SamplingOptions(seed=seed, steps=steps, id_guidance=id_guidance)
    schedule = override_schedules(pipe, [])
    before, failures, entries = generate_and_record(pipe, run, manifest, records, options, schedule, out, judges, batch,
                                                    progress)
    prompts = rewrite_prompts(records, failures, synthesizer, entries, reorder)
    lines = "".join(json.dumps({"id": k, "prompt": v, "failures": {str(s): sorted(f) for s, f in failures[k].items()}}) + "\n"
                    for k, v in prompts.items())
    atomic_write(out / "refined_prompts.jsonl", lambda p: p.write_text(lines))
    generate_benchmark(pipe, run, manifest, options, out / "round1", schedule, batch=batch, progress=progress,
                       prompts=prompts, ids={r["id"] for r in records})
    after = evaluate_generations(out / "round1", manifest, out / "round1" / "eval", judges=judges, skip_missing=True,
                                 progress=progress, check_prompts=False)
    return _summarise(out, before, after, entries, prompts, synthesizer)


def training_badcases(run: str | Path, manifest: str | Path, out: str | Path, judges: str = JUDGES, limit: int = 100,
                      steps: int = 20, seed: int = 0, batch: int = 16, progress: bool = True) -> dict:
    """The badcase library of a trained model on *training* scenes: ``limit`` records of an SFT manifest of the cast,
    evenly spread, generated with their own captions and references and judged against their scenes. The library
    (``out/badcases.jsonl``) drives the refinement of the training captions (``idglow prompts caption --style
    refined``); no benchmark record is looked at. The records, as benchmark records, are written beside the manifest
    (``<manifest>.badcase-scenes.jsonl``: their paths are relative to its folder).

    Returns:
        ``{"images", "failures": {kind: entries}, "library", ...metrics}``, also written to ``out/summary.json``.
    """
    from idglow.data.manifest import sft_as_benchmark
    from idglow.generate.files import SamplingOptions, override_schedules
    from idglow.generate.pipeline import IdGlowPipeline

    manifest, out = Path(manifest), Path(out)
    records = [sft_as_benchmark(r, manifest) for r in evenly_spread(load_manifest(manifest, "sft"), limit)]
    scenes = manifest.with_suffix(".badcase-scenes.jsonl")
    atomic_write(scenes, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in records)))
    records = load_manifest(scenes, "benchmark")
    pipe = IdGlowPipeline.from_run(run)
    options = SamplingOptions(seed=seed, steps=steps, id_guidance=1.0)
    metrics, _, entries = generate_and_record(pipe, run, scenes, records, options, override_schedules(pipe, []), out,
                                              judges, batch, progress)
    summary = {"run": str(run), "manifest": str(manifest), "images": len(records), "failures": _failure_counts(entries),
               "library": str(out / "badcases.jsonl"), **{k: metrics.get(k) for k in REPORT_KEYS}}
    atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    return summary


def _failure_counts(entries: list[dict]) -> dict[str, int]:
    return dict(Counter(e["failure"] for e in entries))


def _summarise(out: Path, before: dict, after: dict, entries: list[dict], prompts: dict, synthesizer) -> dict:
    counts = _failure_counts(entries)
    summary = {"before": {k: before.get(k) for k in REPORT_KEYS}, "after": {k: after.get(k) for k in REPORT_KEYS},
               "images": before["images"], "failures": counts, "prompts_rewritten": len(prompts),
               "backend": "rules" if synthesizer is None else "openai",
               "vlm_stats": None if synthesizer is None else synthesizer.stats}
    rows = ["| metric | before | after |", "|---|---|---|"]
    for k in REPORT_KEYS:
        b, a = summary["before"][k], summary["after"][k]
        rows.append(f"| {k} | {'–' if b is None else f'{b:.3f}'} | {'–' if a is None else f'{a:.3f}'} |")
    atomic_write(out / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2) + "\n"))
    atomic_write(out / "summary.md", lambda p: p.write_text("\n".join(rows) + "\n"))
    return summary
