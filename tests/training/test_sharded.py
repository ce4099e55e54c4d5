"""Sharded training: FSDP2 through accelerate on 2 CPU processes (gloo) trains SFT and DPO and resumes bit-identically
from checkpoints written through accelerate's state API; what a sharded checkpoint may and may not be."""

import json
import os
import pickle
import shutil

import pytest
import torch
from conftest import ROOT, accelerate_launch, cli
from safetensors.torch import load_file

from idglow.training.checkpoint import CheckpointError
from idglow.training.engine import EngineError, configure_deepspeed
from idglow.training.sharded_checkpoint import check_metadata, load_sharded_checkpoint


def _copy_checkpoint(run, step: int, into):
    """A new run folder holding only checkpoint ``step`` of ``run`` (as if ``run`` had been killed after writing it)."""
    name = f"step-{step:07d}"
    shutil.copytree(run / "checkpoints" / name, into / "checkpoints" / name)
    (into / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": name, "step": step}))
    return into


def _assert_resumes_bit_identically(argv: list, run, resumed, weights: list[str]) -> None:
    done = accelerate_launch("fsdp-cpu.yaml", 2, *argv, "--out", run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "DistributedType.FSDP across 2 processes" in done.stdout
    assert done.stdout.count("done: step 4") == 1  # one closing line, from the first process
    checkpoint = run / "checkpoints" / "step-0000002"
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["processes"] == 2 and state["engine"] == "DistributedType.FSDP"
    for part in ("pytorch_model_fsdp_0", "optimizer_0"):  # one shard per process, through torch distributed checkpoint
        assert sorted(p.name for p in (checkpoint / part).glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert (checkpoint / "ema.safetensors").is_file() and (checkpoint / "rng-1.safetensors").is_file()

    done = accelerate_launch("fsdp-cpu.yaml", 2, *argv, "--out", _copy_checkpoint(run, 2, resumed))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stdout + done.stderr
    for name in weights:
        straight, again = (load_file(str(r / "final" / f"{name}.safetensors")) for r in (run, resumed))
        assert straight.keys() == again.keys() and straight
        for key in straight:
            assert torch.equal(straight[key], again[key]), key
    steps = [json.loads(line)["step"] for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == 4


@pytest.mark.e2e
def test_fsdp_trains_sft_and_resumes_bit_identically(cast, base, tmp_path):
    """4 steps straight vs 2 steps, killed, resumed from the sharded checkpoint: the same identity branch, LoRA and EMA
    bit for bit (LoRA, EMA and the identity branch all live in sharded units)."""
    manifests = f"[{cast / 'sft-group-train.jsonl'},{cast / 'sft-age-train.jsonl'}]"
    argv = ["train", "sft", "--config", ROOT / "configs" / "tiny-sft.yaml", "--base", base, "--data.manifests", manifests,
            "--diagnostics.manifests", manifests, "--diagnostics.every", "0", "--optim.steps", "4",
            "--optim.ema_decay", "0.9", "--model.lora.rank", "2"]
    _assert_resumes_bit_identically(argv, tmp_path / "run", tmp_path / "resumed", ["identity_branch", "lora"])

    # a one-process launch refuses the sharded checkpoint with a reason, not a traceback
    done = cli(*argv, "--optim.steps", "6", "--out", tmp_path / "run")
    assert done.returncode == 2 and "written by a sharded run" in done.stderr


@pytest.mark.e2e
def test_fsdp_trains_dpo_and_resumes_bit_identically(sft_lora, pairs, tmp_path):
    argv = ["train", "dpo", "--config", ROOT / "configs" / "tiny-dpo.yaml", "--sft", sft_lora,
            "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--optim.steps", "4", "--optim.ema_decay", "0.9",
            "--log.checkpoint_every", "2"]
    _assert_resumes_bit_identically(argv, tmp_path / "run", tmp_path / "resumed", ["lora"])
    assert json.loads((tmp_path / "run" / "final" / "parent.json").read_text())["sft"] == str(sft_lora)


def test_checkpoint_index_is_read_by_a_restricted_unpickler(tmp_path):
    """A real distributed-checkpoint index passes; one that names any other global is refused before anything loads."""
    import torch.distributed.checkpoint as dcp

    dcp.save({"w": torch.ones(3)}, checkpoint_id=str(tmp_path / "real"))
    check_metadata(tmp_path / "real")

    class Payload:
        def __reduce__(self):
            return (os.makedirs, (str(tmp_path / "pwned"),))

    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / ".metadata").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match=r"evil/\.metadata: not a torch distributed-checkpoint index"):
        check_metadata(tmp_path / "evil")
    assert not (tmp_path / "pwned").exists()


def test_sharded_checkpoint_refuses_another_process_count_and_an_unsharded_one(tmp_path):
    class TwoProcesses:
        num_processes = 2

    (tmp_path / "state.json").write_text(json.dumps({"step": 2, "processes": 4}))
    with pytest.raises(CheckpointError, match="written by 4 processes, resumed with 2.*--num_processes 4"):
        load_sharded_checkpoint(TwoProcesses(), tmp_path, torch.Generator())
    (tmp_path / "state.json").write_text(json.dumps({"step": 2}))
    with pytest.raises(CheckpointError, match="written by a run without sharding"):
        load_sharded_checkpoint(TwoProcesses(), tmp_path, torch.Generator())


def test_deepspeed_config_gets_the_micro_batch_and_must_agree_with_the_recipe():
    """The ZeRO-2 path as far as a CPU machine checks it: what the trainer adds to the plugin's config before prepare."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = dict(load_config_from_file(str(ROOT / "configs" / "accelerate" / "zero2.yaml")).deepspeed_config)
    configure_deepspeed(config, batch_size=4, grad_accum=1, grad_clip=1.0)
    assert config["train_micro_batch_size_per_gpu"] == 4 and config["zero_stage"] == 2
    configure_deepspeed(auto := {"gradient_accumulation_steps": "auto"}, batch_size=2, grad_accum=3, grad_clip=0.5)
    assert auto == {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 3, "gradient_clipping": 0.5}
    with pytest.raises(EngineError, match="gradient_accumulation_steps is 1 but optim.grad_accum is 2"):
        configure_deepspeed(dict(config), batch_size=4, grad_accum=2, grad_clip=1.0)
