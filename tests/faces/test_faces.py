"""Face backends: the dlib backend on real photos shipped in packages (matching maths: tests/eval)."""

import numpy as np
import pytest

from idglow.eval.suite import identity_scores
from idglow.faces import NoFaceError, load_backend

# --- pure maths -------------------------------------------------------------------------------------------------






def test_unknown_backend_and_insightface_without_models_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown face backend 'arcface'"):
        load_backend("arcface")
    with pytest.raises(ValueError, match="needs a local model folder"):
        load_backend("insightface")
    with pytest.raises(FileNotFoundError, match="holds no insightface .onnx models"):
        load_backend("insightface", model_dir=str(tmp_path))


# --- dlib on real photos -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dlib_backend():
    return load_backend("dlib")


@pytest.mark.parametrize("order", ["astronaut-hopper", "hopper-astronaut"])
def test_dlib_matches_each_face_of_a_composite_to_its_reference(packaged_photos, dlib_backend, order):
    astronaut, hopper = packaged_photos
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


def test_dlib_missing_reference_scores_zero_and_a_faceless_image_is_a_count_error(packaged_photos, dlib_backend):
    astronaut, hopper = packaged_photos
    refs = np.stack([dlib_backend.reference(astronaut, "astronaut"), dlib_backend.reference(hopper, "hopper")])
    only_astronaut = identity_scores(dlib_backend, astronaut, refs, expected_count=2)
    assert only_astronaut["faces"] == 1 and only_astronaut["facesim_per_ref"][1] == 0.0
    assert only_astronaut["count_ok"] == 0.0
    blank = np.full((200, 300, 3), 127, dtype=np.uint8)
    none = identity_scores(dlib_backend, blank, refs, expected_count=2)
    assert none["faces"] == 0 and none["facesim"] == 0.0 and none["count_ok"] == 0.0 and none["id_conf"] == 0.0
    with pytest.raises(NoFaceError, match="blank.png: no face found by the dlib backend"):
        dlib_backend.reference(blank, "blank.png")


