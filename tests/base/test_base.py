"""The trainer end to end through the CLI: artefacts, SIGKILL-and-resume exactness, bad data."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import build_tiny_cast, cli
from safetensors.torch import load_file

from idglow.data.images import CaptionedImages, EpochOrder
from idglow.data.manifest import ManifestError
from idglow.training.checkpoint import latest_checkpoint

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def cast(tmp_path_factory) -> Path:
    return build_tiny_cast(tmp_path_factory.mktemp("cast"))


def _argv(out: Path, cast: Path, *extra: str) -> list[str]:
    return ["train", "base", "--config", str(ROOT / "configs" / "tiny-base.yaml"), "--out", str(out),
            "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", *extra]


def _train(out: Path, cast: Path, *extra: str) -> subprocess.Popen:
    """``idglow train base`` in a new process, to be killed or to resume from the checkpoint alone."""
    return subprocess.Popen([sys.executable, "-m", "idglow", *_argv(out, cast, *extra)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "final" / "transformer" / "diffusion_pytorch_model.safetensors"))


@pytest.mark.e2e
def test_tiny_run_writes_logs_checkpoints_weights_and_samples(cast, tmp_path):
    done = cli(*_argv(tmp_path / "run", cast, "--optim.ema_decay", "0.9"))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6, 8]
    assert all(r["loss"] > 0 and r["images_per_second"] > 0 for r in records)
    assert any(k.startswith("loss_sigma_") for k in records[0])
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-0000006", "step-0000008"]
    assert (run / "final" / "transformer" / "config.json").is_file() and _weights(run)
    assert (run / "samples" / "final.png").read_bytes()[:4] == b"\x89PNG"
    assert "resumed" not in output
    assert records[-1]["elapsed_seconds"] > 0
    # Export as fp16 with provenance; the exported model loads and matches the run's up to fp16 rounding.
    from idglow.cli.main import main
    from idglow.runs.load import load_base

    assert main(["train", "export", "--run", str(run), "--out", str(tmp_path / "export")]) == 0
    provenance = json.loads((tmp_path / "export" / "provenance.json").read_text())
    assert provenance["steps"] == 8 and provenance["command"].startswith("idglow train base")
    exported = load_file(str(tmp_path / "export" / "transformer" / "diffusion_pytorch_model.safetensors"))
    assert all(t.dtype == torch.float16 for t in exported.values())
    original, _ = load_base(run)
    reloaded, cfg = load_base(tmp_path / "export")
    assert cfg.representation.patch == 8
    half, _ = load_base(tmp_path / "export", torch.bfloat16)  # the dtype asked for is the dtype loaded
    assert {q.dtype for q in half.flux.parameters()} == {torch.bfloat16}
    for (name, a), b in zip(original.flux.state_dict().items(), reloaded.flux.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3, msg=name)
    # Judge-based scoring of the run's samples against the true renders (shipped cast judges).
    from idglow.eval.base_eval import evaluate_base

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        scores = evaluate_base(run, [str(cast / "sft-group-train.jsonl")], ROOT / "assets" / "judges", num=4, steps=2)
    assert not [w for w in seen if "trained on" in str(w.message)]  # the size it trained at: no warning
    assert scores["samples"] == 4 and 0 <= scores["detection_rate"] <= 1 and scores["frechet_judge"] >= 0
    assert scores["reference_true_vs_true"]["detection_rate"] == 1.0
    assert json.loads((run / "eval.json").read_text())["samples"] == 4
    # Held-out captions of another size than the training images still sample (rotary positions), with a warning.
    from PIL import Image

    shutil.copytree(cast, tmp_path / "wide", ignore=shutil.ignore_patterns("*.pt"))
    for line in (tmp_path / "wide" / "sft-group-train.jsonl").read_text().splitlines():
        image = Image.open(tmp_path / "wide" / json.loads(line)["image"])
        image.resize((image.width * 2, image.height)).save(tmp_path / "wide" / json.loads(line)["image"])
    with pytest.warns(UserWarning, match=r"sampled at 256x64, .* but the model trained on 128x64 images"):
        evaluate_base(run, [str(tmp_path / "wide" / "sft-group-train.jsonl")], ROOT / "assets" / "judges", num=4,
                      steps=1)
    with pytest.raises(ValueError, match=r"base-eval: at least 4 captions to score, got 3 \(--num 3, 8 in "):
        evaluate_base(run, [str(cast / "sft-group-train.jsonl")], ROOT / "assets" / "judges", num=3, steps=1)
    # Re-running a finished run resumes at the end and trains nothing more.
    again = cli(*_argv(run, cast, "--optim.ema_decay", "0.9"))  # the same command
    output = again.stdout + again.stderr
    assert again.returncode == 0 and "resumed from" in output and "step 8" in output


@pytest.mark.e2e
def test_sigkill_then_rerun_ends_with_the_uninterrupted_weights(cast, tmp_path):
    steps = ["--optim.steps", "15", "--log.checkpoint_every", "1", "--log.log_every", "5"]
    assert cli(*_argv(tmp_path / "ref", cast, *steps)).returncode == 0  # uninterrupted, in this process
    killed_dir = tmp_path / "killed"
    victim = _train(killed_dir, cast, *steps)
    deadline = time.time() + 240
    while time.time() < deadline:
        latest = killed_dir / "checkpoints" / "latest.json"
        if latest.is_file() and json.loads(latest.read_text())["step"] >= 3:
            break
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_dir / "final").exists(), "the run finished before it could be killed"
    resumed = _train(killed_dir, cast, *steps)
    output, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0 and "resumed from" in output, output
    a, b = _weights(tmp_path / "ref"), _weights(killed_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_epoch_order_resumes_and_shards_disjointly():
    order = EpochOrder(10, 3, seed=5)
    seen = [order.next() for _ in range(4)]
    clone = EpochOrder(10, 3, seed=5)
    clone.load_state_dict(EpochOrder(10, 3, seed=5).state_dict())
    for _ in range(2):
        clone.next()
    state = clone.state_dict()
    resumed = EpochOrder(10, 3, seed=5)
    resumed.load_state_dict(state)
    assert torch.equal(resumed.next(), seen[2]) and torch.equal(resumed.next(), seen[3])
    assert len(set(torch.cat(seen[:3]).tolist())) == 9  # one epoch: 3 batches of distinct items
    ranks = [EpochOrder(12, 3, seed=1, rank=r, world_size=2) for r in range(2)]
    a, b = ranks[0].next(), ranks[1].next()
    assert not set(a.tolist()) & set(b.tolist())


def test_stale_temporary_checkpoints_are_ignored(tmp_path):
    (tmp_path / ".tmp-step-0000004-123").mkdir()
    assert latest_checkpoint(tmp_path) is None and not (tmp_path / ".tmp-step-0000004-123").exists()


@pytest.mark.e2e
def test_bad_images_and_patch_sizes_are_named(cast, tmp_path):
    manifest = tmp_path / "m.jsonl"
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "ref.png").write_bytes(b"x")
    record = {"image": "broken.png", "prompt": "p", "task": "group", "subjects": [{"ref": "ref.png", "box": [0, 0, 2, 2]}]}
    manifest.write_text(json.dumps(record) + "\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: image: unreadable image 'broken\.png'"):
        CaptionedImages([manifest], progress=False)
    done = cli("train", "base", "--config", ROOT / "configs" / "tiny-base.yaml", "--out", tmp_path / "run",
               "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", "--representation.patch", "5")
    assert done.returncode == 2 and "representation.patch: 5 does not divide the image size 128x64" in done.stderr


@pytest.mark.e2e
def test_vae_then_latent_base_run(cast, tmp_path):
    from idglow.cli.main import main
    from idglow.conditioning.representation import LatentSpace

    assert main(["train", "vae", "--out", str(tmp_path / "vae"), "--manifests", f"[{cast / 'sft-group-train.jsonl'}]",
                 "--channels", "[8, 8]", "--steps", "2", "--batch_size", "2"]) == 0
    rep = LatentSpace(64, 128, tmp_path / "vae" / "vae")
    assert (rep.height, rep.width, rep.channels, rep.tokens) == (32, 64, 16, 512)
    images = torch.rand(2, 3, 64, 128) * 2 - 1
    assert rep.decode(rep.encode(images)).shape == images.shape
    # a streamed run's latents: per batch, through the disk cache (the second call encodes nothing)
    from idglow.conditioning.cache import TensorCache
    from idglow.conditioning.precompute import encode_batch_latents

    cache = TensorCache(tmp_path / "cache", "latents")
    first = encode_batch_latents(images, ["a", "b"], rep, cache)
    torch.testing.assert_close(first, rep.encode(images))
    rep.encode = None  # any encoding now would fail: both must come from the cache
    torch.testing.assert_close(encode_batch_latents(images, ["a", "b"], rep, cache), first)
    del rep.encode
    stats = json.loads((tmp_path / "vae" / "vae_train.json").read_text())
    assert stats["steps"] == 2 and stats["latent_shape"] == [4, 32, 64]
    proc = _train(tmp_path / "run", cast, "--representation.kind", "latents", "--representation.vae",
                  str(tmp_path / "vae" / "vae"), "--optim.steps", "2")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert (tmp_path / "run" / "samples" / "final.png").is_file()


@pytest.mark.e2e
def test_work_that_overruns_the_time_budget_still_checkpoints_the_last_step_and_a_restart_drops_later_logs(
        cast, tmp_path, monkeypatch):
    import types

    from idglow.base.trainer import BaseTrainer
    from idglow.recipes.train import TrainConfig
    from idglow.training import loop
    from idglow.utils.config import load_config

    # The trainer's clock runs 10 minutes ahead once step 3's periodic work is done, however slow the machine.
    skipped = {"seconds": 0.0}
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=lambda: time.perf_counter() + skipped["seconds"]))

    class SlowPeriodic(BaseTrainer):
        def _periodic(self, last):  # e.g. a diagnostic that ends after the deadline although `last` was False
            if self.step == 3:
                skipped["seconds"] = 600.0
            return {}

    overrides = ["--out", str(tmp_path / "run"), "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]",
                 "--optim.max_minutes", "5", "--log.checkpoint_every", "100", "--log.log_every", "100"]
    cfg = load_config(TrainConfig, ROOT / "configs" / "tiny-base.yaml", overrides)
    record = SlowPeriodic(cfg).run()
    assert record["step"] == 3 and latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step-0000003"
    # Resuming from an earlier checkpoint drops the log lines of the steps that will be trained again.
    log = tmp_path / "run" / "log.jsonl"
    log.write_text(log.read_text() + json.dumps({"step": 99, "loss": 1.0}) + "\n")
    BaseTrainer(load_config(TrainConfig, ROOT / "configs" / "tiny-base.yaml", overrides))
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [3]
    # A run killed before its first checkpoint starts from step 0: its earlier log lines go too.
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    BaseTrainer(load_config(TrainConfig, ROOT / "configs" / "tiny-base.yaml", overrides))
    assert log.read_text() == ""


@pytest.mark.e2e
def test_a_non_finite_loss_stops_the_run_before_the_update_and_keeps_the_last_good_checkpoint(cast, tmp_path):
    from idglow.base.trainer import BaseTrainer
    from idglow.recipes.train import TrainConfig
    from idglow.training.loop import NonFiniteLossError
    from idglow.utils.config import load_config

    class Poisoned(BaseTrainer):  # as a NaN pair weight or a bad learning rate would make it
        def _loss(self, index):
            terms = super()._loss(index)
            return {**terms, "loss": terms["loss"] * float("nan")} if self.step == 2 else terms

    overrides = ["--out", str(tmp_path / "run"), "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]",
                 "--log.checkpoint_every", "2", "--log.log_every", "1"]
    with pytest.raises(NonFiniteLossError, match=r"step 3: the loss is nan; stopped before updating the weights"):
        Poisoned(load_config(TrainConfig, ROOT / "configs" / "tiny-base.yaml", overrides)).run()
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step-0000002"
    assert not (tmp_path / "run" / "final").exists()


@pytest.mark.e2e
def test_resuming_refuses_a_changed_config_unless_asked_and_names_a_damaged_checkpoint(cast, tmp_path):
    import re

    from idglow.base.trainer import BaseTrainer
    from idglow.recipes.train import TrainConfig
    from idglow.training.checkpoint import CheckpointError
    from idglow.utils.config import ConfigError, load_config

    run = tmp_path / "run"

    def config(*extra):
        return load_config(TrainConfig, ROOT / "configs" / "tiny-base.yaml",
                           ["--out", str(run), "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", *extra])

    BaseTrainer(config("--optim.steps", "2")).run()
    saved = (run / "config.json").read_text()
    with pytest.raises(ConfigError) as refused:
        BaseTrainer(config("--optim.steps", "4", "--optim.lr", "0.5", "--seed", "3"))
    message = str(refused.value)
    assert "optim.lr: 0.001 -> 0.5" in message and "seed: 0 -> 3" in message and "resume_changed: true" in message
    assert "optim.steps" not in message  # how long it trains may always change
    assert (run / "config.json").read_text() == saved  # refused before anything was rewritten
    assert BaseTrainer(config("--optim.steps", "4", "--optim.lr", "0.5", "--seed", "3", "--resume_changed", "true")).step == 2
    # A key added to the config after the run began is absent from its checkpoint and meant its default.
    state_file = latest_checkpoint(run / "checkpoints") / "state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["data"]["stream"]
    state_file.write_text(json.dumps(state))
    assert BaseTrainer(config("--optim.steps", "4")).step == 2
    with pytest.raises(ConfigError, match=re.escape("data.stream: '<absent>' -> True")):
        BaseTrainer(config("--optim.steps", "4", "--data.stream", "true"))
    newest = latest_checkpoint(run / "checkpoints")
    (newest / "optimizer.pt").write_bytes(random.Random(0).randbytes(2048))
    with pytest.raises(CheckpointError, match=re.escape(f"{newest}: cannot resume from this checkpoint") + ".*move it aside"):
        BaseTrainer(config("--optim.steps", "4"))
