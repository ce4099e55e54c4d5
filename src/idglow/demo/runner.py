"""Run the demo's stages in order, reusing finished ones, and write the report."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from idglow.demo.estimate import estimate_seconds
from idglow.demo.presets import PRESETS
from idglow.demo.report import write_report
from idglow.demo.stages import (
    DemoContext,
    stage_cast,
    stage_dpo,
    stage_eval,
    stage_judges,
    stage_pairs,
    stage_refine,
    stage_sft,
)
from idglow.utils.defaults import BASE, JUDGES
from idglow.utils.io import atomic_write
from idglow.utils.precision import resolve_precision

STAGES: list[tuple[str, Callable[[DemoContext], str], str]] = [
    ("cast", stage_cast, "render the synthetic cast (SFT scenes, held-out benchmarks)"),
    ("judges", stage_judges, "the shipped judges (or, with --train-judges, trained here); mu_real of both benchmarks"),
    ("sft", stage_sft, "stage 1: identity branch + LoRA on the shipped base model"),
    ("pairs", stage_pairs, "sample candidates from SFT, score per subject, keep best-vs-worst pairs"),
    ("dpo", stage_dpo, "stage 2: Flow-DPO adapter on the SFT model"),
    ("refine", stage_refine, "one badcase-driven prompt-refine round"),
    ("eval", stage_eval, "identity off, SFT, SFT + guidance, DPO on both held-out benchmarks"),
]


def _check_marker(out: Path, settings: dict, force: bool) -> None:
    """``out/demo.json`` records the preset, judges and sampling precision of the demo in ``out``; reusing its stages
    under other settings would mix two demos, so that is refused unless ``force``."""
    marker = out / "demo.json"
    if marker.is_file() and not force:
        earlier = json.loads(marker.read_text())
        if earlier != settings:
            said = ", ".join(f"{k} {earlier.get(k)!r}" for k in settings if earlier.get(k) != settings[k])
            raise ValueError(f"out: {out} holds a demo of {said}; use --force to redo it with "
                             f"{', '.join(f'{k} {v!r}' for k, v in settings.items())}, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, lambda p: p.write_text(json.dumps(settings) + "\n"))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def run_demo(out: str | Path, preset: str = "default", force: bool = False, progress: bool = True,
             base: str | Path = BASE, judges: str | Path = JUDGES, train_judges: bool = False, echo=print) -> dict:
    """Every stage of :data:`STAGES` (finished ones are reused unless ``force``), then ``out/report.html``.

    Every budget is in steps (:mod:`idglow.demo.presets`), so the same arguments give the same metrics on any
    machine; the time is estimated before (:mod:`idglow.demo.estimate`) and reported after.

    Returns:
        ``{"stages": [{"name", "summary", "seconds", "reused"}], "seconds", "estimate", "report"}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out)
    if not (Path(base) / "transformer" / "config.json").is_file():
        raise FileNotFoundError(f"base: {base} is not the shipped base model (the demo never pretrains from noise)")
    if not train_judges and not (Path(judges) / "judge.safetensors").is_file():
        raise FileNotFoundError(f"judges: {judges} holds no judges (judge.safetensors); point --judges at the shipped "
                                "assets/judges, or use --train-judges")
    if force:
        for name, _, _ in STAGES:
            shutil.rmtree(out / name, ignore_errors=True)
    # what decides the demo's numbers besides the code: reusing stages made otherwise would mix two demos
    settings = {"preset": preset, "train_judges": train_judges, "precision": resolve_precision(None, "cpu")}
    _check_marker(out, settings, force)
    ctx = DemoContext(out=out, preset=PRESETS[preset], base=Path(base), shipped_judges=Path(judges),
                      train_judges=train_judges, progress=progress)
    estimate = estimate_seconds(ctx.preset, train_judges)
    todo = [name for name, _, _ in STAGES if not (out / name / "stage.json").is_file()]
    echo(f"demo, preset {preset}: {len(todo)} of {len(STAGES)} stages to run, estimated "
         f"{_minutes(sum(estimate[n] for n in todo))} on a quiet 2-core CPU with bf16; sampling in {settings['precision']} "
         "(every budget is in steps: the same numbers on any machine, only the time differs)")
    start, done = time.perf_counter(), []
    for number, (name, stage, what) in enumerate(STAGES, start=1):
        done.append(_run_stage(ctx, number, name, stage, what, estimate[name], echo))
    seconds = time.perf_counter() - start
    report = write_report(ctx, done, sum(r["seconds"] for r in done))
    reused = sum(r["reused"] for r in done)
    echo(f"demo finished in {_minutes(seconds)} ({reused} of {len(STAGES)} stages reused); open {report}")
    return {"stages": done, "seconds": seconds, "estimate": estimate, "report": str(report)}


def _run_stage(ctx: DemoContext, number: int, name: str, stage, what: str, estimate: float, echo) -> dict:
    marker = ctx.out / name / "stage.json"
    tag = f"[{number}/{len(STAGES)}] {name}"
    if marker.is_file():
        record = {**json.loads(marker.read_text()), "reused": True}
        echo(f"{tag}: reused ({record['summary']})")
        return record
    echo(f"{tag}: {what} (about {estimate:.0f} s) ...")
    began = time.perf_counter()
    summary = stage(ctx)
    record = {"name": name, "summary": summary, "seconds": time.perf_counter() - began}
    (ctx.out / name).mkdir(parents=True, exist_ok=True)
    atomic_write(marker, lambda p: p.write_text(json.dumps(record, indent=2) + "\n"))
    echo(f"{tag}: {summary} ({record['seconds']:.0f} s)")
    return {**record, "reused": False}
