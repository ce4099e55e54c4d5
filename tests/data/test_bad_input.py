"""Bad input, generated here (no binary fixtures): each case must end in an error that names what is wrong."""

import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from idglow.data.images import CaptionedImages, read_rgb
from idglow.data.manifest import ManifestError, load_manifest
from idglow.utils.io import load_weights, open_append_log, read_append_log


def _png(path, size=(8, 8), colour=(200, 30, 30)):
    Image.new("RGB", size, colour).save(path)
    return path.name


def _manifest(tmp_path, records, name="m.jsonl", raw: bytes | None = None):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records).encode())
    return path


def _sft(tmp_path, **subject):
    image, ref = _png(tmp_path / "a.png", (64, 32)), _png(tmp_path / "r.png")
    return {"image": image, "prompt": "one person", "task": "group",
            "subjects": [{"ref": ref, "box": [1, 1, 10, 10], **subject}]}


def _pair(tmp_path, **extra):
    names = [_png(tmp_path / f"{n}.png") for n in ("w", "l", "r")]
    return {"prompt": "p", "task": "group", "refs": [names[2]], "winner": names[0], "loser": names[1], **extra}


@pytest.mark.parametrize("extra,field", [({"weight": float("nan")}, "weight"), ({"margin": float("inf")}, "margin")])
def test_non_finite_pair_weight_or_margin_is_named(tmp_path, extra, field):
    path = _manifest(tmp_path, [_pair(tmp_path), _pair(tmp_path, **extra)])
    assert "NaN" in path.read_text() or "Infinity" in path.read_text()  # what json.dumps writes, and json.loads accepts
    with pytest.raises(ManifestError, match=rf"m.jsonl:2: {field}: expected a finite number"):
        load_manifest(path, "preference")


def test_an_infinite_box_is_named_with_its_subject_and_coordinate(tmp_path):
    path = _manifest(tmp_path, [_sft(tmp_path, box=[0, 0, float("inf"), float("inf")])])
    with pytest.raises(ManifestError, match=r"m.jsonl:1: subjects\[0\].box\[2\]: expected a finite number"):
        load_manifest(path, "sft")


@pytest.mark.parametrize("bad_id", ["../../x", "a/b", ".hidden", "", "x" * 300])
def test_benchmark_ids_must_be_safe_file_names(tmp_path, bad_id):
    ref = _png(tmp_path / "r.png")
    record = {"id": bad_id, "prompt": "p", "task": "group", "refs": [ref], "expected": {"count": 1}}
    with pytest.raises(ManifestError, match=r"m.jsonl:1: id: "):
        load_manifest(_manifest(tmp_path, [record]), "benchmark")


def test_a_repeated_benchmark_id_names_both_lines(tmp_path):
    ref = _png(tmp_path / "r.png")
    record = {"id": "same", "prompt": "p", "task": "group", "refs": [ref], "expected": {"count": 1}}
    with pytest.raises(ManifestError, match=r"m.jsonl:3: id: 'same' repeats the id of line 1"):
        load_manifest(_manifest(tmp_path, [record, {**record, "id": "other"}, record]), "benchmark")


def test_a_byte_order_mark_is_accepted_and_a_non_utf8_byte_is_named_with_its_line(tmp_path):
    text = json.dumps(_sft(tmp_path)) + "\n"
    assert len(load_manifest(_manifest(tmp_path, [], raw=b"\xef\xbb\xbf" + text.encode()), "sft")) == 1
    raw = text.encode() + text.encode()[:20] + b"\xff" + text.encode()[21:]
    with pytest.raises(ManifestError, match=r"m.jsonl:2: record: not UTF-8 text \(byte 0xff\)"):
        load_manifest(_manifest(tmp_path, [], raw=raw), "sft")


def test_an_empty_training_manifest_is_named(tmp_path):
    path = _manifest(tmp_path, [], raw=b"\n")
    with pytest.raises(ManifestError, match=r"m.jsonl: no records"):
        CaptionedImages([path], progress=False)


def _png_claiming(path, width, height):
    """A valid 1x1 PNG whose header claims ``width`` x ``height`` (a decompression bomb's header, 70 bytes)."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytes(data[12:29])  # chunk type + 13 bytes of IHDR data
    patched = ihdr[:4] + struct.pack(">II", width, height) + ihdr[12:]
    data[12:29] = patched
    data[29:33] = struct.pack(">I", zlib.crc32(patched))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("side", [10_000, 40_000])
def test_a_decompression_bomb_header_is_refused_before_decoding(tmp_path, side):
    path = _png_claiming(tmp_path / "bomb.png", side, side)
    with pytest.raises(ManifestError, match=r"x.jsonl:3: refs\[0\]: image 'bomb.png' is .*over the limit of 89,478,485 pixels"):
        read_rgb(path, "x.jsonl:3: refs[0]")


def test_sixteen_bit_greyscale_is_scaled_not_clipped_to_white(tmp_path):
    grey = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    rgb = read_rgb(tmp_path / "g16.png", "here")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 3, 3)
    assert rgb[0, :, 0].tolist() == [0, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()


@pytest.mark.parametrize("mode", ["P", "L", "LA", "RGBA", "CMYK", "1"])
def test_other_modes_become_rgb(tmp_path, mode):
    Image.new("RGB", (4, 2), (10, 200, 30)).convert(mode).save(tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg")
    rgb = read_rgb(tmp_path / ("x.png" if mode != "CMYK" else "x.jpg"), "here")
    assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"not safetensors at all", b"\x80\x04\x95pickle"])
def test_broken_weights_files_are_named(tmp_path, content):
    path = tmp_path / "identity_branch.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"identity_branch.safetensors: not a readable safetensors file"):
        load_weights(path)


def test_appending_after_a_torn_last_line_starts_a_new_line(tmp_path):
    log = tmp_path / "scored.jsonl"
    log.write_text(json.dumps({"id": "a"}) + "\n" + '{"id": "b", "sco')
    assert read_append_log(log) == [{"id": "a"}]  # the torn line is skipped when reading ...
    with open_append_log(log) as f:  # ... and cut before appending, so the next record is whole
        f.write(json.dumps({"id": "c"}) + "\n")
    assert read_append_log(log) == [{"id": "a"}, {"id": "c"}]
    assert log.read_text().count("\n") == 2


@pytest.mark.parametrize("expected,field", [({}, "expected.count"), ({"count": 0}, "expected.count"),
                                            ({"count": 1, "clothing": ["red", "blue"]}, "expected.clothing"),
                                            ({"count": 1, "target": "missing.png"}, "expected.target"),
                                            ({"count": 1, "boxes": [[0, 0, float("nan"), 4]]}, r"expected.boxes\[0\]\[2\]")])
def test_a_benchmark_expectation_is_checked_at_load(tmp_path, expected, field):
    ref = _png(tmp_path / "r.png")
    record = {"id": "a", "prompt": "p", "task": "group", "refs": [ref], "expected": expected}
    with pytest.raises(ManifestError, match=rf"m.jsonl:1: {field}: "):
        load_manifest(_manifest(tmp_path, [record]), "benchmark")


def test_sft_scene_ids_are_safe_names_and_pairs_refuse_a_repeated_one(tmp_path):
    from idglow.pairs.build import training_items

    with pytest.raises(ManifestError, match=r"m.jsonl:1: id: '../x' is not a safe file name"):
        load_manifest(_manifest(tmp_path, [{**_sft(tmp_path), "id": "../x"}]), "sft")
    path = _manifest(tmp_path, [{**_sft(tmp_path), "id": "s"}, {**_sft(tmp_path), "id": "s"}])
    with pytest.raises(ManifestError, match=r"m.jsonl:2: id: 's' repeats the scene of .*m.jsonl:1"):
        training_items([path], [], None)


def test_an_odd_first_image_is_named_beside_the_one_that_differs(tmp_path):
    first = {**_sft(tmp_path), "image": _png(tmp_path / "tiny.png", (1, 1))}
    path = _manifest(tmp_path, [first, _sft(tmp_path)])
    with pytest.raises(ManifestError, match=r"m.jsonl:2: image: size 64x32 differs from the first image's 1x1 "
                                            r"\(.*m.jsonl:1: image\); every image must have one size"):
        CaptionedImages([path], progress=False)
