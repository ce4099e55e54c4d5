"""Shared fixtures: offline, small thread count, tiny models."""

import contextlib
import io
import json
import os
import runpy
import subprocess
import tempfile
import traceback
from collections.abc import Callable
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch
from filelock import FileLock

from idglow.models import IdGlowTransformer, ModelConfig
from idglow.models.packing import image_ids, pack_latents, text_ids

# Under pytest-xdist each worker takes one core: two threads per worker would oversubscribe a 2-core machine.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def pytest_collection_modifyitems(config, items):
    """The demo's file first: it is the longest (two quick demos), so under ``--dist loadfile`` one worker starts
    it at once while the other takes everything else, instead of it starting last."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/demo/") else 1)


class TinyBatch:
    """Inputs for the tiny preset: B samples of an 8x8, 4-channel latent and T text tokens."""

    def __init__(self, batch: int = 3, tokens: int = 5, seed: int = 0, size: int = 8):
        g = torch.Generator().manual_seed(seed)
        self.hidden_states = pack_latents(torch.randn(batch, 4, size, size, generator=g))
        self.sigma = torch.rand(batch, generator=g) * 0.9 + 0.05
        self.encoder_hidden_states = torch.randn(batch, tokens, 32, generator=g)
        self.pooled = torch.randn(batch, 32, generator=g)
        self.img_ids = image_ids(size, size)
        self.txt_ids = text_ids(tokens)
        self.refs = torch.rand(batch, 3, 3, 32, 32, generator=g) * 2 - 1

    def args(self, sigma=None):
        return (
            self.hidden_states,
            self.sigma if sigma is None else sigma,
            self.encoder_hidden_states,
            self.pooled,
            self.img_ids,
            self.txt_ids,
        )

    def bare(self, model: IdGlowTransformer, sigma=None) -> torch.Tensor:
        """The plain diffusers FLUX forward on the same weights and inputs."""
        return model.flux(
            hidden_states=self.hidden_states,
            encoder_hidden_states=self.encoder_hidden_states,
            pooled_projections=self.pooled,
            timestep=self.sigma if sigma is None else sigma,
            img_ids=self.img_ids,
            txt_ids=self.txt_ids,
            return_dict=False,
        )[0]


def randomize_identity_branch(model: IdGlowTransformer, seed: int = 1, std: float = 0.2) -> None:
    """Give every zero-initialised identity parameter random values, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.identity.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)


def tiny_model(seed: int = 0, **identity) -> IdGlowTransformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(preset="tiny")
    for key, value in identity.items():
        setattr(cfg.identity, key, value)
    return IdGlowTransformer(cfg).eval()


@pytest.fixture
def batch() -> TinyBatch:
    return TinyBatch()


def build_tiny_cast(out, sft_group: int = 8, sft_age: int = 0, bench_per_size: int = 0, heldout_identities: int = 4):
    """A few cast scenes (one worker, 20 training identities) for end-to-end tests; returns ``out``."""
    from idglow.cast.build import build
    from idglow.cast.config import SynthConfig
    from idglow.utils.config import load_config

    cfg = load_config(SynthConfig, None, [
        "--build.sft_group", str(sft_group), "--build.sft_age", str(sft_age), "--build.heldout_sft", "0",
        "--build.bench_per_size", str(bench_per_size), "--build.mini_adults", "0", "--build.workers", "1",
        "--world.train_identities", "20", "--world.heldout_identities", str(heldout_identities)])
    build(out, cfg, progress=False)
    return out


# --- the post-training stages end to end: a tiny cast, a tiny exported base model (shared by the session) ---

ROOT = Path(__file__).parents[1]
JUDGES = ROOT / "assets" / "judges"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    """``idglow ARGV`` in a subprocess (offline, one thread)."""
    return subprocess.run([sys.executable, "-m", "idglow", *argv], env=ENV, capture_output=True, text=True, timeout=300)


def cli(*argv: str) -> subprocess.CompletedProcess:
    """``idglow ARGV`` in this process: the same parser, handlers and error boundary (exit status 2 and one line
    naming what is wrong) as :func:`run_cli`, without a new interpreter's ~6 s of imports. What a process would not
    carry over is set back: one thread during the call (as run_cli's OMP_NUM_THREADS=1, so both give bit-equal runs),
    the environment afterwards, and accelerate's process-wide state before and after (as accelerate's own
    ``AccelerateTestCase`` does; accelerate keeps one mixed precision per process). Runs whose point is a new process
    (resuming from the checkpoint alone, being killed, a launcher's processes) use :func:`run_cli`."""
    from accelerate.state import AcceleratorState, GradientState

    from idglow.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    threads, environ = torch.get_num_threads(), dict(os.environ)
    torch.set_num_threads(1)
    AcceleratorState._reset_state(True)  # also after trainers a test built itself
    GradientState._reset_state()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            torch.set_num_threads(threads)
            os.environ.clear()
            os.environ.update(environ)
            AcceleratorState._reset_state(True)
            GradientState._reset_state()
    return subprocess.CompletedProcess(["idglow", *argv], code, out.getvalue(), err.getvalue())


def run_script(script: Path, *argv, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGV`` (a ``benchmarks/`` script) run as ``__main__`` in this process, in ``cwd``; exit status,
    stdout and stderr as the interpreter would give them (``SystemExit("message")``: the message on stderr, status 1;
    an uncaught exception: its traceback, status 1)."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = [str(script), *map(str, argv)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), contextlib.chdir(cwd or Path.cwd()):
        try:
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if isinstance(exit_.code, str):
                print(exit_.code, file=sys.stderr)
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
    return subprocess.CompletedProcess([str(script), *argv], code, out.getvalue(), err.getvalue())


def accelerate_launch(config: str, processes: int, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file configs/accelerate/CONFIG.yaml --num_processes N -m idglow ARGV`` (one thread
    per process)."""
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ROOT / "configs" / "accelerate" / config),
         "--num_processes", str(processes), "-m", "idglow", *[str(a) for a in argv]],
        env=ENV, capture_output=True, text=True, timeout=timeout)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """A session fixture's folder, built once per test run and shared by the pytest-xdist workers (xdist's recipe:
    the first worker builds it under a file lock, the others wait and reuse it; each would otherwise build its
    own). ``build(empty folder) -> the fixture's path``. Tests only add files of their own names to these folders."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent / "shared-fixtures"
    shared.mkdir(exist_ok=True)
    with FileLock(str(shared / f"{name}.lock")):
        marker = shared / f"{name}.path"
        if not marker.is_file():
            marker.write_text(str(build(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=shared)))))
        return Path(marker.read_text())


@pytest.fixture(scope="session")
def cast(tmp_path_factory) -> Path:
    """8 group and 4 age training scenes, 2 benchmark records per group size (held-out identities), mu_real."""
    from idglow.cast.judge_training import load_judges
    from idglow.eval.mu_real import write_mu_real

    def build(folder: Path) -> Path:
        out = build_tiny_cast(folder, sft_age=4, bench_per_size=2, heldout_identities=8)
        write_mu_real(out, load_judges(JUDGES))
        return out

    return built_once(tmp_path_factory, "cast", build)


@pytest.fixture(scope="session")
def base(cast, tmp_path_factory) -> Path:
    """A tiny base model trained for 4 steps and exported like assets/base."""
    return built_once(tmp_path_factory, "base", lambda root: _train_base(cast, root))


def _train_base(cast: Path, root: Path) -> Path:
    done = cli("train", "base", "--config", str(ROOT / "configs" / "tiny-base.yaml"), "--out", str(root / "run"),
               "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", "--optim.steps", "4")
    assert done.returncode == 0, done.stderr
    done = cli("train", "export", "--run", str(root / "run"), "--out", str(root / "export"))
    assert done.returncode == 0, done.stderr
    return root / "export"


def run_sft(cast: Path, base: Path, out: Path, *extra: str, runner: Callable = cli) -> subprocess.CompletedProcess:
    """``idglow train sft`` with configs/tiny-sft.yaml on the tiny cast and base (in this process unless ``runner``
    is :func:`run_cli`)."""
    manifests = f"[{cast / 'sft-group-train.jsonl'},{cast / 'sft-age-train.jsonl'}]"
    return runner("train", "sft", "--config", str(ROOT / "configs" / "tiny-sft.yaml"), "--out", str(out), "--base", str(base),
                  "--data.manifests", manifests, "--diagnostics.manifests", manifests, *extra)


def _finished_sft(cast: Path, base: Path, run: Path, *extra: str) -> Path:
    done = run_sft(cast, base, run, "--optim.steps", "2", "--diagnostics.every", "0", *extra)
    assert done.returncode == 0, done.stderr
    return run


@pytest.fixture(scope="session")
def sft_run(cast, base, tmp_path_factory) -> Path:
    """A finished tiny SFT run (2 steps of configs/tiny-sft.yaml on the tiny cast and base)."""
    return built_once(tmp_path_factory, "sft", lambda root: _finished_sft(cast, base, root / "run"))


@pytest.fixture(scope="session")
def sft_lora(cast, base, tmp_path_factory) -> Path:
    """A tiny SFT run with a LoRA (so DPO must merge it before adding its own adapter)."""
    return built_once(tmp_path_factory, "sft-lora", lambda root: _finished_sft(cast, base, root / "run", "--model.lora.rank", "2"))


def pairs_build(cast: Path, run: Path, out: Path, *extra: str, runner: Callable = cli):
    return runner("pairs", "build", "--run", str(run), "--out", str(out), "--judges", str(JUDGES),
                  "--manifest", str(cast / "sft-group-train.jsonl"), str(cast / "sft-age-train.jsonl"),
                  "--heldout", str(cast / "synth-group.jsonl"), str(cast / "synth-age.jsonl"),
                  "--items", "4", "--candidates", "2", "--steps", "2", "--batch", "3", *extra)


def _built_pairs(cast: Path, sft_lora: Path, out: Path) -> Path:
    done = pairs_build(cast, sft_lora, out, "--min_gap", "0")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="session")
def pairs(cast, sft_lora, tmp_path_factory) -> Path:
    """DPO pairs built from the LoRA SFT run (4 scenes x 2 candidates, every gap kept)."""
    return built_once(tmp_path_factory, "pairs", lambda root: _built_pairs(cast, sft_lora, root / "pairs"))


def nonzero_dpo_run(sft_lora: Path, pairs: Path, run: Path) -> Path:
    """A DPO run on ``sft_lora`` written as `train dpo` writes one, its adapter random (not zero, as at step 0), so a
    test can tell the model with DPO from its SFT run alone."""
    from idglow.dpo.trainer import DPOTrainer
    from idglow.recipes.dpo import DPOConfig
    from idglow.utils.config import load_config, to_dict

    trainer = DPOTrainer(load_config(DPOConfig, ROOT / "configs" / "tiny-dpo.yaml", [
        "--sft", str(sft_lora), "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--out", str(run)]))
    adapter_model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        for name, p in adapter_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    trainer._save_final(adapter_model, run / "final")
    (run / "config.json").write_text(json.dumps(to_dict(trainer.cfg)))
    return run


@pytest.fixture(scope="session")
def packaged_photos():
    """Two real face photos that ship inside packages: scikit-image's astronaut, matplotlib's Grace Hopper (uint8 HWC)."""
    import numpy as np
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.array(im.convert("RGB").resize((427, 512)))
    return data.astronaut(), hopper
