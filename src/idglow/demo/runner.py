"""Run the demo's stages in order, reusing finished ones, and write the report."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

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
    stage_vae,
)
from idglow.utils.defaults import BASE, JUDGES
from idglow.utils.io import atomic_write

STAGES: list[tuple[str, Callable[[DemoContext], str], str]] = [
    ("cast", stage_cast, "render the synthetic cast (SFT scenes, held-out benchmarks)"),
    ("judges", stage_judges, "face detector, identity embedders, age and colour judges; mu_real"),
    ("vae", stage_vae, "a small latent autoencoder"),
    ("sft", stage_sft, "stage 1: identity branch + LoRA on the shipped base model"),
    ("pairs", stage_pairs, "sample candidates from SFT, score per subject, keep best-vs-worst pairs"),
    ("dpo", stage_dpo, "stage 2: Flow-DPO adapter on the SFT model"),
    ("refine", stage_refine, "one badcase-driven prompt-refine round"),
    ("eval", stage_eval, "identity off, SFT, SFT + guidance, DPO on both held-out benchmarks"),
]


def _check_preset(out: Path, preset: str, force: bool) -> None:
    marker = out / "demo.json"
    if marker.is_file() and not force:
        earlier = json.loads(marker.read_text())["preset"]
        if earlier != preset:
            raise ValueError(f"out: {out} holds a demo of preset {earlier!r}; use --force to redo it as {preset!r}, "
                             "or another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(marker, lambda p: p.write_text(json.dumps({"preset": preset}) + "\n"))


def run_demo(out: str | Path, preset: str = "default", force: bool = False, progress: bool = True,
             base: str | Path = BASE, judges: str | Path = JUDGES, echo=print) -> dict:
    """Every stage of :data:`STAGES` (finished ones are reused unless ``force``), then ``out/report.html``.

    Returns:
        ``{"stages": [{"name", "summary", "seconds", "reused"}], "seconds", "report"}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset: unknown {preset!r}; choose one of {sorted(PRESETS)}")
    out = Path(out)
    if not (Path(base) / "transformer" / "config.json").is_file():
        raise FileNotFoundError(f"base: {base} is not the shipped base model (the demo never pretrains from noise)")
    if force:
        for name, _, _ in STAGES:
            shutil.rmtree(out / name, ignore_errors=True)
    _check_preset(out, preset, force)
    ctx = DemoContext(out=out, preset=PRESETS[preset], base=Path(base), shipped_judges=Path(judges), progress=progress)
    start, done = time.perf_counter(), []
    for number, (name, stage, what) in enumerate(STAGES, start=1):
        marker = out / name / "stage.json"
        tag = f"[{number}/{len(STAGES)}] {name}"
        if marker.is_file():
            record = {**json.loads(marker.read_text()), "reused": True}
            echo(f"{tag}: reused ({record['summary']})")
        else:
            echo(f"{tag}: {what} ...")
            began = time.perf_counter()
            summary = stage(ctx)
            record = {"name": name, "summary": summary, "seconds": time.perf_counter() - began}
            (out / name).mkdir(parents=True, exist_ok=True)
            atomic_write(marker, lambda p, r=record: p.write_text(json.dumps(r, indent=2) + "\n"))
            record["reused"] = False
            echo(f"{tag}: {summary} ({record['seconds']:.0f} s)")
        done.append(record)
    seconds = time.perf_counter() - start
    report = write_report(ctx, done, sum(r["seconds"] for r in done))
    reused = sum(r["reused"] for r in done)
    echo(f"demo finished in {seconds / 60:.1f} min ({reused} of {len(STAGES)} stages reused); open {report}")
    return {"stages": done, "seconds": seconds, "report": str(report)}
