"""Stage 2 DPO: the loss maths, pair scoring, `idglow pairs build`, the adapter reference, and `idglow train dpo`."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import JUDGES, ROOT, cli, run_cli
from safetensors.torch import load_file

from idglow.flow.dpo import DPO_LOSSES, dpo_terms
from idglow.models.lora import adapters_disabled
from idglow.recipes.dpo import DPOConfig
from idglow.utils.config import load_config

# --- pure maths -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DPO_LOSSES))
def test_every_loss_variant_is_ln2_when_policy_equals_reference_without_margin(kind):
    mse = torch.tensor([0.3, 0.1, 0.7])
    terms = dpo_terms(mse, mse.flip(0), mse, mse.flip(0), beta=500.0, kind=kind)
    assert torch.allclose(terms["loss"], torch.full((3,), math.log(2.0)), atol=1e-7)
    assert terms["implicit_acc"].sum() == 0 and terms["reward_margin"].abs().max() == 0


def test_loss_falls_as_a_hand_built_policy_moves_toward_the_winner():
    """Policy v = theta * x on one winner/loser pair: a few gradient steps on the DPO loss lower it, lower the
    winner's error relative to the reference, and the margin variant asks for more separation than sigmoid."""
    winner_target, loser_target, x = torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5]), torch.tensor([1.0, 1.0])
    theta = torch.zeros(2, requires_grad=True)
    reference = torch.zeros(2)
    errors = lambda p: (((p * x - winner_target) ** 2).mean(), ((p * x - loser_target) ** 2).mean())  # noqa: E731
    ref_w, ref_l = errors(reference)
    losses, relative = [], []
    for _ in range(5):
        pol_w, pol_l = errors(theta)
        loss = dpo_terms(pol_w[None], pol_l[None], ref_w[None], ref_l[None], beta=2.0)["loss"].sum()
        losses.append(loss.item())
        relative.append((pol_w - ref_w).item())
        theta.grad = None
        loss.backward()
        with torch.no_grad():
            theta -= 0.05 * theta.grad
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[0] == pytest.approx(math.log(2.0))
    assert relative[-1] < 0  # the winner is now fitted better than by the reference
    z = torch.tensor([0.5])
    assert DPO_LOSSES["margin"](z, torch.ones(1), torch.ones(1)) > DPO_LOSSES["sigmoid"](z, torch.ones(1), torch.zeros(1))
    assert DPO_LOSSES["weighted"](z, torch.full((1,), 2.0), torch.zeros(1)) == pytest.approx(
        2 * float(DPO_LOSSES["sigmoid"](z, torch.ones(1), torch.zeros(1))))


def test_dpo_terms_reject_an_unknown_variant_and_mismatched_shapes():
    with pytest.raises(ValueError, match="unknown variant 'hinge'"):
        dpo_terms(torch.ones(2), torch.ones(2), torch.ones(2), torch.ones(2), 1.0, kind="hinge")
    with pytest.raises(ValueError, match="four per-pair errors"):
        dpo_terms(torch.ones(2), torch.ones(3), torch.ones(2), torch.ones(2), 1.0)








# --- pairs build and the DPO trainer, end to end on the tiny cast ----------------------------------------------












def _dpo_config(sft_run: Path, pairs: Path, out: Path, *extra: str) -> DPOConfig:
    return load_config(DPOConfig, ROOT / "configs" / "tiny-dpo.yaml",
                       ["--sft", str(sft_run), "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--out", str(out), *extra])


def _randomize_lora_b(model, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.e2e
def test_dpo_loss_is_ln2_at_initialisation_and_the_disabled_adapter_is_the_sft_model(sft_lora, pairs, tmp_path):
    from idglow.dpo.trainer import DPOTrainer
    from idglow.runs.load import load_run

    trainer = DPOTrainer(_dpo_config(sft_lora, pairs, tmp_path / "dpo"))
    terms = trainer._loss(torch.arange(4))
    assert torch.allclose(terms["loss"], torch.full((4,), math.log(2.0)), atol=1e-6)
    assert all(n.startswith("flux.") and "lora_" in n for n in trainer.names)  # only the new adapter trains
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    _randomize_lora_b(model)
    sft_model, _ = load_run(sft_lora)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, trainer.tokens, trainer.rep.channels, generator=g)
    states, pooled = trainer.text(trainer.data.prompts[:2])
    ids, rows, slots = trainer.data.subjects(torch.arange(2))
    from idglow.faces.references import scatter_references

    refs, mask = scatter_references(trainer.ref_inputs[ids], rows, slots, 2, 4)
    args = (x, torch.tensor([0.3, 0.8]), states, pooled, trainer.img_ids, trainer.txt_ids)
    kwargs = dict(task=trainer.data.tasks[:2], refs=refs, ref_mask=mask)
    with torch.no_grad():
        with adapters_disabled(model.flux):
            reference = model(*args, **kwargs)
        policy = model(*args, **kwargs)
        sft = sft_model(*args, **kwargs)
    assert torch.allclose(reference, sft, atol=1e-5)  # SFT LoRA merged: equal up to rounding
    assert (policy - sft).abs().max() > 1e-3


def _accumulated_gradient(sft_run: Path, pairs: Path, out: Path, batch: int, accum: int) -> dict[str, torch.Tensor]:
    from idglow.dpo.trainer import DPOTrainer
    from idglow.training.loop import TermStats

    trainer = DPOTrainer(_dpo_config(sft_run, pairs, out, "--optim.batch_size", str(batch), "--optim.grad_accum", str(accum),
                                     "--optim.grad_clip", "0"))
    _randomize_lora_b(trainer.accelerator.unwrap_model(trainer.model))  # so LoRA-A gets a gradient too
    grads, inner = {}, trainer.optimizer.optimizer
    inner.step = lambda *a, **k: grads.update({n: p.grad.clone() for n, p in trainer._trainable().items()})
    trainer._train_step(TermStats())
    return grads


@pytest.mark.e2e
def test_gradient_accumulation_1x4_equals_4x1(sft_lora, pairs, tmp_path):
    one = _accumulated_gradient(sft_lora, pairs, tmp_path / "a", batch=4, accum=1)
    four = _accumulated_gradient(sft_lora, pairs, tmp_path / "b", batch=1, accum=4)
    assert one.keys() == four.keys() and one
    assert max(float(g.abs().max()) for g in one.values()) > 0
    for name in one:  # float32 sums in another order: agreement to 1e-3 of each tensor's largest entry
        scale = float(one[name].abs().max())
        torch.testing.assert_close(four[name], one[name], rtol=1e-3, atol=1e-3 * scale)
    with pytest.raises(AssertionError):  # and the check is sharp enough to see a doubled step (mean vs sum)
        name = max(one, key=lambda n: float(one[n].abs().max()))
        torch.testing.assert_close(2 * four[name], one[name], rtol=1e-3, atol=1e-3 * float(one[name].abs().max()))


@pytest.mark.e2e
def test_train_dpo_logs_the_terms_resumes_and_generates(cast, sft_lora, pairs, tmp_path):
    run = tmp_path / "dpo"
    argv = ["train", "dpo", "--config", str(ROOT / "configs" / "tiny-dpo.yaml"), "--sft", str(sft_lora),
            "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--out", str(run), "--dpo.loss", "margin"]
    done = cli(*argv)
    assert done.returncode == 0, done.stderr
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    for key in ("loss", "implicit_acc", "reward_margin", "mse_winner", "mse_loser", "ref_mse_winner", "ref_mse_loser"):
        assert key in log[0]
    assert log[0]["mse_winner"] == pytest.approx(log[0]["ref_mse_winner"])  # step 1 starts from the SFT model
    adapter = load_file(str(run / "final" / "lora.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    assert (run / "samples" / "final.png").is_file()
    done = run_cli(*argv, "--optim.steps", "3")  # resumed in a new process
    assert done.returncode == 0 and "resumed from" in done.stdout + done.stderr, done.stderr
    assert [r["step"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())] == [1, 2, 3]
    done = cli("generate", "--run", str(run), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "2",
                "--steps", "2", "--out", str(tmp_path / "gen"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "gen" / "synth-group-000000.json").read_text())["run"] == str(run)
    done = cli("generate", "--run", str(sft_lora), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "2",
                "--steps", "2", "--out", str(tmp_path / "gen-sft"))
    assert done.returncode == 0, done.stderr
    done = cli("eval", "--generations", str(tmp_path / "gen"), "--benchmark", str(cast / "synth-group.jsonl"),
                "--skip-missing", "--against", str(tmp_path / "gen-sft"), "--judges", str(JUDGES))
    assert done.returncode == 0, done.stderr
    win = json.loads((tmp_path / "gen" / "eval" / "win_rate.json").read_text())
    assert win["records"] == 2 and win["wins"] + win["ties"] + win["losses"] == 2 and 0 <= win["low"] <= win["high"] <= 1
    # exported: one self-contained folder (SFT LoRA and DPO adapter merged) that draws the DPO run's images
    done = cli("train", "export", "--run", str(run), "--out", str(tmp_path / "model"), "--scores", str(tmp_path / "gen" / "eval"))
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "elsewhere" / "model"  # nothing in it may point back at the runs or the base
    moved.parent.mkdir()
    (tmp_path / "model").rename(moved)
    provenance = json.loads((moved / "provenance.json").read_text())
    assert provenance["stages"]["dpo"]["steps"] == 3 and provenance["stages"]["sft"]["steps"] == 2
    assert provenance["scores"]["metrics"]["images"] == 2
    done = cli("generate", "--run", str(moved), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "2",
               "--steps", "2", "--out", str(tmp_path / "gen-exported"), "--precision", "fp32")
    assert done.returncode == 0, done.stderr
    done = cli("generate", "--run", str(run), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "2",
               "--steps", "2", "--out", str(tmp_path / "gen-fp32"), "--precision", "fp32")
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "gen-fp32").glob("*.png"))
    assert len(names) == 2 and names == sorted(p.name for p in (tmp_path / "gen-exported").glob("*.png"))
    for name in names:
        a = np.asarray(Image.open(tmp_path / "gen-fp32" / name), dtype=np.float64)
        b = np.asarray(Image.open(tmp_path / "gen-exported" / name), dtype=np.float64)
        assert np.abs(a - b).mean() < 1.0, name  # fp16 storage of the merged backbone: under one grey level


@pytest.mark.e2e
def test_train_dpo_names_a_bad_pair_field_and_a_missing_sft_run(sft_lora, pairs, tmp_path):
    lines = (pairs / "pairs.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["weight"] = -1
    (pairs / "bad.jsonl").write_text(lines[1] + "\n" + json.dumps(bad) + "\n")
    done = cli("train", "dpo", "--config", str(ROOT / "configs" / "tiny-dpo.yaml"), "--sft", str(sft_lora),
                "--data.manifests", f"[{pairs / 'bad.jsonl'}]", "--out", str(tmp_path / "d"))
    assert done.returncode == 2 and "bad.jsonl:2: weight: must be >= 0" in done.stderr
    done = cli("train", "dpo", "--config", str(ROOT / "configs" / "tiny-dpo.yaml"), "--sft", str(tmp_path / "nope"),
                "--out", str(tmp_path / "d"))
    assert done.returncode == 2 and "no config.json" in done.stderr


@pytest.mark.e2e
def test_dpo_takes_the_model_from_its_sft_run_and_refuses_a_conflicting_key(sft_lora, pairs):
    """DPO inherits model, representation, text encoder, prompt length and shift from its SFT run; setting one of them
    to something else is refused with the key named, and the config given is left unchanged."""
    from idglow.runs.adopt import resolve_dpo
    from idglow.utils.config import ConfigError, to_dict

    overrides = ["--sft", str(sft_lora), "--data.manifests", f"[{pairs / 'pairs.jsonl'}]"]
    cfg = load_config(DPOConfig, ROOT / "configs" / "tiny-dpo.yaml", overrides)
    given = to_dict(cfg)
    resolved, sft = resolve_dpo(cfg)
    assert to_dict(cfg) == given
    assert resolved.model.identity == sft.model.identity and resolved.model.preset == "tiny"
    assert resolved.model.pretrained is None and resolved.data.max_tokens == sft.data.max_tokens == 32
    bad = load_config(DPOConfig, ROOT / "configs" / "tiny-dpo.yaml", [*overrides, "--representation.patch", "2"])
    with pytest.raises(ConfigError, match="representation: set to .*\"patch\": 2.*, but the SFT run .* has .*\"patch\": 8"):
        resolve_dpo(bad)


def test_a_dpo_run_refuses_an_sft_run_retrained_since(tmp_path):
    from idglow.runs.load import PARENT, check_dpo_parent, weights_fingerprint

    sft, dpo = tmp_path / "sft", tmp_path / "dpo"
    (sft / "final").mkdir(parents=True)
    (dpo / "final").mkdir(parents=True)
    (sft / "config.json").write_text("{}")
    (sft / "final" / "identity_branch.safetensors").write_bytes(b"weights v1")
    (dpo / "config.json").write_text(json.dumps({"sft": str(sft)}))
    (dpo / "final" / PARENT).write_text(json.dumps({"sft": str(sft), "sft_weights": weights_fingerprint(sft)}))
    check_dpo_parent(dpo)  # unchanged: accepted
    (sft / "final" / "identity_branch.safetensors").write_bytes(b"weights v2")
    with pytest.raises(ValueError, match=r"its SFT run .* changed since this DPO run was trained"):
        check_dpo_parent(dpo)
