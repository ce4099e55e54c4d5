"""Webdataset shards are an alternative to JSONL manifests: same records, same batches, named errors."""

import io
import json
import tarfile

import pytest
import torch

from idglow.data.images import EpochOrder, first_image_size
from idglow.data.manifest import ManifestError
from idglow.data.shards import write_shards
from idglow.data.subjects import SubjectScenes


@pytest.mark.e2e
def test_shards_and_jsonl_give_the_same_batches(cast, tmp_path):
    manifest = cast / "sft-group-train.jsonl"
    shards = write_shards(manifest, tmp_path, per_shard=3)
    assert len(shards) == 3  # 8 scenes, 3 per shard
    pattern = str(tmp_path / "sft-group-train-{000000..000002}.tar")
    from_jsonl = SubjectScenes([manifest], progress=False)
    from_shards = SubjectScenes([pattern], progress=False)
    for name in ("images", "refs", "boxes", "first", "tasks"):
        assert torch.equal(getattr(from_jsonl, name), getattr(from_shards, name)), name
    assert from_jsonl.prompts == from_shards.prompts
    orders = [EpochOrder(8, 2, seed=3), EpochOrder(8, 2, seed=3)]
    for _ in range(6):
        a, b = orders[0].next(), orders[1].next()
        torch.testing.assert_close(from_jsonl.batch(a)[0], from_shards.batch(b)[0])
        torch.testing.assert_close(from_jsonl.ref_crops(from_jsonl.subjects(a)[0]), from_shards.ref_crops(from_shards.subjects(b)[0]))
    # The latent cache tells shard members apart by content, JSONL images by path.
    assert len(set(from_shards.cache_keys("vae"))) == 8
    # The training size an eval compares against reads the same from both; None where the data is not here.
    assert first_image_size([pattern]) == first_image_size([manifest]) == (64, 128)
    assert first_image_size([tmp_path / "gone.jsonl"]) is None and first_image_size([]) is None


def _rewrite_first_record(shard, change):
    members = {}
    with tarfile.open(shard) as tar:
        for m in tar.getmembers():
            members[m.name] = tar.extractfile(m).read()
    record = json.loads(members["000000000.json"])
    change(record)
    members["000000000.json"] = json.dumps(record).encode()
    with tarfile.open(shard, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.e2e
def test_a_bad_shard_record_names_the_shard_sample_and_field(cast, tmp_path):
    shard = write_shards(cast / "sft-group-train.jsonl", tmp_path, per_shard=100)[0]
    _rewrite_first_record(shard, lambda r: r["subjects"][1].update(ref="ref9.png"))
    with pytest.raises(ManifestError, match=r"sft-group-train-000000\.tar#000000000:1: subjects\[1\]\.ref: no member 'ref9.png'"):
        SubjectScenes([str(shard)], progress=False)
    _rewrite_first_record(shard, lambda r: r.update(task="party"))
    with pytest.raises(ManifestError, match=r"#000000000:1: task: expected one of"):
        SubjectScenes([str(shard)], progress=False)
    with pytest.raises(ManifestError, match="cannot read shard.*missing-000000.tar"):
        SubjectScenes([str(tmp_path / "missing-{000000..000001}.tar")], progress=False)
