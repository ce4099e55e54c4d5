"""Invariants of the IdGlow transformer against the bare diffusers FLUX model on the same weights."""

import pytest
import torch
from conftest import TinyBatch, randomize_identity_branch

from idglow.generate.sampling import sample_packed
from idglow.identity import pad_references
from idglow.identity.attention import IdGlowAttnProcessor
from idglow.identity.gate import DynamicsAwareGate
from idglow.identity.schedules import evaluate
from idglow.models import IdGlowTransformer, ModelConfig
from idglow.utils.config import ConfigError, load_config

TOL = 1e-6


def _config(*overrides: str) -> ModelConfig:
    return load_config(ModelConfig, None, ["--preset", "tiny", *overrides])


def _model(*overrides: str, seed: int = 0) -> IdGlowTransformer:
    torch.manual_seed(seed)
    return IdGlowTransformer(_config(*overrides)).eval()


def _embedding_refs(batch: TinyBatch, n: int = 3, width: int = 128) -> torch.Tensor:
    return torch.randn(batch.hidden_states.shape[0], n, width, generator=torch.Generator().manual_seed(5))


VARIANTS = [
    (),
    ("--identity.gate.apply_to", "tokens"),
    ("--identity.text_tokens", "true"),
    ("--identity.encoder", "embedding"),
    ("--identity.encoder", "embedding_map", "--identity.map_dim", "8"),
    ("--identity.blocks", "[1]"),
]


def _encode(model, batch, **kw):
    identity = model.config.identity
    refs = _embedding_refs(batch, width=model.identity.encoder.reference_shape()[0]) if identity.reads_embeddings \
        else batch.refs
    text = batch.encoder_hidden_states if model.config.identity.text_tokens else None
    return model.encode_identity(refs, text_tokens=text, **kw)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_untrained_branch_reproduces_bare_flux(batch, overrides):
    model = _model(*overrides)
    with torch.no_grad():
        out = model(*batch.args(), identity=_encode(model, batch), task=["group", "age", "group"])
        assert (out - batch.bare(model)).abs().max() <= TOL


@pytest.mark.parametrize("overrides", VARIANTS)
def test_trained_branch_changes_output_but_lambda_zero_does_not(batch, overrides):
    model = _model(*overrides)
    randomize_identity_branch(model)
    with torch.no_grad():
        cond = _encode(model, batch)
        bare = batch.bare(model)
        assert (model(*batch.args(), identity=cond, lam=torch.ones(3)) - bare).abs().max() > 1e-3
        assert (model(*batch.args(), identity=cond, lam=torch.zeros(3)) - bare).abs().max() <= TOL


@pytest.mark.parametrize("apply_to", ["output", "tokens"])
def test_gate_at_zero_switches_identity_off(batch, apply_to):
    model = _model("--identity.gate.group.kind", "constant", "--identity.gate.group.lambda_max", "0",
                   "--identity.gate.apply_to", apply_to)
    randomize_identity_branch(model)
    with torch.no_grad():
        assert (model(*batch.args(), identity=_encode(model, batch), task="group") - batch.bare(model)).abs().max() <= TOL


def test_no_references_reproduces_bare_flux(batch):
    model = _model("--identity.text_tokens", "true")
    randomize_identity_branch(model)
    with torch.no_grad():
        bare = batch.bare(model)
        empty = model.encode_identity(batch.refs[:, :0], text_tokens=batch.encoder_hidden_states)
        assert (model(*batch.args(), identity=empty) - bare).abs().max() <= TOL
        all_masked = model.encode_identity(batch.refs, torch.zeros(3, 3, dtype=torch.bool), text_tokens=batch.encoder_hidden_states)
        assert (model(*batch.args(), identity=all_masked) - bare).abs().max() <= TOL
        assert (model(*batch.args(), identity=None) - bare).abs().max() <= TOL


@pytest.mark.parametrize("overrides", [(), ("--identity.gate.apply_to", "tokens"), ("--identity.text_tokens", "true")])
def test_padded_batch_equals_per_sample_results(overrides):
    model = _model(*overrides)
    randomize_identity_branch(model)
    batch = TinyBatch(batch=3)
    sets = [batch.refs[0, :1], batch.refs[1, :3], batch.refs[2, :0]]  # N = 1, 3 and 0 in one batch
    refs, mask = pad_references(sets)
    text = batch.encoder_hidden_states if model.config.identity.text_tokens else None
    tasks = ["group", "age", "age"]
    with torch.no_grad():
        together = model(*batch.args(), identity=model.encode_identity(refs, mask, text_tokens=text), task=tasks)
        for i, own in enumerate(sets):
            sl = slice(i, i + 1)
            cond = model.encode_identity(own[None], text_tokens=None if text is None else text[sl])
            alone = model(batch.hidden_states[sl], batch.sigma[sl], batch.encoder_hidden_states[sl],
                          batch.pooled[sl], batch.img_ids, batch.txt_ids, identity=cond, task=tasks[i])
            torch.testing.assert_close(together[sl], alone, rtol=1e-5, atol=1e-5)
        assert (together[2] - batch.bare(model)[2]).abs().max() <= TOL  # the N = 0 sample is untouched


def test_gradients_reach_identity_branch_and_lora(batch):
    model = _model("--lora.rank", "2")
    model.train()
    cond = model.encode_identity(batch.refs)
    model(*batch.args(), identity=cond).pow(2).mean().backward()
    groups = model.trainable_parameter_groups()
    # At init only the zero-initialised outputs (to_out, lora_B) receive gradient...
    assert all(m.to_out.weight.grad.abs().sum() > 0 for m in model.identity.cross_attention.values())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.flux.named_parameters() if "lora_B" in n)
    # ...and once those are non-zero, gradient flows through the whole branch and both LoRA factors.
    model.zero_grad()
    randomize_identity_branch(model)
    with torch.no_grad():
        for n, p in model.flux.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    model(*batch.args(), identity=model.encode_identity(batch.refs)).pow(2).mean().backward()
    dead = [n for n, p in model.identity.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
    assert groups["lora"] and all(p.grad is not None and p.grad.abs().sum() > 0 for p in groups["lora"])


def test_lora_at_init_reproduces_bare_and_backbone_keys_stay_plain(batch):
    plain = _model(seed=0)
    lora = _model("--lora.rank", "4", seed=0)
    with torch.no_grad():
        assert (lora(*batch.args()) - plain(*batch.args())).abs().max() <= TOL
    assert not any("cross_attention" in k or "identity" in k for k in plain.flux.state_dict())


def test_save_load_reproduces_outputs_exactly(batch, tmp_path):
    from idglow.models import load_identity_branch, load_lora, save_identity_branch, save_lora

    src = _model("--lora.rank", "2", "--identity.gate.age.kind", "learned", seed=0)
    randomize_identity_branch(src)
    with torch.no_grad():
        for n, p in src.flux.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.1)
    save_identity_branch(src, tmp_path)
    save_lora(src, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity_branch.json", "identity_branch.safetensors", "lora.json", "lora.safetensors"]
    dst = _model(seed=0)  # same backbone weights, default identity config, no LoRA
    load_identity_branch(dst, tmp_path)
    load_lora(dst, tmp_path)
    assert dst.config.identity.gate.age.kind == "learned"
    tasks = ["age", "group", "age"]
    with torch.no_grad():
        a = src(*batch.args(), identity=src.encode_identity(batch.refs), task=tasks)
        b = dst(*batch.args(), identity=dst.encode_identity(batch.refs), task=tasks)
    assert torch.equal(a, b)


def _random_lora(model, std: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.flux.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def test_stacked_loras_in_one_adapter_equal_fusing_one_then_adding_the_other(batch):
    """DPO trains its LoRA on the SFT-LoRA-merged backbone; concat_loras gives the same model as one removable adapter,
    and lora_ranks takes SFT's back out of it."""
    from idglow.models.io import apply_lora, lora_state
    from idglow.models.lora import adapters_disabled, concat_loras, fuse_lora, lora_ranks

    sft = _model("--lora.rank", "2", "--lora.alpha", "4", seed=0)
    _random_lora(sft, 0.2, seed=1)
    dpo = _model("--lora.rank", "3", "--lora.target_modules", "[attn.to_q, ff.net.2]", seed=0)
    _random_lora(dpo, 0.2, seed=2)
    sequential = _model(seed=0)
    apply_lora(sequential, *lora_state(sft))
    fuse_lora(sequential)  # what DPO's policy starts from
    apply_lora(sequential, *lora_state(dpo))
    stacked = _model(seed=0)
    state, options = concat_loras([lora_state(sft), lora_state(dpo)])
    assert options.rank == 5 and options.alpha == 5 and set(options.target_modules) >= {"attn.to_q", "ff.net.2", "attn.to_k"}
    apply_lora(stacked, state, options)
    with torch.no_grad():
        a, b, bare = sequential(*batch.args()), stacked(*batch.args()), _model(seed=0)(*batch.args())
        with adapters_disabled(stacked.flux):
            off = stacked(*batch.args())
    assert (a - b).abs().max() <= 1e-5 * a.abs().max() and (a - bare).abs().max() > 1e-2
    assert torch.equal(off, bare)  # the adapter switched off: exactly the base backbone
    peeled = _model(seed=0)  # lora_ranks, concat_loras' inverse: the first 2 ranks are SFT's adapter again
    part, part_options = lora_ranks(state, options, 0, 2)
    assert part_options.rank == 2 and part_options.alpha == 2
    apply_lora(peeled, part, part_options)
    with torch.no_grad():
        s, p = sft(*batch.args()), peeled(*batch.args())
    assert (s - p).abs().max() <= 1e-5 * s.abs().max() and (s - a).abs().max() > 1e-2
    with pytest.raises(ValueError, match=r"lora ranks \[3, 6\): outside the adapter's rank 5"):
        lora_ranks(state, options, 3, 6)


def test_an_embedding_branch_grows_into_an_embedding_map_one_and_a_stray_key_is_an_error(batch, tmp_path):
    from safetensors.torch import load_file

    from idglow.models.io import save_identity_branch, start_identity_branch

    plain = _model("--identity.encoder", "embedding")
    randomize_identity_branch(plain)
    save_identity_branch(plain, tmp_path / "plain")
    grown = _model("--identity.encoder", "embedding_map", "--identity.map_dim", "8")
    start_identity_branch(grown, tmp_path / "plain")
    refs = _embedding_refs(batch, width=128 + 16 * 8)
    with torch.no_grad():
        torch.testing.assert_close(grown.encode_identity(refs).c_id, plain.encode_identity(refs[..., :128]).c_id)
    tensors = load_file(str(tmp_path / "plain" / "identity_branch.safetensors"))
    save_identity_branch(plain, tmp_path / "stray", {**tensors, "encoder.stray": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"weights do not fit the grown branch: (.|\n)*Unexpected key.*encoder.stray"):
        start_identity_branch(grown, tmp_path / "stray")


def test_loading_mismatched_weights_is_an_error(tmp_path):
    from safetensors.torch import save_file

    from idglow.models import load_identity_branch

    save_file({"encoder.bogus": torch.zeros(1)}, str(tmp_path / "identity_branch.safetensors"), metadata={"config": "{}"})
    with pytest.raises(ValueError, match="identity_branch.safetensors: weights do not match"):
        load_identity_branch(_model(), tmp_path)
    with pytest.raises(FileNotFoundError):
        load_identity_branch(_model(), tmp_path / "nowhere")


@pytest.mark.parametrize("init", ["linear_decay", "window", "constant"])
def test_learned_gate_at_init_reproduces_its_analytic_schedule(init):
    cfg = _config("--identity.gate.group.kind", "learned", "--identity.gate.group.learned_init", init,
                  "--identity.gate.group.lambda_min", "0.1", "--identity.gate.group.lambda_max", "0.9").identity.gate
    gate = DynamicsAwareGate(cfg)
    sigma = torch.linspace(0, 1, 41)
    task = torch.zeros(41, dtype=torch.long)
    torch.testing.assert_close(gate(sigma, task), evaluate(cfg.group, sigma), rtol=0, atol=1e-7)
    # The age task keeps its own (analytic window) schedule, and the MLP is trainable.
    torch.testing.assert_close(gate(sigma, task + 1), evaluate(cfg.age, sigma))
    gate(sigma, task).sum().backward()
    assert gate.mlp[-1].weight.grad.abs().sum() > 0


def test_gate_selects_each_samples_task():
    cfg = _config().identity.gate
    gate = DynamicsAwareGate(cfg)
    sigma = torch.tensor([0.5, 0.5, 0.9, 0.9])
    lam = gate(sigma, torch.tensor([0, 1, 0, 1]))
    torch.testing.assert_close(lam, torch.tensor([0.5, 1.0, 0.9, 0.0]))


@pytest.mark.parametrize("apply_to", ["output", "tokens"])
def test_cached_kv_sampling_equals_uncached(apply_to):
    model = _model("--identity.gate.apply_to", apply_to, "--identity.text_tokens", "true")
    randomize_identity_branch(model)
    batch = TinyBatch(batch=2)
    cond = model.encode_identity(batch.refs[:2], text_tokens=batch.encoder_hidden_states)
    common = dict(encoder_hidden_states=batch.encoder_hidden_states, pooled_projections=batch.pooled,
                  img_ids=batch.img_ids, txt_ids=batch.txt_ids, identity=cond, task=["group", "age"], num_steps=6)
    noise = torch.randn_like(batch.hidden_states)
    cached = sample_packed(model, noise, cache_kv=True, **common)
    uncached = sample_packed(model, noise, cache_kv=False, **common)
    torch.testing.assert_close(cached, uncached, rtol=0, atol=1e-6)
    plain = sample_packed(model, noise, **{**common, "identity": None})
    assert (cached - plain).abs().max() > 1e-3
    # identity guidance: g = 0 is the base model, g = 1 the plain identity sampler
    torch.testing.assert_close(sample_packed(model, noise, id_guidance=0.0, **common), plain, rtol=0, atol=1e-6)
    torch.testing.assert_close(sample_packed(model, noise, id_guidance=1.0, **common), cached, rtol=0, atol=0)


def _two_references_cached():
    """A model with a random identity branch, two samples' cached references, the model's other inputs, and noise."""
    model = _model()
    randomize_identity_branch(model)
    batch = TinyBatch(batch=2)
    cond = model.cache_identity(model.encode_identity(batch.refs[:2]))
    args = (batch.encoder_hidden_states, batch.pooled, batch.img_ids, batch.txt_ids)
    return model, cond, args, torch.randn_like(batch.hidden_states)


def test_identity_guidance_extrapolates_the_velocity_from_the_base_model():
    model, cond, args, noise = _two_references_cached()
    sigma = torch.ones(2)
    v_id = model(noise, sigma, *args, identity=cond, task="group")
    v_none = model(noise, sigma, *args, task="group")
    one_step = sample_packed(model, noise, *args, identity=cond, task="group", num_steps=1, id_guidance=3.0)
    # one Euler step from sigma 1 to 0: x0 = noise - v
    torch.testing.assert_close(one_step, noise - (v_none + 3.0 * (v_id - v_none)), rtol=0, atol=1e-5)
    # one scale per sample (e.g. per task): each sample as if sampled alone with its own scale
    mixed = sample_packed(model, noise, *args, identity=cond, task="group", num_steps=2, id_guidance=[1.0, 3.0])
    for b, g in enumerate((1.0, 3.0)):
        alone = sample_packed(model, noise, *args, identity=cond, task="group", num_steps=2, id_guidance=g)
        torch.testing.assert_close(mixed[b], alone[b], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="3 scales for 2 samples"):
        sample_packed(model, noise, *args, identity=cond, task="group", num_steps=1, id_guidance=[1.0, 2.0, 3.0])


def test_guidance_interval_guides_only_the_steps_whose_sigma_lies_in_it():
    from idglow.flow import sigma_grid
    from idglow.generate.sampling import guidance_scale

    scale = guidance_scale([2.0, 3.0], [(0.7, 1.0), (0.0, 0.5)], 2)
    assert scale(1.0).tolist() == [2.0, 1.0] and scale(0.7).tolist() == [2.0, 1.0]  # ends included
    assert scale(0.5).tolist() == [1.0, 3.0] and scale(0.6).tolist() == [1.0, 1.0]
    assert guidance_scale(2.0, None, 3)(0.1).tolist() == [2.0] * 3
    for bad, match in [((0.7, 0.2), "0 <= sigma_lo <= sigma_hi"), ([(0.1, 0.2, 0.3)], r"expected \(sigma_lo, sigma_hi\)"),
                       ((-0.1, 1.0), "0 <= sigma_lo")]:
        with pytest.raises(ValueError, match=match):
            guidance_scale(2.0, bad, 2)
    model, cond, args, noise = _two_references_cached()
    common = dict(identity=cond, task="group", num_steps=4)
    everywhere = sample_packed(model, noise, *args, id_guidance=3.0, **common)
    plain = sample_packed(model, noise, *args, id_guidance=1.0, **common)
    torch.testing.assert_close(sample_packed(model, noise, *args, id_guidance=3.0, id_guidance_interval=(0.0, 1.0), **common),
                               everywhere, rtol=0, atol=0)
    calls = []
    model.register_forward_hook(lambda module, inputs, output: calls.append(1))
    nowhere = sample_packed(model, noise, *args, id_guidance=3.0, id_guidance_interval=(0.0, 0.0), **common)
    torch.testing.assert_close(nowhere, plain, rtol=0, atol=0)
    assert len(calls) == 4  # outside the interval a step costs one forward
    # guided only at the first step (sigma 1): the same as guidance 3 for one step, then the plain sampler
    first = float(sigma_grid(4, shift=1.0)[1])  # the second step's sigma: sample_packed's grid
    calls.clear()
    once = sample_packed(model, noise, *args, id_guidance=3.0, id_guidance_interval=((first + 1) / 2, 1.0), **common)
    assert len(calls) == 5
    assert (once - plain).abs().max() > 1e-4 and (once - everywhere).abs().max() > 1e-4


def test_processors_wrap_diffusers_and_only_chosen_blocks_inject():
    model = _model("--identity.blocks", "[1]")
    procs = model.flux.attn_processors
    assert all(isinstance(p, IdGlowAttnProcessor) for p in procs.values())
    injecting = sorted(k for k, p in procs.items() if p.cross_attention is not None)
    assert injecting == ["transformer_blocks.1.attn.processor"]
    assert list(model.identity.cross_attention) == ["1"]


@pytest.mark.parametrize(
    "call,error,message",
    [
        (lambda m, b: m(b.hidden_states[..., :8], *b.args()[1:]), ValueError, "hidden_states"),
        (lambda m, b: m(b.hidden_states, b.sigma[:2], *b.args()[2:]), ValueError, "sigma"),
        (lambda m, b: m(*b.args(sigma=b.sigma + 1)), ValueError, "sigma"),
        (lambda m, b: m(b.hidden_states, b.sigma, b.encoder_hidden_states[..., :7], *b.args()[3:]), ValueError, "encoder_hidden_states"),
        (lambda m, b: m(*b.args()[:3], b.pooled[:, :5], *b.args()[4:]), ValueError, "pooled_projections"),
        (lambda m, b: m.encode_identity(b.refs[:, :, :, :8, :8]), ValueError, "refs"),
        (lambda m, b: m.encode_identity(b.refs[:, :, :1]), ValueError, "refs"),
        (lambda m, b: m.encode_identity(torch.zeros(3, 5, 3, 32, 32)), ValueError, r"refs: N=5 references exceed max_refs=4"),
        (lambda m, b: m.encode_identity(b.refs, torch.ones(3, 2, dtype=torch.bool)), ValueError, "ref_mask"),
        (lambda m, b: m(*b.args(), identity=m.encode_identity(b.refs), task="child"), ValueError, "task"),
        (lambda m, b: m(*b.args(), identity=m.encode_identity(b.refs), task=["group"]), ValueError, "task"),
        (lambda m, b: m(*b.args(), identity=m.encode_identity(b.refs[:2])), ValueError, "identity"),
        (lambda m, b: m(*b.args(), identity=m.encode_identity(b.refs), lam=torch.full((3,), 1.5)), ValueError, "lam"),
    ],
)
def test_bad_input_names_the_parameter(batch, call, error, message):
    model = _model()
    with pytest.raises(error, match=message):
        call(model, batch)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (("--identity.gate.age.kind", "sawtooth"), r"identity\.gate\.age\.kind"),
        (("--identity.gate.age.sigma_lo", "0.8", "--identity.gate.age.sigma_hi", "0.4"), r"identity\.gate\.age\.sigma_lo"),
        (("--identity.gate.group.lambda_max", "1.2"), r"identity\.gate\.group\.lambda_max"),
        (("--identity.gate.group.lambda_min", "-0.5"), r"identity\.gate\.group\.lambda_min"),
        (("--identity.max_refs", "0"), r"identity\.max_refs"),
        (("--lora.rank", "-1"), r"lora\.rank"),
    ],
)
def test_bad_config_names_the_parameter(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _config(*overrides)


def test_out_of_range_block_and_bad_lora_target_are_named():
    with pytest.raises(ValueError, match=r"identity\.blocks"):
        _model("--identity.blocks", "[7]")
    with pytest.raises(ValueError, match=r"lora\.target_modules"):
        _model("--lora.rank", "2", "--lora.target_modules", "[nothing.here]")


@pytest.mark.parametrize("rotate", [False, True])
def test_rotated_queries_make_identity_attention_depend_on_image_position(rotate):
    from diffusers.models.embeddings import FluxPosEmbed

    from idglow.identity.attention import MultiIDCrossAttention
    from idglow.models.packing import image_ids

    torch.manual_seed(0)
    module = MultiIDCrossAttention(dim=32, token_dim=16, heads=2, head_dim=16, rotate_queries=rotate)
    torch.nn.init.normal_(module.to_out.weight)
    rotary = FluxPosEmbed(theta=10000, axes_dim=[4, 6, 6])(image_ids(8, 16))  # 4 x 8 = 32 image tokens
    same_content = torch.randn(1, 1, 32).expand(1, 32, 32)  # one hidden state repeated at every position
    keys, values = module.project_kv(torch.randn(1, 3, 16))
    out = module(same_content, keys, values, torch.ones(1, 1, 1, 3, dtype=torch.bool), rotary)
    spread = (out - out[:, :1]).abs().max()
    assert (spread > 1e-3) if rotate else (spread < 1e-5)
    if rotate:
        with pytest.raises(ValueError, match="rotary"):
            module(same_content, keys, values, torch.ones(1, 1, 1, 3, dtype=torch.bool))
