"""WebDataset shards of SFT scenes: an alternative to a JSONL manifest plus image files, for large sets.

One sample per scene, written by webdataset's ``ShardWriter`` and read by ``webdataset.WebDataset``:
``<key>.json`` is the manifest record, whose ``image`` and each subject's ``ref`` name members of the same
sample (``image.png``, ``ref0.png``, ...); the bytes are the original files, unchanged. A shard set is named
like a manifest, by a ``.tar`` path or a brace pattern (``shards/sft-{000000..000009}.tar``), anywhere a
manifest is accepted (``data.manifests``). Records are validated like JSONL ones; errors name the shard,
the sample key and the field.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

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
        record = _validate(label, count, sample["json"], members)
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


class ShardIndex:
    """Random access to the samples of a shard set: where each sample's members lie in its ``.tar``.

    Built by one pass over the tar headers (stdlib ``tarfile``, seeking past the data), which also validates every
    record, so a bad one is reported before training starts. Held as three integer arrays (shard, first byte,
    end byte: 20 bytes a sample), so memory barely grows with the set; a sample is read back as one ``seek`` and one
    ``read`` of its span, which webdataset's own tar iterator splits into members.

    Raises:
        ManifestError: an unreadable shard, a sample without a record, or a malformed record, naming shard#key and field.
    """

    def __init__(self, spec: str | Path):
        from webdataset.shardlists import expand_urls

        self.spec, self.paths = str(spec), [Path(p) for p in expand_urls(str(spec))]
        shards, starts, ends = [], [], []
        for number, path in enumerate(self.paths):
            for start, end in self._scan(path, first_line=len(starts) + 1):
                shards.append(number)
                starts.append(start)
                ends.append(end)
        if not starts:
            raise ManifestError(f"{spec}: no samples (empty shards)")
        self.shards = np.asarray(shards, dtype=np.int32)
        self.starts, self.ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def _scan(self, path: Path, first_line: int) -> Iterator[tuple[int, int]]:
        """``(first byte, end byte)`` of each sample of the shard at ``path``, validating its record."""
        from webdataset.tariterators import base_plus_ext

        try:
            with tarfile.open(path, "r:") as tar:
                key, start, end, names, record = None, 0, 0, {}, None
                while (info := tar.next()) is not None:
                    tar.members = []  # the index is ours: tarfile need not remember every header
                    prefix, suffix = base_plus_ext(info.name)
                    if not info.isreg() or prefix is None:
                        continue
                    if prefix != key:
                        if key is not None:
                            self._check(path, key, first_line, names, record)
                            first_line += 1
                            yield start, end
                        key, start, names, record = prefix, info.offset, {}, None
                    end = info.offset_data + -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE  # data is padded to blocks
                    names[suffix] = None
                    if suffix == "json":
                        record = tar.extractfile(info).read()
                if key is not None:
                    self._check(path, key, first_line, names, record)
                    yield start, end
        except (OSError, tarfile.TarError) as err:
            raise ManifestError(f"{self.spec}: cannot read shard {path}: {err}") from None

    @staticmethod
    def _check(path: Path, key: str, line: int, names: dict, raw: bytes | None) -> None:
        label = f"{path.name}#{key}"
        if raw is None:
            raise ManifestError(f"{label}: record: the sample has no .json member")
        _validate(label, line, raw, {k: v for k, v in names.items() if k != "json"})

    def read(self, i: int) -> tuple[str, dict, dict[str, bytes]]:
        """``(label shard.tar#key, record with its _line, members name -> bytes)`` of sample ``i``."""
        from webdataset.tariterators import base_plus_ext, tar_file_iterator

        path = self.paths[int(self.shards[i])]
        try:
            with open(path, "rb") as f:
                f.seek(int(self.starts[i]))
                span = f.read(int(self.ends[i] - self.starts[i]))
            members, key = {}, None
            for item in tar_file_iterator(io.BytesIO(span)):
                key, suffix = base_plus_ext(item["fname"])
                members[suffix] = item["data"]
        except (OSError, tarfile.TarError) as err:
            raise ManifestError(f"{path}: cannot read sample {i}: {err} (was the shard changed after indexing?)") from None
        label = f"{path.name}#{key}"
        if "json" not in members:
            raise ManifestError(f"{label}: record: the sample has no .json member (was the shard changed?)")
        record = json.loads(members.pop("json"))
        return label, {**record, "_line": i + 1}, members


def _validate(label: str, line: int, raw: bytes, members: dict) -> dict:
    """The record ``raw`` (JSON bytes) of sample ``label``, checked as an SFT record whose files are ``members``."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{label}: record: invalid JSON ({err.msg})") from None
    CHECKS["sft"](_ShardRecord(record, label, line, members))
    return record
