"""Face backends and identity metrics: pure matching maths, and the dlib backend on real photos shipped in packages."""

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data

from idglow.eval.facesim import id_confusion, match_similarity, swapped
from idglow.eval.suite import identity_scores
from idglow.faces import NoFaceError, load_backend

# --- pure maths -------------------------------------------------------------------------------------------------


def test_hungarian_matching_is_one_to_one_and_unmatched_references_score_zero():
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]])
    matched, index = match_similarity(sim)
    # greedy would give reference 0 face 0 (0.9) and reference 1 nothing better than 0.1; the optimum swaps
    assert index.tolist()[:2] == [1, 0] and matched[:2].tolist() == [0.8, 0.85]
    assert index[2] == -1 and matched[2] == 0.0
    assert match_similarity(np.zeros((2, 0)))[0].tolist() == [0.0, 0.0]


def test_id_confusion_and_swaps():
    sim = np.array([[0.8, 0.2], [0.4, 0.4], [-0.1, -0.3]])
    # (s1 - s2) / s1: 0.75; two equal faces: 0; no positive similarity: 0
    np.testing.assert_allclose(id_confusion(sim), [0.75, 0.0, 0.0])
    np.testing.assert_allclose(id_confusion(np.array([[0.5]])), [1.0])  # one face: s2 = 0
    np.testing.assert_allclose(id_confusion(np.zeros((2, 0))), [0.0, 0.0])
    # references listed left to right; faces found at x = 50 (face 0) and 10 (face 1)
    assert swapped(np.array([1, 0]), np.array([50.0, 10.0])).tolist() == [False, False]
    assert swapped(np.array([0, 1]), np.array([50.0, 10.0])).tolist() == [True, True]
    assert swapped(np.array([0, 1]), np.array([50.0, 10.0, 90.0])) is None  # count differs: order unknown
    assert swapped(np.array([0]), np.array([5.0])) is None


def test_unknown_backend_and_insightface_without_models_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown face backend 'arcface'"):
        load_backend("arcface")
    with pytest.raises(ValueError, match="needs a local model folder"):
        load_backend("insightface")
    with pytest.raises(FileNotFoundError, match="holds no insightface .onnx models"):
        load_backend("insightface", model_dir=str(tmp_path))


# --- dlib on real photos ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos():
    astronaut = data.astronaut()
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.array(im.convert("RGB").resize((427, 512)))
    return astronaut, hopper


@pytest.fixture(scope="module")
def dlib_backend():
    return load_backend("dlib")


@pytest.mark.parametrize("order", ["astronaut-hopper", "hopper-astronaut"])
def test_dlib_matches_each_face_of_a_composite_to_its_reference(photos, dlib_backend, order):
    astronaut, hopper = photos
    refs = np.stack([dlib_backend.reference(astronaut, "astronaut"), dlib_backend.reference(hopper, "hopper")])
    left, right = (astronaut, hopper) if order == "astronaut-hopper" else (hopper, astronaut)
    composite = np.concatenate([left, right], axis=1)
    score = identity_scores(dlib_backend, composite, refs, expected_count=2)
    assert score["faces"] == 2 and score["count_ok"] == 1.0
    assert min(score["facesim_per_ref"]) > 0.75  # the same photo: descriptor distance ~0
    # the references are listed astronaut first: a swap exactly when the astronaut stands on the right
    assert score["swaps"] == (0 if order == "astronaut-hopper" else 2)
    cross = dlib_backend.similarity(refs[:1], refs[1:])[0, 0]
    assert cross < 0.5  # two different people fall below dlib's threshold (distance 0.6 -> 0.5)


def test_dlib_missing_reference_scores_zero_and_a_faceless_image_is_a_count_error(photos, dlib_backend):
    astronaut, hopper = photos
    refs = np.stack([dlib_backend.reference(astronaut, "astronaut"), dlib_backend.reference(hopper, "hopper")])
    only_astronaut = identity_scores(dlib_backend, astronaut, refs, expected_count=2)
    assert only_astronaut["faces"] == 1 and only_astronaut["facesim_per_ref"][1] == 0.0
    assert only_astronaut["count_ok"] == 0.0
    blank = np.full((200, 300, 3), 127, dtype=np.uint8)
    none = identity_scores(dlib_backend, blank, refs, expected_count=2)
    assert none["faces"] == 0 and none["facesim"] == 0.0 and none["count_ok"] == 0.0 and none["id_conf"] == 0.0
    with pytest.raises(NoFaceError, match="blank.png: no face found by the dlib backend"):
        dlib_backend.reference(blank, "blank.png")


def test_bench_build_from_a_photo_folder_rejects_and_lists_bad_photos(photos, tmp_path):
    import json
    import subprocess
    import sys

    astronaut, hopper = photos
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(astronaut).save(faces / "astronaut.png")
    Image.fromarray(hopper).save(faces / "hopper.jpg")
    Image.fromarray(np.concatenate([astronaut, hopper], axis=1)).save(faces / "both.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(faces / "wall.png")
    (faces / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (faces / "notes.txt").write_text("ignored: not an image suffix")
    out = tmp_path / "bench"
    done = subprocess.run([sys.executable, "-m", "idglow", "bench", "build", "--faces", str(faces), "--out", str(out),
                           "--per-size", "3"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "build.json").read_text())
    assert summary["accepted"] == 2
    assert summary["rejected_files"] == {"unreadable": ["broken.jpg"], "no face": ["wall.png"], "several faces": ["both.png"]}
    assert "rejected (several faces): both.png" in done.stdout
    from idglow.data.manifest import load_manifest

    group = load_manifest(out / "group-fusion.jsonl", "benchmark")  # validates; refs exist
    age = load_manifest(out / "age-group.jsonl", "benchmark")
    assert len(group) == len(age) == 3  # only pairs: two people cannot make sets of 3 or 4
    assert all(sorted(r["refs"]) == ["refs/astronaut.png", "refs/hopper.png"] for r in group)
    assert all(r["task"] == "age" and "child" in r["prompt"] for r in age)
    crop = np.array(Image.open(out / "refs" / "astronaut.png"))
    assert crop.shape == (128, 128, 3)
    backend = load_backend("dlib")  # the crop still holds the same, findable face
    assert backend.similarity(backend.reference(crop, "crop")[None], backend.reference(astronaut, "a")[None])[0, 0] > 0.6
    empty = tmp_path / "empty"
    empty.mkdir()
    failed = subprocess.run([sys.executable, "-m", "idglow", "bench", "build", "--faces", str(empty), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2 and "holds no images" in failed.stderr
