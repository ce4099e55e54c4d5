"""WebDataset shards of SFT scenes: an alternative to a JSONL manifest plus image files, for large sets.

One sample per scene, written by webdataset's ``ShardWriter`` and read by ``webdataset.WebDataset``:
``<key>.json`` is the manifest record, whose ``image`` and each subject's ``ref`` name members of the same
sample (``image.png``, ``ref0.png``, ...); the bytes are the original files, unchanged. A shard set is named
like a manifest, by a ``.tar`` path or a brace pattern (``shards/sft-{000000..000009}.tar``), anywhere a
manifest is accepted (``data.manifests``). Records are validated like JSONL ones; errors name the shard,
the sample key and the field.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from idglow.data.manifest import CHECKS, ManifestError, _Record, load_manifest


def is_shards(spec: str | Path) -> bool:
    """Whether a ``data.manifests`` entry names webdataset shards (``.tar``, possibly a brace pattern)."""
    return str(spec).endswith(".tar")


def write_shards(manifest: str | Path, out: str | Path, per_shard: int = 1000) -> list[Path]:
    """Pack the SFT manifest ``manifest`` and its images into shards ``out/<stem>-NNNNNN.tar``; returns their paths."""
    import webdataset as wds

    manifest, out = Path(manifest), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pattern = str(out / f"{manifest.stem}-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=per_shard, verbose=0) as sink:
        for index, record in enumerate(load_manifest(manifest, "sft")):
            record = {k: v for k, v in record.items() if k != "_line"}
            sample = {"__key__": f"{index:09d}", "image.png": (manifest.parent / record["image"]).read_bytes()}
            record["image"] = "image.png"
            subjects = []
            for i, subject in enumerate(record["subjects"]):
                sample[f"ref{i}.png"] = (manifest.parent / subject["ref"]).read_bytes()
                subjects.append({**subject, "ref": f"ref{i}.png"})
            sample["json"] = json.dumps({**record, "subjects": subjects}).encode()
            sink.write(sample)
    return sorted(out.glob(f"{manifest.stem}-*.tar"))


class _ShardRecord(_Record):
    """A record's checks, with the sample's members standing in for files next to a manifest."""

    def __init__(self, data, label: str, index: int, members: dict[str, bytes]):
        super().__init__(data, Path(label), index, check_files=False)
        self.members = members

    def file(self, field: str, value) -> str:  # a member of the sample instead of a file next to the manifest
        self.text(field, value)
        if value not in self.members:
            self.fail(field, f"no member {value!r} in this sample (members: {sorted(self.members)})")
        return value


def read_shard_records(spec: str | Path) -> Iterator[tuple[str, int, dict, dict[str, bytes]]]:
    """``(label, index, record, members)`` per sample of the shards ``spec``, in order; records validated.

    ``label`` is ``shard.tar#key`` (for messages); ``members`` maps a member name to its bytes.
    """
    import webdataset as wds

    dataset = wds.WebDataset(str(spec), shardshuffle=False, empty_check=False)
    count = 0
    for count, sample in enumerate(_samples(dataset, spec), start=1):
        label = f"{Path(sample.get('__url__', str(spec))).name}#{sample['__key__']}"
        members = {k: v for k, v in sample.items() if not k.startswith("__") and k != "json"}
        if "json" not in sample:
            raise ManifestError(f"{label}: record: the sample has no .json member")
        try:
            record = json.loads(sample["json"])
        except json.JSONDecodeError as err:
            raise ManifestError(f"{label}: record: invalid JSON ({err.msg})") from None
        CHECKS["sft"](_ShardRecord(record, label, count, members))
        yield label, count, {**record, "_line": count}, members
    if count == 0:
        raise ManifestError(f"{spec}: no samples (empty shards)")


def _samples(dataset, spec) -> Iterator[dict]:
    """The samples of ``dataset``; an unreadable shard is a ManifestError naming it."""
    iterator = iter(dataset)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except (OSError, tarfile.TarError) as err:
            raise ManifestError(f"{spec}: cannot read shard: {err}") from None
