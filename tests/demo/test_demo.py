"""`idglow demo --preset quick` end to end: every stage, the report, reuse on re-run, the same metrics when redone,
the headless-browser render."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENV, JUDGES, ROOT, cli

from idglow.demo import STAGES
from idglow.demo.browser import check_images, find_browser


def _demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idglow", "demo", "--preset", "quick", "--out", str(out),
                           "--base", str(ROOT / "assets" / "base"), "--judges", str(JUDGES), *extra],
                          env=ENV, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "demo"
    done = _demo(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


@pytest.mark.e2e
def test_quick_demo_runs_every_stage_and_writes_the_report(demo):
    out, stdout = demo
    for number, (name, _, _) in enumerate(STAGES, start=1):
        summary = json.loads((out / name / "stage.json").read_text())
        assert summary["seconds"] >= 0 and summary["summary"]
        assert re.search(rf"^\[{number}/{len(STAGES)}\] {name}: .+\(\d+ s\)$", stdout, re.M), stdout
    assert re.search(rf"^demo, preset quick: {len(STAGES)} of {len(STAGES)} stages to run, estimated [\d.]+ min", stdout, re.M)
    assert re.search(rf"^demo finished in [\d.]+ min \(0 of {len(STAGES)} stages reused\)", stdout, re.M)
    assert not (out / "vae").exists() and not (out / "judges" / "judge.safetensors").exists()  # shipped judges, no VAE
    results = json.loads((out / "eval" / "results.json").read_text())
    assert set(results["models"]) == {"identity off", "SFT", "SFT, identity guidance 2", "DPO"}
    assert results["win_rate"]["records"] == 8  # 4 records of each benchmark, same seeds for SFT and DPO
    assert (out / "dpo" / "run" / "final" / "lora.safetensors").is_file()
    assert len((out / "pairs" / "scored.jsonl").read_text().splitlines()) == 6
    page = (out / "report.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) >= 20 and all((out / s).is_file() for s in sources)
    for heading in ("Group photos", "Adults rendered as children", "Metrics: DPO against SFT", "Ablation: what each part adds",
                    "Gate schedules", "Failures from the badcase library", "Stages"):
        assert heading in page


@pytest.mark.e2e
def test_rerun_reuses_every_stage_and_a_different_preset_is_refused(demo):
    out, _ = demo
    before = {name: (out / name / "stage.json").stat().st_mtime_ns for name, _, _ in STAGES}
    shipped = ("--base", ROOT / "assets" / "base", "--judges", JUDGES)
    done = cli("demo", "--preset", "quick", "--out", out, *shipped)  # in-process: nothing is redone
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count(": reused (") == len(STAGES) and f"({len(STAGES)} of {len(STAGES)} stages reused)" in done.stdout
    assert {name: (out / name / "stage.json").stat().st_mtime_ns for name, _, _ in STAGES} == before
    refused = cli("demo", "--preset", "default", "--out", out, *shipped)
    assert refused.returncode == 2 and "holds a demo of preset 'quick'; use --force" in refused.stderr
    refused = cli("demo", "--preset", "quick", "--out", out, "--train-judges", *shipped)
    assert refused.returncode == 2 and "holds a demo of train_judges False; use --force" in refused.stderr


def _metrics(out: Path) -> dict:
    """Everything the demo measured, without the times."""
    stages = {name: json.loads((out / name / "stage.json").read_text())["summary"] for name, _, _ in STAGES}
    return {"stages": stages, "results": json.loads((out / "eval" / "results.json").read_text()),
            "images": {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "eval").rglob("*.png"))}}


@pytest.mark.e2e
def test_redoing_the_stages_after_sft_gives_identical_metrics(demo):
    """Budgets in steps: the stages after SFT, deleted and redone by the same command in a new process, measure
    exactly the same. (Redoing SFT itself is left out for time: a split SFT run in another process ends with the
    uninterrupted run's weights, tests/sft; the cast build is deterministic, tests/cast.)"""
    out, _ = demo
    before = _metrics(out)
    redone = ("pairs", "dpo", "refine", "eval")
    assert set(redone) < {name for name, _, _ in STAGES}
    for name in redone:
        shutil.rmtree(out / name)
    done = _demo(out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"({len(STAGES) - len(redone)} of {len(STAGES)} stages reused)" in done.stdout
    after = _metrics(out)
    assert after["stages"] == before["stages"] and after["results"] == before["results"]
    assert len(before["images"]) >= 32 and after["images"] == before["images"]


@pytest.mark.e2e
def test_demo_refuses_a_missing_base_model_or_judges(tmp_path):
    done = cli("demo", "--preset", "quick", "--out", tmp_path / "d", "--base", tmp_path / "nothing")
    assert done.returncode == 2 and "never pretrains from noise" in done.stderr
    done = cli("demo", "--preset", "quick", "--out", tmp_path / "d", "--base", ROOT / "assets" / "base", "--judges", tmp_path)
    assert done.returncode == 2 and f"judges: {tmp_path} holds no judges" in done.stderr and "--train-judges" in done.stderr
    assert not (tmp_path / "d").exists()  # refused before anything was written


@pytest.mark.e2e
def test_report_renders_in_headless_chromium_with_every_image_loaded(demo):
    if find_browser() is None:
        if os.environ.get("IDGLOW_REQUIRE_BROWSER") == "1":  # CI installs Debian's chromium and sets this
            pytest.fail("IDGLOW_REQUIRE_BROWSER=1 but no chromium on PATH")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    out, _ = demo
    counts = check_images(out / "report.html")
    assert counts["total"] >= 20 and counts["loaded"] == counts["total"]
    broken = out / "broken.html"
    broken.write_text((out / "report.html").read_text().replace('src="eval/', 'src="missing/', 1))
    counts = check_images(broken)
    assert counts["loaded"] == counts["total"] - 1  # the check sees a broken image


def test_the_estimate_covers_every_stage_and_grows_with_the_budgets():
    import dataclasses

    from idglow.demo import PRESETS
    from idglow.demo.estimate import estimate_seconds

    for preset in PRESETS.values():
        estimate = estimate_seconds(preset)
        assert set(estimate) == {name for name, _, _ in STAGES} and all(v > 0 for v in estimate.values())
        assert estimate_seconds(preset, train_judges=True)["judges"] > estimate["judges"]
        longer = dataclasses.replace(preset, sft_steps=2 * preset.sft_steps, eval_limit=2 * preset.eval_limit)
        assert estimate_seconds(longer)["sft"] > estimate["sft"] and estimate_seconds(longer)["eval"] > estimate["eval"]
