"""Exporting runs as model folders: the SFT stage peeled off an exported SFT+DPO model, and its DPO adapter scaled."""

import json

import pytest
import torch
from conftest import cli, nonzero_dpo_run


@pytest.mark.e2e
def test_export_stage_sft_gives_back_the_sft_run_of_an_exported_dpo_model(sft_lora, pairs, tmp_path):
    """`train export --stage sft` on an exported SFT+DPO model writes a model that computes what its SFT run computes
    (same identity branch, SFT's ranks of the stacked LoRA), not what the DPO model does; its provenance names the
    model it came from. A model without DPO, a run folder and a missing --out are refused, named."""
    from idglow.models.lora import fuse_lora
    from idglow.runs.export import init_provenance
    from idglow.runs.load import load_run

    dpo = nonzero_dpo_run(sft_lora, pairs, tmp_path / "dpo")
    assert cli("train", "export", "--run", dpo, "--out", tmp_path / "model").returncode == 0
    done = cli("train", "export", "--run", tmp_path / "model", "--stage", "sft", "--out", tmp_path / "peeled")
    assert done.returncode == 0, done.stderr
    provenance = json.loads((tmp_path / "peeled" / "provenance.json").read_text())
    assert provenance["stage"] == "sft" and set(provenance["stages"]) == {"sft"} and provenance["scores"] == {}
    assert provenance["source"] == str(tmp_path / "model") and provenance["peeled_from"]["source"] == str(dpo)
    assert not (tmp_path / "peeled" / "sampler.json").exists()
    started_from = init_provenance({"init": str(tmp_path / "peeled")})  # what a run started from it records
    assert started_from["stage"] == "sft" and started_from["peeled_from"]["source"] == str(dpo)

    (peeled, cfg), (sft, _), (with_dpo, _) = (load_run(r) for r in (tmp_path / "peeled", sft_lora, tmp_path / "model"))
    assert cfg.model.lora.rank == json.loads((sft_lora / "config.json").read_text())["model"]["lora"]["rank"]
    weights = []
    for model in (peeled, sft, with_dpo):
        fuse_lora(model)  # each adapter merged: models that compute the same have the same weights
        weights.append(model.state_dict())
    assert weights[0].keys() == weights[1].keys() == weights[2].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=1e-6, rtol=1e-5, msg=key)
    assert max((weights[0][k] - weights[2][k]).abs().max() for k in weights[0]) > 1e-3  # the DPO adapter is out

    done = cli("train", "export", "--run", tmp_path / "peeled", "--stage", "sft", "--out", tmp_path / "again")
    assert done.returncode == 2 and "no dpo_config; the model has no DPO stage to peel off" in done.stderr
    done = cli("train", "export", "--run", dpo, "--stage", "sft", "--out", tmp_path / "again")
    assert done.returncode == 2 and "not an exported model" in done.stderr
    done = cli("train", "export", "--run", tmp_path / "model", "--stage", "sft")
    assert done.returncode == 2 and "--stage sft: give --out" in done.stderr
    assert not (tmp_path / "again").exists()


@pytest.mark.e2e
def test_export_dpo_scale_moves_the_model_along_the_dpo_adapter(sft_lora, pairs, tmp_path):
    """`train export --dpo-scale S` writes W_base + dW_sft + S dW_dpo, exactly: scale 0 computes what the SFT run
    computes, 1 what the exported DPO model does, 2 lies as far past it (W(2) = 2 W(1) - W(0)); the identity branch is
    untouched; its provenance records the scale and the source, carries none of the source's scores, and a scale below
    0, a model without DPO and a missing --out are refused, named."""
    from idglow.models.lora import fuse_lora
    from idglow.runs.load import load_run

    dpo = nonzero_dpo_run(sft_lora, pairs, tmp_path / "dpo")
    assert cli("train", "export", "--run", dpo, "--out", tmp_path / "model").returncode == 0
    for scale in ("0", "1", "2"):
        done = cli("train", "export", "--run", tmp_path / "model", "--dpo-scale", scale, "--out", tmp_path / f"s{scale}")
        assert done.returncode == 0, done.stderr
    provenance = json.loads((tmp_path / "s2" / "provenance.json").read_text())
    assert provenance["dpo_scale"] == 2.0 and provenance["source"] == str(tmp_path / "model")
    assert provenance["scaled_from"]["source"] == str(dpo) and provenance["scores"] == {}
    assert set(provenance["stages"]) == {"sft", "dpo"} and not (tmp_path / "s2" / "sampler.json").exists()

    weights = {}
    for name, run in (("sft", sft_lora), ("dpo", tmp_path / "model"), *((s, tmp_path / f"s{s}") for s in "012")):
        model, _ = load_run(run)
        fuse_lora(model)  # each adapter merged: models that compute the same have the same weights
        weights[name] = model.state_dict()
    for key in weights["sft"]:
        torch.testing.assert_close(weights["0"][key], weights["sft"][key], atol=1e-6, rtol=1e-5, msg=key)
        torch.testing.assert_close(weights["1"][key], weights["dpo"][key], atol=1e-6, rtol=1e-5, msg=key)
        extrapolated = 2 * weights["dpo"][key] - weights["sft"][key]
        torch.testing.assert_close(weights["2"][key], extrapolated, atol=1e-5, rtol=1e-5, msg=key)
    assert max((weights["2"][k] - weights["dpo"][k]).abs().max() for k in weights["dpo"]) > 1e-3
    # a scaled model is rescaled from its record: scale 1 on the scale-2 model is the model as trained
    assert cli("train", "export", "--run", tmp_path / "s2", "--dpo-scale", "1", "--out", tmp_path / "back").returncode == 0
    back, _ = load_run(tmp_path / "back")
    fuse_lora(back)
    for key, value in back.state_dict().items():
        torch.testing.assert_close(value, weights["dpo"][key], atol=1e-5, rtol=1e-5, msg=key)
    assert json.loads((tmp_path / "back" / "provenance.json").read_text())["dpo_scale"] == 1.0
    done = cli("train", "export", "--run", tmp_path / "s0", "--dpo-scale", "1", "--out", tmp_path / "bad")
    assert done.returncode == 2 and "scaled to 0, so it cannot be scaled back" in done.stderr

    done = cli("train", "export", "--run", tmp_path / "model", "--dpo-scale", "-1", "--out", tmp_path / "bad")
    assert done.returncode == 2 and "--dpo-scale -1.0: give a finite scale >= 0" in done.stderr
    done = cli("train", "export", "--run", tmp_path / "model", "--dpo-scale", "2")
    assert done.returncode == 2 and "--dpo-scale: give --out" in done.stderr
    assert cli("train", "export", "--run", tmp_path / "model", "--stage", "sft", "--out", tmp_path / "peeled").returncode == 0
    done = cli("train", "export", "--run", tmp_path / "peeled", "--dpo-scale", "2", "--out", tmp_path / "bad")
    assert done.returncode == 2 and "no dpo_config; the model has no DPO stage" in done.stderr
    assert not (tmp_path / "bad").exists()
