"""IdGlowPipeline in diffusers' conventions: output types, the base model without id_images, per-call identity
controls that never leak, callbacks, save_pretrained / from_pretrained, and bad input named."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from idglow.generate.pipeline import IdGlowPipeline, IdGlowPipelineOutput
from idglow.generate.sampling import generate_images
from idglow.models import IdGlowTransformer
from idglow.runs.load import load_base
from idglow.utils.config import to_dict


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def pipe(sft_lora):
    return IdGlowPipeline.from_pretrained(sft_lora, precision="fp32")


@pytest.fixture(scope="module")
def refs(cast):
    record = json.loads((cast / "synth-group.jsonl").read_text().splitlines()[-1])
    return [cast / r for r in record["refs"]]


def _base_images(pipe, prompt: str, steps: int) -> torch.Tensor:
    """The base model the run was trained on, sampled on its own (no identity branch, no LoRA)."""
    flux, _ = load_base(pipe.cfg.base)
    bare = IdGlowTransformer(pipe.cfg.model.__class__(), backbone=flux.flux).eval()
    images = generate_images(bare, pipe.rep, pipe.text, [prompt], [_gen()], num_steps=steps, mu=pipe.mu, precision="fp32")
    return (images / 2 + 0.5).clamp(0, 1)


def test_output_types_agree_and_images_have_the_requested_size(pipe, refs):
    kwargs = dict(id_images=refs, num_inference_steps=2, num_images_per_prompt=2)
    pil = pipe("two people", generator=[_gen(0), _gen(1)], **kwargs)
    assert isinstance(pil, IdGlowPipelineOutput) and len(pil.images) == 2 and pil.images[0].size == (128, 64)
    arr = pipe("two people", generator=[_gen(0), _gen(1)], output_type="np", **kwargs).images
    pt = pipe("two people", generator=[_gen(0), _gen(1)], output_type="pt", return_dict=False, **kwargs)[0]
    assert arr.shape == (2, 64, 128, 3) and pt.shape == (2, 3, 64, 128) and 0 <= pt.min() and pt.max() <= 1
    assert np.allclose(arr, pt.permute(0, 2, 3, 1).numpy())
    assert np.abs(np.asarray(pil.images[1], dtype=float) / 255 - arr[1]).max() <= 1 / 255 + 1e-6
    assert not np.allclose(arr[0], arr[1])  # each image its own noise
    latents = pipe("two people", generator=[_gen(0), _gen(1)], output_type="latent", **kwargs).images
    assert latents.shape == (2, pipe.rep.tokens, pipe.rep.channels)
    assert torch.allclose(pipe.rep.decode(latents).clamp(-1, 1) / 2 + 0.5, pt, atol=1e-6)
    # another size per call; a batch of prompts, each with its own people
    wide = pipe(["one person", "two people"], id_images=[refs[:1], refs], task=["age", "group"], num_inference_steps=1,
                height=32, width=96, output_type="pt").images
    assert wide.shape == (2, 3, 32, 96)


def test_without_id_images_it_is_exactly_the_base_model_also_after_calls_with_them(pipe, refs):
    base = _base_images(pipe, "two people", 3)
    gate_before = to_dict(pipe.model.config.identity.gate)
    plain = pipe("two people", num_inference_steps=3, generator=_gen(), output_type="pt").images
    assert torch.equal(plain, base)
    with_id = pipe("two people", id_images=refs, num_inference_steps=3, generator=_gen(), output_type="pt", id_scale=1.7,
                   id_schedule={"group": {"kind": "constant", "lambda_max": 0.8}}).images
    assert (with_id - base).abs().max() > 1e-3
    again = pipe("two people", num_inference_steps=3, generator=_gen(), output_type="pt").images
    assert torch.equal(again, base) and to_dict(pipe.model.config.identity.gate) == gate_before


def test_identity_scale_and_schedule_act_only_on_the_branch(pipe, refs):
    def run(**kwargs):
        return pipe("two people", id_images=refs, num_inference_steps=3, generator=_gen(), output_type="pt", **kwargs).images

    no_branch = pipe.sample(["two people"], None, "group", steps=3, generator=[_gen()]) / 2 + 0.5  # LoRA on, branch off
    assert torch.allclose(run(id_scale=0.0), no_branch.clamp(0, 1), atol=1e-6)
    assert torch.allclose(run(id_schedule=["group.kind=constant", "group.lambda_max=0"]), no_branch.clamp(0, 1), atol=1e-6)
    assert torch.equal(run(), run(id_scale=1.0))
    assert (run(id_scale=0.5) - run()).abs().max() > 1e-4


def test_defaults_follow_the_recommended_sampler_per_task(pipe, refs):
    from idglow.runs.sampler import SamplerSettings

    def run(prompts, tasks, **kwargs):
        gens = [_gen(k) for k in range(len(prompts))]
        return pipe(prompts, id_images=[refs] * len(prompts), task=tasks, num_inference_steps=2, generator=gens,
                    output_type="pt", **kwargs).images

    assert pipe.recommended == {}  # a training run recommends nothing: guidance 1, the trained gate
    plain = run(["two people"] * 2, ["group", "age"])
    pipe.recommended = {"group": SamplerSettings(2.0, ("group.lambda_min=0.3",)), "age": SamplerSettings(1.5)}
    try:
        mixed = run(["two people"] * 2, ["group", "age"])  # one guidance scale per sample, each task's overrides
        group = run(["two people"], ["group"], id_guidance=2.0, id_schedule=["group.lambda_min=0.3"])
        age = run(["two people", "two people"], ["group", "age"], id_guidance=1.5)
        torch.testing.assert_close(mixed[0], group[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(mixed[1], age[1], rtol=0, atol=1e-5)
        assert (mixed - plain).abs().amax(dim=(1, 2, 3)).min() > 1e-3
        torch.testing.assert_close(run(["two people"] * 2, ["group", "age"], id_guidance=1.0, id_schedule={}), plain,
                                   rtol=0, atol=1e-6)  # explicit values win
    finally:
        pipe.recommended = {}


def test_a_recommended_guidance_interval_limits_the_default_guidance_only(pipe, refs):
    from idglow.runs.sampler import SamplerSettings

    def run(**kwargs):
        return pipe(["two people"], id_images=[refs], task="group", num_inference_steps=2, generator=[_gen(0)],
                    output_type="pt", **kwargs).images

    plain = run()
    # an interval that holds no step of the grid: the recommended guidance 2 is never applied
    pipe.recommended = {"group": SamplerSettings(2.0, (), "test", (0.0, 0.0))}
    try:
        torch.testing.assert_close(run(), plain, rtol=0, atol=1e-6)
        everywhere = run(id_guidance=2.0)  # a guidance given without an interval applies at every step
        assert (everywhere - plain).abs().max() > 1e-3
        torch.testing.assert_close(run(id_guidance=2.0, id_guidance_interval=(0.0, 1.0)), everywhere, rtol=0, atol=1e-6)
    finally:
        pipe.recommended = {}


def test_callback_sees_every_step_and_may_replace_the_latents(pipe, refs):
    seen = []

    def callback(p, step, sigma, kwargs):
        seen.append((step, sigma))
        assert p is pipe and kwargs["latents"].shape == (1, pipe.rep.tokens, pipe.rep.channels)
        return {"latents": torch.zeros_like(kwargs["latents"])} if step == 3 else {}

    out = pipe("two people", id_images=refs, num_inference_steps=4, generator=_gen(), output_type="pt",
               callback_on_step_end=callback).images
    assert [s for s, _ in seen] == [0, 1, 2, 3] and seen[-1][1] == 0.0 and seen[0][1] > seen[1][1]
    assert torch.allclose(out, pipe.rep.decode(torch.zeros(1, pipe.rep.tokens, pipe.rep.channels)) / 2 + 0.5)


def test_save_pretrained_writes_a_self_contained_folder_that_reproduces_the_images(pipe, refs, tmp_path):
    out = pipe.save_pretrained(tmp_path / "model")
    assert sorted(p.name for p in (out / "final").iterdir()) == ["identity_branch.json", "identity_branch.safetensors",
                                                                  "lora.json", "lora.safetensors"]
    # the base backbone is stored unmerged: the saved transformer is the base run's, bit for bit
    saved, _ = load_base(out)
    base, _ = load_base(pipe.cfg.base)
    assert all(torch.equal(a, b) for a, b in zip(saved.flux.state_dict().values(), base.flux.state_dict().values()))
    moved = tmp_path / "elsewhere"
    out.rename(moved)
    again = IdGlowPipeline.from_pretrained(moved, precision="fp32")
    kwargs = dict(id_images=refs, num_inference_steps=2, output_type="pt")
    assert torch.equal(again("two people", generator=_gen(), **kwargs).images, pipe("two people", generator=_gen(), **kwargs).images)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"id_images": "NOPE"}, "does not exist"),
        ({"id_images": [["A"], ["A"]]}, "one entry (an image or a list of people) per prompt: 1 prompt(s), got 2"),
        ({"id_images": ["A"] * 9}, "people; the model takes at most"),
        ({"id_images": [np.full((8, 8, 3), 2.0)]}, "must lie in [0, 1]"),
        ({"id_images": [torch.zeros(4, 8, 8)]}, "expected a [3, h, w] tensor"),
        ({"output_type": "jpg"}, "output_type: expected one of"),
        ({"task": "portrait"}, "task: expected group or age"),
        ({"num_images_per_prompt": 0}, "num_images_per_prompt >= 1"),
        ({"callback_on_step_end_tensor_inputs": ["noise"]}, "only 'latents' is available"),
        ({"id_images": ["A"], "id_scale": -1.0}, "id_scale: must be >= 0"),
        ({"id_images": ["A"], "id_schedule": ["group.kind=learned"]}, "learned gate"),
        ({"id_images": ["A"], "id_schedule": {"group": {"colour": 1}}}, "colour"),
        ({"image": "A", "strength": 1.5}, "sigma_start"),
    ],
)
def test_bad_input_is_named(pipe, refs, tmp_path, kwargs, message):
    paths = {"A": refs[0], "NOPE": tmp_path / "nope.png"}

    def resolve(value):
        if isinstance(value, str):
            return paths.get(value, value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    kwargs = {k: resolve(v) if k in ("id_images", "image") else v for k, v in kwargs.items()}
    gate = to_dict(pipe.model.config.identity.gate)
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as err:
        pipe("two people", num_inference_steps=1, **kwargs)
    assert message in str(err.value)
    assert to_dict(pipe.model.config.identity.gate) == gate


def test_image_to_image_from_a_pil_image(pipe, refs):
    start = Image.new("RGB", (128, 64), (200, 30, 30))
    out = pipe("two people", image=start, strength=0.05, num_inference_steps=20, generator=_gen(), output_type="np").images
    assert np.abs(out[0] - np.array([200, 30, 30]) / 255).mean() < 0.05
