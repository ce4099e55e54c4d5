"""idglow generate: files, sidecars, seeds, resume, and bad input named."""

import json

import pytest
from conftest import cli
from PIL import Image


@pytest.mark.e2e
def test_generate_writes_reproducible_images_with_sidecars_and_resumes(cast, sft_run, tmp_path):
    bench = cast / "synth-group.jsonl"
    out = tmp_path / "gen"
    done = cli("generate", "--run", str(sft_run), "--benchmark", str(bench), "--out", str(out), "--steps", "2",
                "--limit", "3", "--batch", "2", "--schedule", "group.lambda_min=0.2")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in bench.read_text().splitlines()][:3]
    sidecar = json.loads((out / f"{records[2]['id']}.json").read_text())
    assert sidecar["prompt"] == records[2]["prompt"] and sidecar["seed"] == 2 and sidecar["steps"] == 2
    assert sidecar["schedule"]["group"]["lambda_min"] == 0.2
    first = (out / f"{records[0]['id']}.png").read_bytes()
    # re-running skips what exists; generating more with another batch size gives the same first images
    again = cli("generate", "--run", str(sft_run), "--benchmark", str(bench), "--out", str(out), "--steps", "2",
                 "--limit", "4", "--batch", "3", "--schedule", "group.lambda_min=0.2")
    assert again.returncode == 0 and "wrote 1 images" in again.stdout and "3 already there" in again.stdout
    (out / f"{records[0]['id']}.png").unlink()
    assert cli("generate", "--run", str(sft_run), "--benchmark", str(bench), "--out", str(out), "--steps", "2",
                "--limit", "1", "--schedule", "group.lambda_min=0.2").returncode == 0
    assert (out / f"{records[0]['id']}.png").read_bytes() == first  # seed per record, not per batch
    # one image from files and a folder of references
    refs = [str(cast / r) for r in records[2]["refs"]]
    single = cli("generate", "--run", str(sft_run), "--prompt", "two people", "--refs", *refs, "--out", str(tmp_path / "one"),
                  "--steps", "2", "--id-guidance", "2", "--name", "pair")
    assert single.returncode == 0, single.stderr
    meta = json.loads((tmp_path / "one" / "pair.json").read_text())
    assert meta["id_guidance"] == 2.0 and len(meta["refs"]) == len(refs)
    assert Image.open(tmp_path / "one" / "pair.png").size == (128, 64)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--prompt", "x", "--refs", "EMPTY"], "holds no images"),
        (["--prompt", "x", "--refs", "BAD"], "unreadable image"),
        (["--prompt", "x", "--refs", "NOPE.png"], "does not exist"),
        (["--prompt", "x"], "--prompt needs --refs"),
        (["--benchmark", "B", "--schedule", "group.kind=learned"], "learned gate"),
        (["--benchmark", "B", "--schedule", "group.kindconstant"], "KEY=VALUE"),
    ],
)
def test_generate_rejects_bad_input(cast, sft_run, tmp_path, argv, message):
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "BAD").mkdir()
    (tmp_path / "BAD" / "face.png").write_bytes(b"not a png")
    paths = {"EMPTY": tmp_path / "EMPTY", "BAD": tmp_path / "BAD", "NOPE.png": tmp_path / "nope.png", "B": cast / "synth-group.jsonl"}
    argv = [str(paths.get(a, a)) for a in argv]
    done = cli("generate", "--run", str(sft_run), "--out", str(tmp_path / "o"), "--steps", "1", *argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.e2e
def test_generate_refuses_images_made_otherwise_and_clears_torn_temporaries(cast, sft_run, tmp_path):
    """An output folder holding images of other settings is refused (naming what differs), never silently reused;
    temporaries of an interrupted run are removed."""
    out = tmp_path / "gen"
    argv = ["generate", "--run", str(sft_run), "--benchmark", str(cast / "synth-group.jsonl"), "--out", str(out), "--limit", "2"]
    assert cli(*argv, "--steps", "2", "--precision", "bf16").returncode == 0
    (out / ".synth-group-000000.png.x1.tmp").write_bytes(b"torn by a kill")
    done = cli(*argv, "--steps", "3", "--seed", "5", "--precision", "bf16")
    assert done.returncode == 2 and "made otherwise" in done.stderr and "seed: 0 -> 5; steps: 2 -> 3" in done.stderr, done.stderr
    assert not list(out.glob(".*.tmp"))
    done = cli(*argv, "--steps", "2", "--precision", "fp32")  # other arithmetic, other pixels
    assert done.returncode == 2 and "precision: 'bf16' -> 'fp32'" in done.stderr, done.stderr


def test_sidecars_of_another_run_or_other_weights_are_stale(tmp_path):
    from idglow.generate.files import stale_fields

    made = {"run": str(tmp_path / "a"), "weights": "0123", "prompt": "p", "seed": 1}
    (tmp_path / "x.json").write_text(json.dumps(made))
    assert stale_fields(tmp_path / "x.json", made) == []
    assert stale_fields(tmp_path / "x.json", {**made, "weights": "4567"}) == ["weights: '0123' -> '4567'"]
    assert stale_fields(tmp_path / "x.json", {**made, "run": str(tmp_path / "b")})[0].startswith("run: ")
    (tmp_path / "x.json").write_text('{"run": "a", "wei')  # torn
    assert stale_fields(tmp_path / "x.json", made) == ["sidecar: unreadable"]


@pytest.mark.e2e
def test_broken_weights_of_a_run_are_named_not_a_traceback(cast, sft_run, tmp_path):
    """Through the real CLI for a truncated file; random and pickle bytes take the same path (tests/data)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(sft_run, run)
    weights = run / "final" / "identity_branch.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    done = cli("generate", "--run", str(run), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "1",
                "--steps", "1", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "identity_branch.safetensors: not a readable safetensors file" in done.stderr


def test_bf16_sampling_stays_close_to_fp32_on_the_same_weights_and_seeds(sft_run):
    """The fast path changes rounding, not the picture: mean pixel difference well under 1 grey level in 8 bits x 10."""
    import torch

    from idglow.generate.pipeline import IdGlowPipeline

    crops = [torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2)]
    images = {}
    for precision in ("fp32", "bf16"):
        pipe = IdGlowPipeline.from_run(sft_run, precision=precision)
        assert pipe.precision == precision
        generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
        images[precision] = pipe.sample(["two people in a park"] * 2, crops, "group", steps=4, generator=generators, id_guidance=2.0)
    difference = (images["fp32"] - images["bf16"]).abs()
    assert images["bf16"].dtype == torch.float32
    assert 0 < float(difference.mean()) < 0.04 and float(difference.max()) < 0.5, float(difference.mean())


def test_image_to_image_starts_from_the_noised_image(sft_run):
    """sigma_start near 0 gives back the init image; near 1 nearly ordinary sampling; bad pairings are refused."""
    import pytest
    import torch

    from idglow.generate.pipeline import IdGlowPipeline

    pipe = IdGlowPipeline.from_run(sft_run, precision="fp32")
    init = torch.rand(2, 3, 64, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    crops = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(i)) * 2 - 1 for i in range(2)]

    def run(**kwargs):
        generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
        return pipe.sample(["a person in a park"] * 2, crops, "group", steps=8, generator=generators, **kwargs)

    kept = run(init_images=init, sigma_start=1e-3)
    assert float((kept - init).abs().mean()) < 0.01
    half = run(init_images=init, sigma_start=0.5)
    assert float((half - init).abs().mean()) > 5 * float((kept - init).abs().mean())  # the model redraws
    with pytest.raises(ValueError, match="init_images and sigma_start go together"):
        run(sigma_start=0.5)
    with pytest.raises(ValueError, match="init_images: 1 images for 2 prompts"):
        run(init_images=init[:1], sigma_start=0.5)


@pytest.mark.e2e
def test_generate_starts_from_the_model_folders_recommended_sampler(cast, sft_run, tmp_path, capsys):
    import shutil

    from idglow.cli.main import main

    model = tmp_path / "model"
    shutil.copytree(sft_run, model, ignore=shutil.ignore_patterns("checkpoints", "samples"))
    (model / "sampler.json").write_text(json.dumps({
        "group": {"id_guidance": 1.5, "schedule": ["group.lambda_min=0.3"], "id_guidance_interval": [0.5, 1]},
        "age": {"id_guidance": 1.25, "schedule": []}}))
    refs = [str(p) for p in sorted((cast / "images").rglob("*.png"))[:2]]
    common = ["generate", "--run", str(model), "--prompt", "two people", "--refs", *refs, "--steps", "1"]
    for argv, guidance, floor, interval in [
            ([], 1.5, 0.3, [0.5, 1.0]), (["--task", "age"], 1.25, 0.0, None), (["--sampler", "trained"], 1.0, 0.0, None),
            (["--id-guidance", "2"], 2.0, 0.3, None), (["--id-guidance", "3", "--id-guidance-interval", "0.2", "0.6"], 3.0, 0.3, [0.2, 0.6])]:
        assert main([*common, "--out", str(tmp_path / "out"), "--name", f"g{guidance}", *argv]) == 0
        meta = json.loads((tmp_path / "out" / f"g{guidance}.json").read_text())
        assert meta["id_guidance"] == guidance and meta["schedule"]["group"]["lambda_min"] == floor, argv
        assert meta["id_guidance_interval"] == interval, argv
        assert ("recommended by" in capsys.readouterr().out) == ("trained" not in argv)
