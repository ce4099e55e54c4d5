"""Exporting runs as model folders: the SFT stage peeled off an exported SFT+DPO model."""

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
