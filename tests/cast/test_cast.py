"""The synthetic cast: determinism, splits, manifests, boxes, judges end to end, bad arguments."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import JUDGES

from idglow.cast.build import build
from idglow.cast.config import HELDOUT_OFFSET, SynthConfig, WorldConfig
from idglow.cast.crops import face_crops
from idglow.cast.factors import sample_appearance, sample_identity
from idglow.cast.pool import render_pool
from idglow.cast.render import Person, Placement, render_scene
from idglow.cast.scenes import identities, sample_group
from idglow.cli.main import main
from idglow.data.manifest import ManifestError, load_manifest
from idglow.eval.facesim import face_sim, match_faces
from idglow.utils.config import ConfigError, load_config

TINY = ["--build.sft_group", "6", "--build.sft_age", "6", "--build.heldout_sft", "2", "--build.bench_per_size", "1",
        "--build.mini_adults", "2", "--world.train_identities", "40", "--world.heldout_identities", "12"]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "build.json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cast")
    build(out, load_config(SynthConfig, None, [*TINY, "--build.workers", "2"]), progress=False)
    return out


def test_identity_and_scene_are_deterministic_by_seed():
    assert sample_identity(0, 7) == sample_identity(0, 7) and sample_identity(0, 7) != sample_identity(1, 7)
    a = sample_group(np.random.default_rng(3), identities(0, [1, 2, 3]), "child", 128, 64)
    b = sample_group(np.random.default_rng(3), identities(0, [1, 2, 3]), "child", 128, 64)
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes and a.caption == b.caption


@pytest.mark.e2e
def test_build_is_deterministic_whatever_the_worker_count(built, tmp_path):
    build(tmp_path, load_config(SynthConfig, None, [*TINY, "--build.workers", "1"]), progress=False)
    assert _tree_digest(tmp_path) == _tree_digest(built)


@pytest.mark.e2e
def test_every_manifest_validates_and_splits_never_overlap(built):
    ids = {}
    for name in ("sft-group-train", "sft-age-train", "sft-group-heldout", "sft-age-heldout"):
        records = load_manifest(built / f"{name}.jsonl", "sft")
        assert len(records) == (6 if "train" in name else 2)
        ids[name] = {s["attributes"]["identity"] for r in records for s in r["subjects"]}
        assert {r["task"] for r in records} == {"group" if "group" in name else "age"}
    for name in ("synth-group", "synth-age", "mini-adults"):
        records = load_manifest(built / f"{name}.jsonl", "benchmark")
        ids[name] = {i for r in records for i in r["expected"]["identities"]}
        assert all(len(r["refs"]) == r["expected"]["count"] for r in records)
    assert sorted(r["expected"]["count"] for r in load_manifest(built / "synth-group.jsonl", "benchmark")) == [1, 2, 3, 4]
    train = ids["sft-group-train"] | ids["sft-age-train"]
    held = set().union(*(v for k, v in ids.items() if k not in ("sft-group-train", "sft-age-train")))
    assert train and held and not train & held
    assert all(i < 40 for i in train) and all(HELDOUT_OFFSET <= i < HELDOUT_OFFSET + 12 for i in held)


@pytest.mark.e2e
def test_captions_name_each_position_and_colour(built):
    record = json.loads((built / "sft-age-train.jsonl").read_text().splitlines()[0])
    for s in record["subjects"]:
        attrs = s["attributes"]
        assert f"{attrs['position']} wears {attrs['clothing']}" in record["prompt"] or len(record["subjects"]) == 1
        assert attrs["clothing"] in record["prompt"] and attrs["age"] == "child"


@pytest.mark.parametrize("n,age,face_age", [(1, "adult", None), (3, "child", None), (4, "child", "adult"), (2, "adult", None)])
def test_boxes_enclose_the_rendered_faces(n, age, face_age):
    rng = np.random.default_rng(n)
    people = [Person(sample_identity(0, i), sample_appearance(rng, age, "red", face_age), Placement((i + 0.5) / n, 0.0, 0.9))
              for i in range(n)]
    _, boxes, mask = render_scene(people, 128, 64, return_face_mask=True)
    inside = np.zeros_like(mask, dtype=bool)
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    for x0, y0, x1, y1 in boxes:
        inside |= (xs + 0.5 >= x0 - 1) & (xs + 0.5 <= x1 + 1) & (ys + 0.5 >= y0 - 1) & (ys + 0.5 <= y1 + 1)
        face = mask[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
        assert face.mean() > 100  # the box is mostly face, i.e. tight
    assert mask[~inside].max(initial=0) == 0


def test_face_crops_match_a_manual_crop():
    image = torch.arange(3 * 40 * 50, dtype=torch.float32).view(1, 3, 40, 50)
    crop = face_crops(image, torch.tensor([[8.0, 4.0, 24.0, 20.0]]), size=16, expand=1.0)
    torch.testing.assert_close(crop[0], image[0, :, 4:20, 8:24])


@pytest.mark.parametrize("arch", ["resnet", "plain", "spatial"])
def test_identity_embedders_read_crops_larger_than_32_px(arch):
    """A 64 px crop keeps a large face's detail; every architecture reads it into unit embeddings of the same size
    as at 32 px (the flattened heads pool their 8x8 map to the 4x4 they were built for)."""
    from idglow.cast.judges import IdentityEmbedder

    torch.manual_seed(0)
    model = IdentityEmbedder(arch).eval()
    with torch.no_grad():
        small, large = model(torch.rand(3, 3, 32, 32) * 2 - 1), model(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert small.shape == large.shape == (3, 128)
    torch.testing.assert_close(large.norm(dim=-1), torch.ones(3))


@pytest.mark.e2e
def test_train_embedder_adds_an_embedder_beside_the_judges_and_refuses_their_names(tmp_path, capsys):
    """``synth train-embedder`` writes ``<name>.safetensors`` and its held-out report into report.json's
    ``extra_embedders``, keeping what the file held; ``load_embedder`` reads it back and names a missing or wrong one."""
    from idglow.cast.judge_training import load_embedder

    judges = tmp_path / "judges"
    judges.mkdir()
    (judges / "report.json").write_text(json.dumps({"judge": {"auc": 0.5}}))
    tiny = ["--out", str(judges), "--world.train_identities", "30", "--world.heldout_identities", "10",
            "--judges.train_scenes", "30", "--judges.eval_scenes", "12", "--judges.embedder_epochs", "1",
            "--judges.batch", "4", "--judges.workers", "1"]
    assert main(["synth", "train-embedder", "--name", "geometry", "--arch", "spatial", *tiny]) == 0
    report = json.loads((judges / "report.json").read_text())
    assert report["judge"] == {"auc": 0.5} and report["extra_embedders"]["geometry"]["arch"] == "spatial"
    assert 0 <= report["extra_embedders"]["geometry"]["auc"] <= 1
    model = load_embedder(judges, "geometry")
    assert model.arch == "spatial" and model(torch.zeros(2, 3, 32, 32)).shape == (2, 128)
    assert main(["synth", "train-embedder", "--name", "judge", *tiny]) == 2
    assert "'judge' is one of the judges" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no embedder 'missing'"):
        load_embedder(judges, "missing")
    with pytest.raises(ValueError, match="'age' is a classifier, not an identity embedder"):
        load_embedder(JUDGES, "age")
    assert main(["synth", "train-embedder", "--name", "robust", "--arch", "resnet", "--adversarial-eps", "0.06", *tiny]) == 0
    report = json.loads((judges / "report.json").read_text())
    assert report["extra_embedders"]["robust"]["adversarial_eps"] == 0.06 and "geometry" in report["extra_embedders"]
    assert main(["synth", "train-embedder", "--name", "robust", "--adversarial-eps", "0.7", *tiny]) == 2
    assert "adversarial_eps: must be in [0, 0.5]" in capsys.readouterr().err


def test_adversarial_crops_stay_in_their_ball_and_raise_the_loss():
    """PGD: every crop moves at most ``eps`` per pixel, stays in [-1, 1], and the loss it ascends rises."""
    from idglow.cast.judge_training import adversarial_crops

    torch.manual_seed(0)
    crops = torch.rand(4, 3, 8, 8) * 2 - 1
    weight = torch.randn(3 * 8 * 8)
    loss = lambda x: (x.flatten(1) @ weight).sum()  # noqa: E731  a linear loss: its ascent is exact
    adversarial = adversarial_crops(loss, crops, eps=0.05)
    assert (adversarial - crops).abs().max() <= 0.05 + 1e-6 and adversarial.abs().max() <= 1
    assert loss(adversarial) > loss(crops) + 0.5 * 0.05 * weight.abs().sum() and not adversarial.requires_grad


def test_face_sim_uses_the_optimal_matching_and_counts_missing_faces_zero():
    refs = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    faces = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    # Greedy would give ref0 -> face0 (0.8) then ref1 -> face1 (0.8): 1.6; optimal is the same here,
    # so make it differ: ref0 likes face0 most, but ref1 needs face0 even more.
    faces = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    sim, index = match_faces(refs, faces)
    assert index.tolist() == [1, 0] and sim.tolist() == pytest.approx([1.0, 1.0])
    assert face_sim(refs, faces[:1]) == pytest.approx(0.5)  # one reference unmatched counts 0
    assert face_sim(refs, torch.zeros(0, 2)) == 0.0


@pytest.mark.e2e
def test_tiny_judge_training_end_to_end_and_mu_real(built, tmp_path, capsys):
    judges = tmp_path / "judges"
    args = ["synth", "train-judges", "--out", str(judges), "--world.train_identities", "40",
            "--world.heldout_identities", "12", "--judges.train_scenes", "40", "--judges.eval_scenes", "16",
            "--judges.detector_steps", "2", "--judges.embedder_epochs", "1", "--judges.age_epochs", "1",
            "--judges.colour_epochs", "1", "--judges.batch", "4", "--judges.workers", "1", "--world.max_people", "3"]
    assert main(args) == 0
    report = json.loads((judges / "report.json").read_text())
    assert report["world"]["max_people"] == 3
    for key in ("detector", "encoder", "judge", "classifiers", "train_seconds"):
        assert key in report
    assert 0 <= report["judge"]["auc"] <= 1 and report["classifiers"]["mini_adults"] > 0
    for name in ("detector", "encoder", "judge", "age", "colour"):
        assert (judges / f"{name}.safetensors").is_file() and (judges / f"{name}.json").is_file()
    assert main(["synth", "mu-real", "--data", str(built), "--judges", str(judges)]) == 0
    result = json.loads((built / "synth-age.mu_real.json").read_text())
    assert result["records"] == 4 and -1 <= result["mu_real"] <= 1 and set(result["by_group_size"]) == {"1", "2", "3", "4"}


@pytest.mark.e2e
def test_max_people_bounds_every_set_and_faces_scale_with_height(built, tmp_path):
    cfg = load_config(SynthConfig, None, [*TINY, "--world.max_people", "2", "--world.height", "128", "--build.workers", "1"])
    build(tmp_path, cfg, progress=False)
    for name in ("synth-group", "synth-age"):
        assert sorted(r["expected"]["count"] for r in load_manifest(tmp_path / f"{name}.jsonl", "benchmark")) == [1, 2]
    assert {r["expected"]["count"] for r in load_manifest(tmp_path / "mini-adults.jsonl", "benchmark")} == {1, 2}
    for name in ("sft-group-train", "sft-age-train", "sft-group-heldout", "sft-age-heldout"):
        assert all(1 <= len(r["subjects"]) <= 2 for r in load_manifest(tmp_path / f"{name}.jsonl", "sft"))

    def face_heights(folder: Path) -> list[float]:
        records = load_manifest(folder / "synth-group.jsonl", "benchmark")
        return [b[3] - b[1] for r in records if r["expected"]["count"] <= 2 for b in r["expected"]["boxes"]]

    # Faces scale with the image height: at 128 rows they are twice as tall as in the default 64.
    ratio = np.mean(face_heights(tmp_path)) / np.mean(face_heights(built))
    assert 1.8 < ratio < 2.2, ratio


def test_a_world_of_pairs_needs_only_two_identities_per_split():
    world = load_config(SynthConfig, None, ["--world.max_people", "2", "--world.train_identities", "2",
                                            "--world.heldout_identities", "2"]).world
    assert (world.max_people, world.train_identities, world.heldout_identities) == (2, 2, 2)


def test_render_pool_keeps_to_max_people():
    pool = render_pool(0, np.arange(10), 6, 0, 128, 64, workers=1, max_people=1)
    assert len(pool.scene) == 6 and pool.scene.tolist() == list(range(6))
    with pytest.raises(ValueError, match="max_people"):
        render_pool(0, np.arange(10), 2, 0, 128, 64, workers=1, max_people=5)


def test_preview_groups_keep_to_max_people(monkeypatch):
    import idglow.cast.preview as preview

    sizes = []

    def counting(rng, members, *args, **kwargs):
        sizes.append(len(members))
        return sample_group(rng, members, *args, **kwargs)

    monkeypatch.setattr(preview, "sample_group", counting)
    preview.contact_sheet(WorldConfig(max_people=2), columns=4, scale=1)
    assert sorted(set(sizes)) == [1, 2]
    sizes.clear()
    preview.contact_sheet(WorldConfig(), columns=4, scale=1)
    assert sorted(set(sizes)) == [1, 2, 3, 4]


@pytest.mark.e2e
def test_preview_writes_a_contact_sheet(tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["synth", "preview", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size > 20_000


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda: sample_group(np.random.default_rng(0), [], "adult", 128, 64), ValueError, "people"),
        (lambda: sample_group(np.random.default_rng(0), identities(0, range(5)), "adult", 128, 64), ValueError, "people"),
        (lambda: WorldConfig().ids("test"), ValueError, "split"),
        (lambda: render_scene([], 8, 8), ValueError, "too small to hold a face"),
        (lambda: load_config(SynthConfig, None, ["--world.width", "16"]), ConfigError, r"world\.width.*too small"),
        (lambda: load_config(SynthConfig, None, ["--world.heldout_identities", "2"]), ConfigError, "heldout_identities"),
        (lambda: load_config(SynthConfig, None, ["--build.ref_size", "8"]), ConfigError, "ref_size"),
        (lambda: load_config(SynthConfig, None, ["--world.max_people", "5"]), ConfigError, r"max_people.*1 to 4"),
        (lambda: load_config(SynthConfig, None, ["--world.max_people", "0"]), ConfigError, r"max_people.*1 to 4"),
        (lambda: load_config(SynthConfig, None, ["--world.max_people", "3", "--world.heldout_identities", "2"]),
         ConfigError, "heldout_identities"),
    ],
)
def test_bad_arguments_give_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def _manifest(tmp_path: Path, record) -> Path:
    (tmp_path / "a.png").write_bytes(b"x")
    path = tmp_path / "m.jsonl"
    path.write_text('{"image": "a.png", "prompt": "p", "task": "group", "subjects": [{"ref": "a.png", "box": [0, 0, 4, 4]}]}\n'
                    + (record if isinstance(record, str) else json.dumps(record)) + "\n")
    return path


GOOD = {"image": "a.png", "prompt": "p", "task": "group", "subjects": [{"ref": "a.png", "box": [0, 0, 4, 4]}]}


@pytest.mark.parametrize(
    "record,message",
    [
        ({**GOOD, "image": "../a.png"}, r"m\.jsonl:2: image: path '\.\./a\.png' escapes"),
        ({**GOOD, "image": "/etc/passwd"}, r"m\.jsonl:2: image: .*relative"),
        ({**GOOD, "image": "b.png"}, r"m\.jsonl:2: image: file 'b\.png' not found"),
        ({**GOOD, "task": "solo"}, r"m\.jsonl:2: task: expected one of"),
        ({k: v for k, v in GOOD.items() if k != "prompt"}, r"m\.jsonl:2: prompt: missing"),
        ({**GOOD, "promt": "x"}, r"m\.jsonl:2: promt: unknown field"),
        ({**GOOD, "subjects": [{"ref": "a.png", "box": [5, 0, 4, 4]}]}, r"m\.jsonl:2: subjects\[0\]\.box"),
        ({**GOOD, "subjects": [{"box": [0, 0, 4, 4]}]}, r"m\.jsonl:2: subjects\[0\]\.ref: missing"),
        ('{"image": "a.png", ', r"m\.jsonl:2: record: invalid JSON"),
    ],
)
def test_bad_manifest_records_name_file_line_and_field(tmp_path, record, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(_manifest(tmp_path, record), "sft")


def test_skipping_invalid_records_warns_with_a_count(tmp_path):
    with pytest.warns(UserWarning, match="skipped 1 invalid record"):
        records = load_manifest(_manifest(tmp_path, {**GOOD, "task": "solo"}), "sft", skip_invalid=True)
    assert len(records) == 1 and records[0]["_line"] == 1


def test_face_crops_of_several_boxes_in_one_image():
    image = torch.arange(3 * 40 * 50, dtype=torch.float32).view(1, 3, 40, 50)
    boxes = torch.tensor([[8.0, 4.0, 24.0, 20.0], [20.0, 10.0, 36.0, 26.0]])
    crops = face_crops(image, boxes, size=16, expand=1.0)
    torch.testing.assert_close(crops[1], image[0, :, 10:26, 20:36])
    with pytest.raises(ValueError, match="index"):
        face_crops(image.expand(3, -1, -1, -1), boxes)
