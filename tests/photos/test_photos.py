"""Real photos end to end: `idglow data build --photos` on a folder built from the photos that ship inside packages
(scikit-image's astronaut, matplotlib's Grace Hopper) and composites of them; the photo scorer of DPO pairs."""

import json
import os

import numpy as np
import pytest
from conftest import ROOT, cli
from PIL import Image, ImageEnhance, ImageFilter

from idglow.conditioning.flux_tiny import save_tiny_flux_folder
from idglow.data.manifest import load_manifest

pytest.importorskip("dlib")


def _side_by_side(*images: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (sum(i.width for i in images), max(i.height for i in images)), (200, 200, 200))
    x = 0
    for image in images:
        canvas.paste(image, (x, 0))
        x += image.width
    return canvas


@pytest.fixture(scope="module")
def folder(packaged_photos, tmp_path_factory):
    """people/{eileen,grace}/ (three photos each: as shipped, mirrored, brighter) and groups/: three two-person
    composites, one of the same person twice (ambiguous) and one without a face."""
    root = tmp_path_factory.mktemp("photos")
    astronaut, hopper = (Image.fromarray(p) for p in packaged_photos)
    mirror = Image.Transpose.FLIP_LEFT_RIGHT
    for name, photo in (("eileen", astronaut), ("grace", hopper)):
        (root / "people" / name).mkdir(parents=True)
        photo.save(root / "people" / name / "a.png")
        photo.transpose(mirror).save(root / "people" / name / "b.png")
        ImageEnhance.Brightness(photo).enhance(1.2).save(root / "people" / name / "c.jpg")
    (root / "groups").mkdir()
    _side_by_side(astronaut, hopper).save(root / "groups" / "duo.png")
    _side_by_side(hopper.transpose(mirror), ImageEnhance.Contrast(astronaut).enhance(0.8)).save(root / "groups" / "duo2.jpg")
    _side_by_side(astronaut.transpose(mirror), hopper).save(root / "groups" / "duo3.png")
    _side_by_side(astronaut, astronaut.transpose(mirror)).save(root / "groups" / "twins.png")
    Image.new("RGB", (300, 200), (90, 120, 150)).save(root / "groups" / "empty.png")
    return root


@pytest.fixture(scope="module")
def built(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    done = cli("data", "build", "--photos", folder, "--out", out, "--height", "64", "--width", "96",
               "--bench_fraction", "0.34")
    assert done.returncode == 0, done.stderr
    return out


def test_build_assigns_faces_skips_what_is_ambiguous_and_writes_valid_manifests(built, folder):
    summary = json.loads((built / "build.json").read_text())
    assert summary["people"] == {"eileen": 3, "grace": 3} and summary["group_photos"] == 5
    assert summary["skipped"] == {"ambiguous": 1, "no_face": 1}  # the same person twice; a photo without a face
    assert summary["skipped_files"]["ambiguous"] == [str(folder / "groups" / "twins.png")]
    assert (summary["scenes"], summary["benchmark"]) == (2, 1)
    assert 0.5 < summary["mu_real"] < 0.95  # same people, other photos: above dlib's threshold, below a copy

    records = load_manifest(built / "sft.jsonl", "sft") + [
        {"subjects": [{"ref": r, "box": b, "attributes": {"identity": n}} for r, b, n in
                      zip(x["refs"], x["expected"]["boxes"], x["expected"]["identities"])], **x}
        for x in load_manifest(built / "bench.jsonl", "benchmark")]
    truth = {"duo": ["eileen", "grace"], "duo2": ["grace", "eileen"], "duo3": ["eileen", "grace"]}
    for record in records:
        stem = record["id"]
        assert [s["attributes"]["identity"] for s in record["subjects"]] == truth[stem]  # left to right
        assert "on the left" in record["prompt"] and "on the right" in record["prompt"]
        for subject in record["subjects"]:
            x0, y0, x1, y1 = subject["box"]
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 64
            assert subject["ref"].startswith(f"refs/{subject['attributes']['identity']}/")
            assert Image.open(built / subject["ref"]).size == (160, 160)
    assert Image.open(built / "images" / "duo.png").size == (96, 64)
    # the astronaut of duo.png is a.png pasted as it is: her reference is one of her other photos, not that copy
    duo = next(r for r in records if r["id"] == "duo")
    assert duo["subjects"][0]["ref"] != "refs/eileen/a.png"


def test_build_holds_out_people_when_asked(folder, tmp_path):
    done = cli("data", "build", "--photos", folder, "--out", tmp_path, "--height", "64", "--width", "96",
               "--bench_split", "people", "--bench_fraction", "0.5")
    # each usable photo shows both people: holding out one of them leaves only mixed photos, which are skipped
    assert done.returncode == 2 and "no usable group photo left after the split" in done.stderr
    assert "mixed_split" in done.stderr


def test_bad_photo_folders_are_named(folder, tmp_path):
    done = cli("data", "build", "--photos", tmp_path, "--out", tmp_path / "o")
    assert done.returncode == 2 and "no groups/ folder" in done.stderr
    bad = tmp_path / "bad"
    for sub in ("people/eileen", "groups"):
        (bad / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(bad / "people" / "eileen" / "dark.png")
    (bad / "groups" / "broken.jpg").write_bytes(b"not a jpeg")
    done = cli("data", "build", "--photos", bad, "--out", tmp_path / "o")
    assert done.returncode == 2 and f"{bad / 'people' / 'eileen' / 'dark.png'}: no face found by the dlib backend" in done.stderr
    done = cli("data", "build", "--photos", bad, "--out", tmp_path / "o", "--on_bad_image", "skip")
    assert done.returncode == 2 and "no person with a usable photo" in done.stderr
    (bad / "people" / "eileen" / "dark.png").unlink()
    os.symlink(folder / "people" / "eileen" / "a.png", bad / "people" / "eileen" / "link.png")
    done = cli("data", "build", "--photos", bad, "--out", tmp_path / "o")
    assert done.returncode == 2 and "link.png: resolves outside the photo folder" in done.stderr
    (bad / "people" / "eileen" / "link.png").unlink()
    (bad / "people" / "no good").mkdir()
    done = cli("data", "build", "--photos", bad, "--out", tmp_path / "o")
    assert done.returncode == 2 and "no good: a person's folder name must be" in done.stderr
    done = cli("data", "build", "--photos", folder, "--out", tmp_path / "o", "--unknown_faces", "maybe")
    assert done.returncode == 2 and "unknown_faces" in done.stderr


def test_photo_scorer_ranks_the_true_photo_above_blur_noise_and_the_wrong_person(packaged_photos):
    from idglow.eval.group_score import PairScoring, group_score
    from idglow.eval.photo_score import face_quality, photo_subject_scores
    from idglow.faces.dlib_faces import DlibFaces

    backend = DlibFaces()
    astronaut, hopper = packaged_photos
    refs = np.stack([backend.reference(astronaut[:, ::-1].copy(), "eileen"), backend.reference(hopper[:, ::-1].copy(), "grace")])
    true = np.array(_side_by_side(Image.fromarray(astronaut), Image.fromarray(hopper)))
    blurred = np.array(Image.fromarray(true).filter(ImageFilter.GaussianBlur(3)))
    noisy = np.clip(true + np.random.default_rng(0).normal(0, 40, true.shape), 0, 255).astype(np.uint8)
    wrong = np.array(_side_by_side(Image.fromarray(astronaut), Image.fromarray(astronaut[:, ::-1].copy())))
    scoring, mu = PairScoring(), 0.7
    scores = {name: photo_subject_scores(image, refs, backend, mu)
              for name, image in (("true", true), ("blurred", blurred), ("noisy", noisy), ("wrong", wrong))}
    assert scores["true"]["faces"] == 2 and min(scores["true"]["artifact"]) > 0.5
    assert scores["true"]["quality"][0] > scores["blurred"]["quality"][0] + 0.1
    assert scores["true"]["quality"][0] > scores["noisy"]["quality"][0] + 0.1
    assert scores["wrong"]["facesim"][1] < 0.5 < scores["true"]["facesim"][1]  # grace's slot holds the astronaut
    for worse in ("blurred", "noisy", "wrong"):
        assert group_score(scores["true"], scoring) > group_score(scores[worse], scoring), worse
    assert face_quality(true, np.array([0, 0, 2, 2])) == 0.0  # too small to measure


def _photo_sft(runner, flux, manifest, out, *extra):
    return runner("train", "sft", "--config", ROOT / "configs" / "tiny-sft.yaml", "--out", out, "--base", flux,
                  "--data.manifests", f"[{manifest}]", "--diagnostics.manifests", f"[{manifest}]", "--diagnostics.items", "2",
                  "--data.max_tokens", "16", "--references.backend", "dlib", "--model.identity.embedding_dim", "128",
                  "--identity_loss.weight", "0", "--optim.steps", "1", "--optim.batch_size", "2", *extra)


@pytest.mark.e2e
def test_built_manifests_train_sft_generate_and_build_photo_pairs_on_a_tiny_flux_folder(built, tmp_path):
    """Offline, with dlib reference embeddings: SFT on a tiny FLUX folder, one image, photo-scored pairs; a reference
    without a face and a backend that cannot read photos are named errors."""
    flux = save_tiny_flux_folder(tmp_path / "FLUX.1-tiny")
    manifest = built / "sft.jsonl"
    done = _photo_sft(cli, flux, manifest, tmp_path / "run")
    assert done.returncode == 0, done.stderr
    log = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert log["step"] == 1 and "id_sim" not in log  # nothing scores x0_hat's faces without a photo recognizer
    ref = built / json.loads(manifest.read_text().splitlines()[0])["subjects"][0]["ref"]
    done = cli("generate", "--run", tmp_path / "run", "--prompt", "a portrait photo of one person", "--refs", ref,
               "--steps", "2", "--height", "64", "--width", "64", "--out", tmp_path / "gen")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "gen" / "image.png").size == (64, 64)
    done = cli("pairs", "build", "--run", tmp_path / "run", "--out", tmp_path / "pairs", "--manifest", manifest,
               "--heldout", "--scorer", "photo", "--items", "2", "--candidates", "2", "--steps", "2", "--min_gap", "0")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "pairs" / "build.json").read_text())
    assert summary["scorer"] == "photo" and summary["pairs"] == 2
    scored = [json.loads(line) for line in (tmp_path / "pairs" / "scored.jsonl").read_text().splitlines()]
    assert {"artifact", "quality", "identity"} <= scored[0]["candidates"][0].keys()
    assert "harmony" not in scored[0]["candidates"][0]
    load_manifest(tmp_path / "pairs" / "pairs.jsonl", "preference")
    done = cli("pairs", "build", "--run", tmp_path / "run", "--out", tmp_path / "pairs", "--manifest", manifest,
               "--heldout", "--items", "2", "--candidates", "2", "--steps", "2", "--min_gap", "0")
    assert done.returncode == 2 and "scored by the photo scorer" in done.stderr

    lines = manifest.read_text().splitlines()
    Image.new("RGB", (160, 160), (90, 120, 150)).save(built / "blank.png")
    faceless = json.loads(lines[1])
    faceless["subjects"][0]["ref"] = "blank.png"
    (built / "faceless.jsonl").write_text(lines[0] + "\n" + json.dumps(faceless) + "\n")
    done = _photo_sft(cli, flux, built / "faceless.jsonl", tmp_path / "faceless")
    assert done.returncode == 2 and "faceless.jsonl:2: subjects[0].ref: no face found by the dlib backend" in done.stderr
    done = _photo_sft(cli, flux, manifest, tmp_path / "no-refs", "--references.backend", "recognizer")
    assert done.returncode == 2 and "references.backend: dlib" in done.stderr
    done = _photo_sft(cli, flux, manifest, tmp_path / "map", "--model.identity.encoder", "embedding_map")
    assert done.returncode == 2
    assert "identity.encoder: embedding_map reads the cast `encoder`'s feature map" in done.stderr
