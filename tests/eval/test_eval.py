"""Evaluation: face matching, identity confusion, the cast benchmark scores, idglow eval, group-level scores and win rates."""

import json

import numpy as np
import pytest
import torch
from conftest import JUDGES
from conftest import cli as _cli  # in-process: these commands run in seconds
from PIL import Image

from idglow.data.manifest import load_manifest
from idglow.eval.facesim import id_confusion, identified, identity_gallery, match_similarity, swapped
from idglow.eval.group_score import PairScoring, group_score, worst_weights
from idglow.faces import load_backend


@pytest.mark.e2e
def test_true_renders_score_mu_real_and_the_judges_read_age_and_colour(cast):
    from idglow.eval.run_eval import evaluate_targets

    for name in ("synth-group", "synth-age"):
        truth = evaluate_targets(cast / f"{name}.jsonl", JUDGES)
        assert truth["facesim_norm"] == pytest.approx(1.0, abs=1e-5)
        assert truth["count_accuracy"] == 1.0 and truth["colour_accuracy"] >= 0.9 and truth["leakage_rate"] <= 0.1
        # every true render's faces are identified among all identities of the benchmark, far above chance
        assert truth["identification"] >= 0.9 and truth["identification_chance"] < 0.2
    assert truth["child_rate"] >= 0.9 and truth["mini_adult_rate"] <= 0.1


@pytest.mark.e2e
def test_copy_paste_is_zero_for_the_true_render_of_the_reference_and_negative_for_its_own_scene(cast):
    """copy_paste = sim(face, reference) - sim(face, the person in the true render): the true render drawn for its own
    record scores sim - 1 < 0 (it *is* the true render); a face that is the reference crop itself scores above it."""
    import torch

    from idglow.cast.crops import to_tensor
    from idglow.cast.judge_training import load_judges
    from idglow.data.images import read_rgb
    from idglow.eval.cast_bench import copy_paste, score_image

    judges = load_judges(JUDGES)
    bench = cast / "synth-group.jsonl"
    record = next(json.loads(line) for line in bench.read_text().splitlines() if len(json.loads(line)["refs"]) == 1)
    refs = torch.stack([to_tensor(read_rgb(cast / r, "ref")) for r in record["refs"]])
    target = to_tensor(read_rgb(cast / record["expected"]["target"], "target"))
    own = copy_paste(target, target, refs, judges)
    scored = score_image(target, refs, {**record, "_line": 1}, judges, target=target)
    assert own == pytest.approx(scored["facesim"] - 1.0, abs=1e-5) and own < 0
    assert scored["copy_paste"] == pytest.approx(own)  # what sft-eval records, from the faces it already matched
    # the reference crop pasted over the true render's face: closer to the reference than to the scene's face
    box = [int(v) for v in judges["detector"].detect(target[None])[0][0, :4].tolist()]
    pasted = target.clone()
    h, w = box[3] - box[1], box[2] - box[0]
    pasted[:, box[1]:box[3], box[0]:box[2]] = torch.nn.functional.interpolate(refs[:1], size=(h, w), mode="bilinear")[0]
    value = copy_paste(pasted, target, refs, judges)
    assert value is not None and value > own
    assert copy_paste(torch.zeros_like(target), target, refs, judges) is None  # no face drawn: nothing to measure


@pytest.mark.e2e
def test_swaps_count_references_drawn_out_of_the_prompts_left_to_right_order(cast):
    import torch

    from idglow.cast.crops import to_tensor
    from idglow.cast.judge_training import load_judges
    from idglow.data.images import read_rgb
    from idglow.eval.cast_bench import score_image, summarise

    judges = load_judges(JUDGES)
    records = [json.loads(line) for line in (cast / "synth-group.jsonl").read_text().splitlines()]
    record = next(r for r in records if len(r["refs"]) == 2)
    refs = torch.stack([to_tensor(read_rgb(cast / r, "ref")) for r in record["refs"]])
    target = to_tensor(read_rgb(cast / record["expected"]["target"], "target"))
    in_order = score_image(target, refs, {**record, "_line": 1}, judges)
    assert in_order["count_ok"] == 1 and in_order["swaps"] == 0  # the true render: everyone in place
    flipped = score_image(torch.flip(target, dims=[2]), refs, {**record, "_line": 1}, judges)  # mirrored: left <-> right
    assert flipped["swaps"] == 2
    summary = summarise([in_order, flipped], mu_real=1.0)
    assert summary["swap_rate"] == pytest.approx(0.5) and summary["intervals"]["swap_rate"] == [0.0, 1.0]


@pytest.mark.e2e
def test_eval_scores_a_generation_folder_and_rejects_mismatches(cast, tmp_path):
    bench = cast / "synth-group.jsonl"
    records = [json.loads(line) for line in bench.read_text().splitlines()]
    gens = tmp_path / "gens"
    gens.mkdir()
    for r in records:  # the true renders as "generations": FaceSim must come out as mu_real
        (gens / f"{r['id']}.png").write_bytes((cast / r["expected"]["target"]).read_bytes())
    done = _cli("eval", "--generations", str(gens), "--benchmark", str(bench))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((gens / "eval" / "metrics.json").read_text())
    mu_real = json.loads(bench.with_suffix(".mu_real.json").read_text())["mu_real"]
    assert metrics["images"] == len(records) and metrics["facesim"] == pytest.approx(mu_real, abs=1e-4)
    assert metrics["identification"] >= 0.9 and metrics["identification_chance"] < 0.2
    assert all(s["identified"] <= s["size"] for s in map(json.loads, (gens / "eval" / "scores.jsonl").read_text().splitlines()))
    for key in ("id_conf", "count_accuracy", "swap_rate", "leakage_rate", "colour_accuracy", "frechet_judge", "artifact_score"):
        assert metrics[key] is not None, key
    assert len((gens / "eval" / "scores.jsonl").read_text().splitlines()) == len(records)
    assert (gens / "eval" / "by_size.png").read_bytes()[:4] == b"\x89PNG"
    # corrupt image: an error naming it, or a counted skip
    (gens / f"{records[0]['id']}.png").write_bytes(b"garbage")
    bad = _cli("eval", "--generations", str(gens), "--benchmark", str(bench))
    assert bad.returncode == 2 and f"{records[0]['id']}.png" in bad.stderr
    skipped = _cli("eval", "--generations", str(gens), "--benchmark", str(bench), "--skip-bad", "--out", str(tmp_path / "e2"))
    assert skipped.returncode == 0 and "skipped 1 unreadable" in skipped.stderr
    assert json.loads((tmp_path / "e2" / "metrics.json").read_text())["images"] == len(records) - 1
    # missing image: an error, or a counted skip
    (gens / f"{records[0]['id']}.png").unlink()
    missing = _cli("eval", "--generations", str(gens), "--benchmark", str(bench))
    assert missing.returncode == 2 and "1 of" in missing.stderr and "--skip-missing" in missing.stderr
    # a sidecar from another benchmark
    (gens / f"{records[1]['id']}.json").write_text(json.dumps({"prompt": "something else"}))
    other = _cli("eval", "--generations", str(gens), "--benchmark", str(bench), "--skip-missing")
    assert other.returncode == 2 and "differs from the manifest" in other.stderr
    # --compare: one table over evaluations
    compared = _cli("eval", "--compare", str(gens / "eval"), str(tmp_path / "e2"), "--out", str(tmp_path / "cmp"))
    assert compared.returncode == 0, compared.stderr
    assert (tmp_path / "cmp" / "compare.md").read_text().count("\n") == 4 and (tmp_path / "cmp" / "pareto.png").is_file()


def test_group_score_weights_the_worst_subject_most_and_penalises_face_count():
    cfg = PairScoring(temperature=0.1)
    even = {"artifact": [0.6, 0.6], "harmony": [0.6, 0.6], "identity": [0.6, 0.6], "faces": 2}
    uneven = {"artifact": [1.0, 0.2], "harmony": [1.0, 0.2], "identity": [1.0, 0.2], "faces": 2}  # same mean, one bad
    assert group_score(uneven, cfg) < group_score(even, cfg)
    assert worst_weights(torch.tensor([0.9, 0.1]), 0.1)[1] > 0.99
    assert group_score({**even, "faces": 3}, cfg) == pytest.approx(group_score(even, cfg) - 0.5 * 1 / 2)


def test_win_rate_counts_ties_half_and_brackets_it_with_a_bootstrap_interval():
    from idglow.eval.preference import win_rate

    dpo = {"a": 1.0, "b": 0.0, "c": 0.5, "d": 0.9}
    sft = {"a": 0.0, "b": 1.0, "c": 0.5, "d": 0.1, "e": 0.3}  # e: not generated by both, not counted
    result = win_rate(dpo, sft)
    assert (result["wins"], result["ties"], result["losses"], result["records"]) == (2, 1, 1, 4)
    assert result["win_rate"] == pytest.approx(2.5 / 4) and result["low"] <= 0.625 <= result["high"]
    with pytest.raises(ValueError, match="at least 2 records"):
        win_rate({"a": 1.0}, {"a": 0.0})


def test_hungarian_matching_is_one_to_one_and_unmatched_references_score_zero():
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.2, 0.3]])
    matched, index = match_similarity(sim)
    # greedy would give reference 0 face 0 (0.9) and reference 1 nothing better than 0.1; the optimum swaps
    assert index.tolist()[:2] == [1, 0] and matched[:2].tolist() == [0.8, 0.85]
    assert index[2] == -1 and matched[2] == 0.0
    assert match_similarity(np.zeros((2, 0)))[0].tolist() == [0.0, 0.0]


def test_identification_is_top1_among_the_gallery_and_unmatched_references_miss():
    # identity "a" twice (its two references averaged), "b" once; embeddings in 2-D
    keys, gallery = identity_gallery(["a", "b", "a"], np.array([[1.0, 0.0], [0.0, 2.0], [0.6, 0.8]]))
    assert keys == ["a", "b"]
    np.testing.assert_allclose(gallery[0], np.array([1.6, 0.8]) / np.linalg.norm([1.6, 0.8]))
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1.0)
    # three references (identities a, b, b); faces 0 and 1; reference 2 unmatched
    face_to_gallery = np.array([[0.9, 0.1], [0.7, 0.6]])
    hits = identified(face_to_gallery, face_index=np.array([0, 1, -1]), truth=np.array([0, 1, 1]))
    assert hits.tolist() == [True, False, False]  # face 1 looks more like a than like b
    assert identified(np.zeros((0, 2)), np.array([-1]), np.array([0])).tolist() == [False]


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


@pytest.mark.e2e
def test_bench_build_from_a_photo_folder_rejects_and_lists_bad_photos(packaged_photos, tmp_path):
    import json

    astronaut, hopper = packaged_photos
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(astronaut).save(faces / "astronaut.png")
    Image.fromarray(hopper).save(faces / "hopper.jpg")
    Image.fromarray(np.concatenate([astronaut, hopper], axis=1)).save(faces / "both.png")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(faces / "wall.png")
    (faces / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (faces / "notes.txt").write_text("ignored: not an image suffix")
    out = tmp_path / "bench"
    done = _cli("bench", "build", "--faces", faces, "--out", out, "--per-size", "3")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "build.json").read_text())
    assert summary["accepted"] == 2
    assert summary["rejected_files"] == {"unreadable": ["broken.jpg"], "no face": ["wall.png"], "several faces": ["both.png"]}
    assert "rejected (several faces): both.png" in done.stdout

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
    failed = _cli("bench", "build", "--faces", empty, "--out", out)
    assert failed.returncode == 2 and "holds no images" in failed.stderr


def test_benchmark_intervals_cover_the_estimate_and_keep_the_group_size_weighting():
    from idglow.eval.cast_bench import ratio_interval

    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 200)
    low, high = ratio_interval(values)
    assert low < values.mean() < high and 0.05 < high - low < 0.2  # about 2 x 1.96 x 0.29 / sqrt(200)
    narrow = ratio_interval(np.repeat(values, 16))
    assert narrow[1] - narrow[0] < (high - low) / 2  # 16x the records: a quarter of the width
    weights = np.array([1.0, 3.0] * 50)
    child = np.array([1.0, 0.0] * 50)  # one-person records all children, three-person records none
    low, high = ratio_interval(child, weights)
    assert low <= 0.25 <= high and high < 0.5  # the weighted rate (0.25), not the record mean (0.5)
    assert ratio_interval(np.ones(5)) == [1.0, 1.0]


def test_frechet_distance_matches_the_closed_form_for_independent_features():
    """Diagonal covariances: d = |mu_a - mu_b|^2 + sum_i (s_a,i - s_b,i)^2 (s: standard deviations); and d(a, a) = 0."""
    from idglow.eval.cast_quality import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    b = rng.standard_normal((20000, 3)) * [3.0, 1.0, 0.5] + [1.0, 1.0, 1.0]
    closed = ((a.mean(0) - b.mean(0)) ** 2).sum() + ((a.std(0, ddof=1) - b.std(0, ddof=1)) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(closed, rel=0.02)
    assert abs(frechet_distance(a, a)) < 1e-6
    with pytest.raises(ValueError, match="at least 2 samples per set, got 1 and "):
        frechet_distance(a[:1], b)  # one sample has no covariance
