"""Streamed data (``data.stream``): shards indexed and read per batch give the in-memory path's batches, and a streamed
SFT run, stopped and resumed, ends with the in-memory run's weights; bad shards are named."""

import json

import pytest
import torch
from conftest import run_cli, run_sft
from safetensors.torch import load_file

from idglow.data.images import EpochOrder
from idglow.data.manifest import ManifestError
from idglow.data.shards import ShardIndex, write_shards
from idglow.data.streaming import StreamingScenes
from idglow.data.subjects import SubjectScenes


def _shards(cast, out, name: str, per_shard: int = 3) -> str:
    shards = write_shards(cast / f"{name}.jsonl", out, per_shard=per_shard)
    return str(out / f"{name}-{{000000..{len(shards) - 1:06d}}}.tar")


def test_streamed_shards_and_jsonl_give_the_in_memory_batches(cast, tmp_path):
    manifests = [cast / "sft-group-train.jsonl", cast / "sft-age-train.jsonl"]
    in_memory = SubjectScenes(manifests, progress=False)
    shards = [_shards(cast, tmp_path, "sft-group-train"), _shards(cast, tmp_path, "sft-age-train")]
    streamed = [StreamingScenes(shards), StreamingScenes(manifests)]
    assert len(ShardIndex(shards[0])) == 8 and all(len(s) == len(in_memory) == 12 for s in streamed)
    assert all(s.size == in_memory.size for s in streamed)
    order = EpochOrder(len(in_memory), 4, seed=5)
    for _ in range(5):  # across an epoch boundary
        index = order.next()
        expected = in_memory.scene_batch(index)
        for data in streamed:
            got = data.scene_batch(index)
            for key in ("images", "crops", "boxes", "rows", "slots", "tasks"):
                assert torch.equal(got[key], expected[key]), key
            assert got["prompts"] == expected["prompts"] and len(got["sources"]) == len(expected["sources"])
            assert torch.equal(data.batch(index)[0], expected["images"])
    # shard members are told apart by content in the latent cache
    assert len(set(streamed[0].cache_keys("vae", torch.arange(12)))) == 12
    batch = torch.tensor([3, 9])
    assert [f"vae|{i}" for i in streamed[0].scene_batch(batch)["identities"]] == streamed[0].cache_keys("vae", batch)


def test_a_streamed_sft_run_resumes_and_ends_with_the_in_memory_weights(cast, base, sft_run, tmp_path):
    manifests = json.dumps([_shards(cast, tmp_path, "sft-group-train"), _shards(cast, tmp_path, "sft-age-train")])
    argv = ("--data.stream", "true", "--data.manifests", manifests, "--diagnostics.every", "0")
    first = run_sft(cast, base, tmp_path / "run", *argv, "--optim.steps", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_sft(cast, base, tmp_path / "run", *argv, "--optim.steps", "2", runner=run_cli)  # resumed in a new process
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from" in again.stdout + again.stderr
    streamed = load_file(str(tmp_path / "run" / "final" / "identity_branch.safetensors"))
    in_memory = load_file(str(sft_run / "final" / "identity_branch.safetensors"))
    assert streamed.keys() == in_memory.keys()
    for key in in_memory:  # per-batch reference embeddings may round differently from the once-for-all ones
        torch.testing.assert_close(streamed[key], in_memory[key], rtol=1e-4, atol=1e-6, msg=key)
    moved = [k for k in in_memory if "to_out" in k and in_memory[k].abs().sum() > 0]
    assert moved  # the comparison is between trained weights, not two zero initialisations


def test_bad_streamed_data_is_named(cast, tmp_path):
    pattern = _shards(cast, tmp_path, "sft-group-train", per_shard=100)
    shard = tmp_path / "sft-group-train-000000.tar"
    with pytest.raises(ManifestError, match=r"cannot read shard \S*sft-group-train-000001.tar: .*No such file"):
        ShardIndex(str(tmp_path / "sft-group-train-{000000..000001}.tar"))  # the first exists, the second does not
    data = bytearray(shard.read_bytes())
    record = data.index(b'"task": "group"')
    data[record : record + len(b'"task": "group"')] = b'"task": "party"'
    shard.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"sft-group-train-000000\.tar#000000000:1: task: expected one of"):
        StreamingScenes([pattern])
    with pytest.raises(ManifestError, match=r"sft-group-train.jsonl:\d+: subjects: \d subjects exceed the model's max_refs=1"):
        StreamingScenes([cast / "sft-group-train.jsonl"], max_refs=1).batch(torch.arange(8))
    with pytest.raises(ValueError, match="data.stream: DPO reads preference pairs into memory"):
        from idglow.recipes.dpo import DPOConfig

        config = DPOConfig()
        config.data.stream = True
        config.validate()
