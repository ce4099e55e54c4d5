"""FLUX.1 at real scale, tested small: a tiny random FLUX folder in diffusers format goes through exactly the code
path of FLUX.1-dev (transformer, VAE, CLIP + T5, ArcFace recognizer, caches, memory switches)."""

import json
import subprocess

import pytest
import torch
from conftest import ROOT, cli
from safetensors.torch import save_file

from idglow.conditioning.cache import TensorCache
from idglow.conditioning.flux_folder import FluxPromptEncoder, check_pipeline_folder
from idglow.conditioning.flux_tiny import save_tiny_flux_folder
from idglow.conditioning.text import CachedPrompts
from idglow.faces.iresnet import IResNet, load_arcface
from idglow.models import IdGlowTransformer, ModelConfig
from idglow.recipes.train import OptimConfig
from idglow.training.memory import apply_memory_options


@pytest.fixture(scope="module")
def flux(tmp_path_factory):
    return save_tiny_flux_folder(tmp_path_factory.mktemp("flux") / "FLUX.1-tiny")


@pytest.fixture(scope="module")
def arcface(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("arcface") / "iresnet.safetensors"
    save_file(IResNet((1, 1, 1, 1)).eval().state_dict(), str(path))
    return path


def _sft(cast, flux, out, *extra):
    manifests = f"[{cast / 'sft-group-train.jsonl'},{cast / 'sft-age-train.jsonl'}]"
    return cli("train", "sft", "--config", str(ROOT / "configs" / "tiny-sft.yaml"), "--out", str(out),
               "--base", str(flux), "--data.manifests", manifests, "--diagnostics.manifests", manifests,
               "--data.max_tokens", "16", "--model.identity.embedding_dim", "512", *extra)


SFT_ARGS = ("--identity_loss.recognizer", "arcface", "--model.lora.rank", "2", "--optim.steps", "2", "--optim.gradient_checkpointing", "true",
            "--optim.weights_dtype", "bf16", "--optim.mixed_precision", "bf16", "--optim.attention_fp32", "true")


@pytest.fixture(scope="module")
def flux_run(cast, flux, arcface, tmp_path_factory):
    """An SFT run on the tiny FLUX folder (2 steps, bf16 weights and autocast with fp32 attention, checkpointing,
    ArcFace loss, disk cache)."""
    root = tmp_path_factory.mktemp("flux-run")
    done = _sft(cast, flux, root / "run", *SFT_ARGS, "--identity_loss.arcface", str(arcface),
                "--data.cache_dir", str(root / "cache"))
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.e2e
def test_sft_on_a_flux_folder_trains_caches_and_samples(cast, flux, arcface, flux_run, tmp_path):
    run, cache = flux_run / "run", flux_run / "cache"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["text"] == {"kind": "flux", "folder": str(flux), "offload": False}
    assert cfg["representation"]["vae"] == str(flux / "vae")
    assert cfg["model"]["pretrained"] == str(flux / "transformer")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    assert (run / "final" / "identity_branch.safetensors").is_file() and (run / "final" / "lora.safetensors").is_file()
    # Every training image's latents and every prompt's embeddings were cached once on disk ...
    latents = sorted((cache / "latents").rglob("*.safetensors"))
    texts = sorted((cache / "text").rglob("*.safetensors"))
    assert len(latents) == 12 and texts
    stamps = {p: p.stat().st_mtime_ns for p in latents + texts}
    # ... and a second run reuses them without writing any again.
    done = _sft(cast, flux, tmp_path / "again", *SFT_ARGS, "--identity_loss.arcface", str(arcface),
                "--data.cache_dir", str(cache), "--optim.steps", "1")
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in latents + texts} == stamps

    done = cli("generate", "--run", str(run), "--benchmark", str(cast / "synth-group.jsonl"), "--limit", "1",
               "--steps", "2", "--out", str(tmp_path / "gen"))
    assert done.returncode == 0, done.stderr
    from PIL import Image

    image = Image.open(next((tmp_path / "gen").glob("*.png")))
    assert image.size == (128, 64)


@pytest.mark.e2e
def test_pipeline_on_a_flux_folder_saves_its_adapter_alone_and_every_memory_mode_draws_the_same(cast, flux, flux_run, tmp_path):
    from idglow.generate.pipeline import IdGlowPipeline

    record = json.loads((cast / "synth-group.jsonl").read_text().splitlines()[-1])
    kwargs = dict(id_images=[cast / r for r in record["refs"]], num_inference_steps=2, output_type="pt")

    def draw(pipe):
        return pipe("two people", generator=torch.Generator().manual_seed(0), **kwargs).images

    pipe = IdGlowPipeline.from_pretrained(flux, adapter=flux_run / "run", precision="fp32")
    expected = draw(pipe)
    saved = pipe.save_pretrained(tmp_path / "adapter")  # the adapter alone: the FLUX folder is not copied
    assert not (saved / "transformer").exists() and (saved / "final" / "identity_branch.safetensors").is_file()
    assert torch.equal(draw(IdGlowPipeline.from_pretrained(flux, adapter=saved, precision="fp32")), expected)
    for enable in (lambda p: p.enable_model_cpu_offload("cpu"), lambda p: p.enable_group_offload("cpu", "cpu")):
        offloaded = IdGlowPipeline.from_pretrained(flux, adapter=flux_run / "run", precision="fp32")
        enable(offloaded)
        assert torch.allclose(draw(offloaded), expected, atol=1e-5)


@pytest.mark.e2e
def test_int8_quantized_flux_through_diffusers_stays_bare_flux_at_lambda_zero(cast, flux, flux_run):
    from diffusers import FluxTransformer2DModel, TorchAoConfig
    from torchao.quantization import Int8WeightOnlyConfig

    from idglow.generate.pipeline import IdGlowPipeline
    from idglow.models.lora import adapters_disabled
    from idglow.models.packing import text_ids

    pipe = IdGlowPipeline.from_pretrained(flux, adapter=flux_run / "run", torch_dtype=torch.bfloat16,
                                          quantization_config=TorchAoConfig(Int8WeightOnlyConfig()))
    model = pipe.model
    assert model.flux.is_quantized and type(model.flux.transformer_blocks[0].attn.to_q.weight).__name__ == "Int8Tensor"
    record = json.loads((cast / "synth-group.jsonl").read_text().splitlines()[-1])
    image = pipe("two people", id_images=[cast / r for r in record["refs"]], num_inference_steps=2, output_type="np").images
    assert image.shape == (1, 64, 128, 3) and image.std() > 0
    bare = FluxTransformer2DModel.from_pretrained(flux / "transformer", quantization_config=TorchAoConfig(Int8WeightOnlyConfig()),
                                                  torch_dtype=torch.bfloat16)
    states, pooled = pipe.text(["two people"])
    states, pooled = states.bfloat16(), pooled.bfloat16()
    x = torch.randn(1, pipe.rep.tokens, pipe.rep.channels, generator=torch.Generator().manual_seed(0)).bfloat16()
    sigma, ids, tids = torch.tensor([0.7]), pipe.rep.image_ids(), text_ids(pipe.text.max_tokens)
    refs, mask = pipe.reference_inputs([torch.zeros(2, 3, pipe.ref_size, pipe.ref_size)])
    guidance = torch.full((1,), model.config.guidance) if bare.config.guidance_embeds else None
    with torch.no_grad(), adapters_disabled(model.flux):
        identity = model.identity_condition(refs.bfloat16(), mask, states)
        ours = model(x, sigma, states, pooled, ids, tids, identity=identity, lam=torch.zeros(1))
        without = model(x, sigma, states, pooled, ids, tids)
        theirs = bare(hidden_states=x, encoder_hidden_states=states, pooled_projections=pooled, timestep=sigma, img_ids=ids,
                      txt_ids=tids, guidance=guidance, return_dict=False)[0]
    assert torch.equal(ours, without)  # lambda = 0: the branch adds exactly nothing on the quantized backbone
    # and that is diffusers' own quantized FLUX, up to bf16 rounding (the run's attention is computed in fp32)
    assert (ours.float() - theirs.float()).abs().max() <= 0.03 and (ours.float() - theirs.float()).abs().mean() <= 5e-3


@pytest.mark.e2e
def test_dpo_on_a_flux_folder_run(cast, flux_run, tmp_path):
    pairs = tmp_path / "pairs"
    done = cli("pairs", "build", "--run", str(flux_run / "run"), "--manifest", str(cast / "sft-group-train.jsonl"),
               "--heldout", str(cast / "synth-group.jsonl"), "--items", "2", "--candidates", "2", "--steps", "2",
               "--out", str(pairs), "--judges", str(ROOT / "assets" / "judges"), "--min_gap", "0")
    assert done.returncode == 0, done.stderr
    cache = tmp_path / "cache"

    def dpo(out: str, steps: str) -> subprocess.CompletedProcess:
        return cli("train", "dpo", "--config", str(ROOT / "configs" / "tiny-dpo.yaml"), "--sft", str(flux_run / "run"),
                   "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--out", str(tmp_path / out), "--optim.steps",
                   steps, "--optim.batch_size", "1", "--data.cache_dir", str(cache))

    done = dpo("dpo", "2")
    assert done.returncode == 0, done.stderr
    log = [json.loads(line) for line in (tmp_path / "dpo" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and {"implicit_acc", "reward_margin", "mse_winner", "ref_mse_loser"} <= log[-1].keys()
    assert json.loads((tmp_path / "dpo" / "config.json").read_text())["text"]["kind"] == "flux"
    # The winners' and losers' latents went to data.cache_dir; a second run reads them and writes none.
    pair_count = len((pairs / "pairs.jsonl").read_text().splitlines())
    latents = sorted((cache / "latents").rglob("*.safetensors"))
    assert len(latents) == 2 * pair_count
    stamps = {p: p.stat().st_mtime_ns for p in latents}
    assert dpo("dpo-again", "1").returncode == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((cache / "latents").rglob("*.safetensors"))} == stamps


@pytest.mark.e2e
def test_flux_base_without_a_photo_recognizer_is_refused(cast, flux, tmp_path):
    done = _sft(cast, flux, tmp_path / "run", "--optim.steps", "1")
    assert done.returncode == 2
    assert "identity_loss.recognizer" in done.stderr and "arcface" in done.stderr


def test_incomplete_flux_folder_names_the_missing_parts(flux, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text((flux / "model_index.json").read_text())
    (broken / "transformer").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks vae, text_encoder, tokenizer, text_encoder_2, tokenizer_2"):
        check_pipeline_folder(broken)


def test_latents_follow_the_flux_pipeline_conventions(flux):
    """Scaling, shift and 2x2 packing equal diffusers' FluxPipeline; decoding inverts them through the same VAE."""
    from diffusers import AutoencoderKL, FluxPipeline

    from idglow.conditioning.representation import LatentSpace

    rep = LatentSpace(16, 24, flux / "vae")
    images = torch.rand(2, 3, 16, 24) * 2 - 1
    vae = AutoencoderKL.from_pretrained(flux / "vae", local_files_only=True)
    with torch.no_grad():
        latents = (vae.encode(images).latent_dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor
        expected = FluxPipeline._pack_latents(latents, 2, 4, 8, 12)
        torch.testing.assert_close(rep.encode(images), expected)
        unpacked = FluxPipeline._unpack_latents(expected, 16, 24, 2) / vae.config.scaling_factor + vae.config.shift_factor
        torch.testing.assert_close(rep.decode(expected), vae.decode(unpacked).sample)


def test_prompt_embeddings_are_the_pipelines_and_cached_on_disk(flux, tmp_path):
    from diffusers import FluxPipeline

    prompts = ["a group photo of two people", "a child on the left wears red"]
    encoder = FluxPromptEncoder(flux, 16)
    pipe = FluxPipeline.from_pretrained(flux, local_files_only=True)
    states, pooled, _ = pipe.encode_prompt(prompts, device="cpu", max_sequence_length=16)
    cached = CachedPrompts(encoder, tmp_path)
    got = cached(prompts)
    torch.testing.assert_close(got[0], states)
    torch.testing.assert_close(got[1], pooled)

    calls = []
    encoder.encode = lambda batch: calls.append(batch)  # a second process: everything must come from disk
    again = CachedPrompts(encoder, tmp_path)(prompts[::-1])
    assert calls == []
    torch.testing.assert_close(again[0], states.flip(0))


def test_disk_cached_prompts_keep_only_recent_ones_in_memory(flux, tmp_path):
    prompts = [f"prompt number {i}" for i in range(5)]
    cached = CachedPrompts(FluxPromptEncoder(flux, 8), tmp_path, memory_items=2)
    expected = cached(prompts)
    assert len(cached._memory) == 2 and list(cached._memory) == prompts[-2:]
    torch.testing.assert_close(cached(prompts)[0], expected[0])  # the dropped ones come back from disk
    assert len(cached._memory) == 2


def test_long_prompts_are_counted_and_warned_about_once(flux):
    encoder = FluxPromptEncoder(flux, 8)
    with pytest.warns(UserWarning, match="longer than data.max_tokens=8"):
        encoder.encode(["a group photo of two people in a park"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        states, _ = encoder.encode(["another long prompt of many words", "ok"])
    assert encoder.truncated == 2 and states.shape == (2, 8, 32)


def test_torn_cache_file_is_a_miss(tmp_path):
    cache = TensorCache(tmp_path, "latents")
    cache.put("a", {"tokens": torch.ones(3)})
    path = next(tmp_path.rglob("*.safetensors"))
    path.write_bytes(path.read_bytes()[:20])
    assert cache.get("a") is None and cache.misses == 1


def test_arcface_loader(arcface, tmp_path):
    recognizer = load_arcface(arcface)
    crops = (torch.rand(3, 3, 40, 40) * 2 - 1).requires_grad_()
    emb = recognizer(crops)
    assert emb.shape == (3, 512)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    emb.sum().backward()
    assert crops.grad.abs().sum() > 0 and not any(p.requires_grad for p in recognizer.parameters())
    recognizer.train()
    assert not recognizer.net.training  # batch-norm statistics never move
    pickled = tmp_path / "backbone.pth"
    pickled.write_bytes(arcface.read_bytes())
    with pytest.raises(ValueError, match="not a .safetensors file"):
        load_arcface(pickled)
    bad = tmp_path / "bad.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 3, 3)}, str(bad))
    with pytest.raises(ValueError, match="not an insightface IResNet"):
        load_arcface(bad)
    with pytest.raises(FileNotFoundError, match="identity_loss.arcface"):
        load_arcface(tmp_path / "missing.safetensors")


def _tiny_flux_model(**lora):
    cfg = ModelConfig(preset="tiny")
    cfg.identity.encoder, cfg.identity.embedding_dim = "embedding", 8
    cfg.lora.rank = 2
    torch.manual_seed(0)
    model = IdGlowTransformer(cfg)
    model.requires_grad_(False)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name or name.startswith("identity."))
    return model


def test_gradient_checkpointing_gives_the_same_gradients(batch):
    grads = []
    for checkpointing in (False, True):
        model = _tiny_flux_model().train()
        with torch.no_grad():
            for p in model.identity.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        apply_memory_options(model, OptimConfig(gradient_checkpointing=checkpointing), torch.device("cpu"))
        out = model(*batch.args(), refs=torch.randn(3, 2, 8, generator=torch.Generator().manual_seed(5)))
        out.square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-5, atol=1e-6, msg=name)


def test_bf16_weights_keep_trained_parameters_in_fp32():
    model = _tiny_flux_model()
    apply_memory_options(model, OptimConfig(weights_dtype="bf16"), torch.device("cpu"))
    dtypes = {p.requires_grad: set() for p in model.parameters()}
    for p in model.parameters():
        dtypes[p.requires_grad].add(p.dtype)
    assert dtypes == {True: {torch.float32}, False: {torch.bfloat16}}


def test_guidance_distilled_backbone_gets_the_configured_guidance(batch):
    cfg = ModelConfig(preset="tiny")
    torch.manual_seed(0)
    from diffusers import FluxTransformer2DModel

    from idglow.models.presets import flux_kwargs

    flux = FluxTransformer2DModel(**flux_kwargs("tiny", guidance_embeds=True))
    model = IdGlowTransformer(cfg, backbone=flux).eval()
    default = model(*batch.args())
    torch.testing.assert_close(default, model(*batch.args(), guidance=torch.full((3,), cfg.guidance)))
    assert not torch.allclose(default, model(*batch.args(), guidance=torch.full((3,), 1.0)))


def test_adamw8bit_without_bitsandbytes_says_how_to_install():
    try:
        import bitsandbytes  # noqa: F401  (only whether it imports)
        pytest.skip("bitsandbytes is installed")
    except ImportError:
        pass
    from idglow.training.memory import make_optimizer

    with pytest.raises(ImportError, match=r"idglow\[gpu\]"):
        make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))]}], OptimConfig(optimizer="adamw8bit"))


@pytest.mark.parametrize("name", ["ddp", "fsdp", "zero2", "multinode"])
def test_accelerate_configs_are_valid_for_accelerate(name):
    """accelerate's own loader rejects unknown keys; FSDP wraps classes that exist in diffusers."""
    import diffusers.models.transformers.transformer_flux as flux_module
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    assert cfg.mixed_precision == "bf16"
    if name == "multinode":
        assert cfg.num_machines == 2 and cfg.main_process_port and cfg.fsdp_config["fsdp_version"] == 2
    if name in ("fsdp", "multinode"):
        for cls in cfg.fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(","):
            assert isinstance(getattr(flux_module, cls), type)


@pytest.mark.parametrize("name", ["flux-dev-sft", "flux-dev-dpo"])
def test_flux_dev_recipes_load_and_validate(name):
    from idglow.recipes.dpo import DPOConfig
    from idglow.recipes.sft import SFTConfig
    from idglow.utils.config import load_config

    cfg = load_config(SFTConfig if name.endswith("sft") else DPOConfig, ROOT / "configs" / f"{name}.yaml")
    cfg.validate()
    assert cfg.optim.weights_dtype == "bf16" and cfg.optim.gradient_checkpointing and cfg.data.cache_dir


def test_the_cast_text_encoder_counts_and_warns_about_long_prompts_too():
    from idglow.conditioning.text import TextEncoder

    encoder = TextEncoder(max_tokens=8)
    with pytest.warns(UserWarning, match=r"longer than data.max_tokens=8 MiniLM tokens .*'a group photo of four people"):
        states, _ = encoder.encode(["a group photo of four people in a park, the person on the left wears red", "two"])
    assert encoder.truncated == 1 and states.shape == (2, 8, 384)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per encoder
        encoder.encode(["another prompt of many more words than eight"])
    assert encoder.truncated == 2
