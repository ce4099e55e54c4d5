"""Sampling an IdGlow transformer with the Euler sampler, identity K/V cached across steps."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from idglow.flow import add_noise, euler_sample, sigma_grid, start_at
from idglow.identity.attention import IdentityCondition
from idglow.models.packing import text_ids
from idglow.models.transformer import IdGlowTransformer
from idglow.utils.precision import autocast, resolve_precision

# (sigma_lo, sigma_hi) for every sample, one pair per sample, or None (guidance at every step)
GuidanceInterval = tuple[float, float] | Sequence[tuple[float, float]] | None


@torch.no_grad()
def sample_packed(
    model: IdGlowTransformer,
    noise: torch.Tensor,
    encoder_hidden_states: torch.Tensor,
    pooled_projections: torch.Tensor,
    img_ids: torch.Tensor,
    txt_ids: torch.Tensor,
    identity: IdentityCondition | None = None,
    task: Sequence[str] | str | torch.Tensor = "group",
    num_steps: int = 20,
    shift: float = 1.0,
    mu: float | None = None,
    cache_kv: bool = True,
    guidance: torch.Tensor | None = None,
    id_guidance: float | Sequence[float] = 1.0,
    id_guidance_interval: GuidanceInterval = None,
    progress: bool = False,
    sigma_start: float = 1.0,
    on_step: Callable[[int, float, torch.Tensor], torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """Integrate the model's velocity from ``noise`` (sigma = ``sigma_start``, 1 by default) to data (sigma = 0).

    Args:
        noise: packed tokens [B, S, C] at ``sigma_start``: pure noise, or an image noised to that level.
        encoder_hidden_states, pooled_projections, img_ids, txt_ids: as for :meth:`IdGlowTransformer.forward`.
        identity: encoded references, or None for text-only sampling.
        task: per-sample task(s).
        num_steps, shift, mu: the sigma grid (:func:`idglow.flow.sigma_grid`).
        cache_kv: compute each block's identity K/V once for the whole run (C_ID does not depend on sigma).
        id_guidance: identity guidance scale g: ``v = v_none + g * (v_id - v_none)``, where ``v_none``
            is the same model without references (the base model, exactly). 1 = one forward per step;
            any other value costs a second forward. One value, or one per sample [B] (e.g. per task).
        id_guidance_interval: ``(sigma_lo, sigma_hi)``: guide only at the steps whose sigma lies in it (ends
            included) and take the identity model's velocity elsewhere, with no second forward there (guidance in
            a limited interval, Kynkaanniemi et al. 2024). One pair, or one per sample [B, 2]; None: every step.
        sigma_start: the noise level of ``noise``; the grid's steps below it are taken (:func:`idglow.flow.start_at`).
        on_step: per-step hook on the packed latents (see :func:`idglow.flow.euler_sample`).

    Returns:
        packed latents [B, S, C].
    """
    if identity is not None and cache_kv and identity.kv is None:
        identity = model.cache_identity(identity)

    def forward(x: torch.Tensor, sigma: torch.Tensor, condition: IdentityCondition | None) -> torch.Tensor:
        return model(
            x, sigma, encoder_hidden_states, pooled_projections, img_ids, txt_ids,
            identity=condition, task=task, guidance=guidance,
        ).float()  # under bf16 autocast: the guidance difference and the Euler step stay fp32

    scale = guidance_scale(id_guidance, id_guidance_interval, noise.shape[0])

    def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        v_id = forward(x, sigma, identity)
        # the step's sigma is read (a device sync on a GPU) only when an interval needs it
        g = scale(None if id_guidance_interval is None else float(sigma.reshape(-1)[0]))
        if identity is None or bool((g == 1.0).all()):
            return v_id
        g = g.to(x.device).view(-1, *([1] * (x.dim() - 1)))  # [B, 1, 1]: broadcast over tokens and channels
        v_none = forward(x, sigma, None)
        return v_none + g * (v_id - v_none)

    sigmas = start_at(sigma_grid(num_steps, shift=shift, mu=mu), sigma_start)
    return euler_sample(velocity, noise, sigmas.to(noise.device), progress=progress, on_step=on_step)


def guidance_scale(id_guidance: float | Sequence[float], interval: GuidanceInterval,
                   batch: int) -> Callable[[float | None], torch.Tensor]:
    """``scale(sigma) -> [B]``: each sample's identity guidance at a step of noise level ``sigma``: its
    ``id_guidance`` where sigma lies in its interval (ends included; everywhere when ``interval`` is None, which
    needs no sigma), 1 elsewhere.

    Raises:
        ValueError: a per-sample list of the wrong length, or an interval that is not ``0 <= lo <= hi``.
    """
    scale = torch.as_tensor(id_guidance, dtype=torch.float32)
    if scale.dim() and scale.shape[0] != batch:
        raise ValueError(f"id_guidance: {scale.shape[0]} scales for {batch} samples")
    scale = scale.expand(batch).clone() if scale.dim() == 0 else scale
    if interval is None:
        return lambda sigma: scale
    bounds = torch.as_tensor(interval, dtype=torch.float64)
    if bounds.shape == (2,):
        bounds = bounds.expand(batch, -1)
    if bounds.shape != (batch, 2):
        raise ValueError(f"id_guidance_interval: expected (sigma_lo, sigma_hi) or one per sample [{batch}, 2], "
                         f"got shape {tuple(bounds.shape)}")
    if bool(((bounds[:, 0] < 0) | (bounds[:, 0] > bounds[:, 1])).any()):
        raise ValueError(f"id_guidance_interval: expected 0 <= sigma_lo <= sigma_hi, got {bounds.tolist()}")

    def at(sigma: float) -> torch.Tensor:
        inside = (bounds[:, 0] <= sigma) & (sigma <= bounds[:, 1])
        return torch.where(inside, scale, torch.ones_like(scale))

    return at


def seeded_noise(seeds: Sequence[int | torch.Generator], tokens: int, channels: int) -> torch.Tensor:
    """Initial noise [B, S, C], sample b drawn on the CPU from its own generator (``seeds[b]``: a seed or a
    generator), so an image depends on its seed only: not on the batch it is in, nor on the device."""
    generators = [s if isinstance(s, torch.Generator) else torch.Generator().manual_seed(int(s)) for s in seeds]
    return torch.stack([torch.randn(tokens, channels, generator=g) for g in generators])


@torch.no_grad()
def generate_images(
    model: IdGlowTransformer,
    rep,
    text,
    prompts: Sequence[str],
    seeds: Sequence[int | torch.Generator],
    refs: torch.Tensor | None = None,
    ref_mask: torch.Tensor | None = None,
    task: Sequence[str] | str | torch.Tensor = "group",
    num_steps: int = 20,
    mu: float | None = None,
    id_guidance: float | Sequence[float] = 1.0,
    id_guidance_interval: GuidanceInterval = None,
    precision: str | None = None,
    init_images: torch.Tensor | None = None,
    sigma_start: float = 1.0,
    on_step: Callable[[int, float, torch.Tensor], torch.Tensor | None] | None = None,
    decode: bool = True,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Images [B, 3, H, W] in [-1, 1] (float32, on the model's device): the one way every caller samples.

    ``IdGlowPipeline``, the trainers' sample grids, the SFT binding diagnostic and the base-model evaluation
    all come here, so the same model, prompts, references and seeds give the same images everywhere.

    Args:
        model: the IdGlow transformer (eval mode); rep: the image representation (pixels or latents);
            text: the prompt encoder (``text(prompts) -> (states [B, T, D], pooled [B, P])``, ``max_tokens``).
        prompts, seeds: B prompts and one seed (or generator) each: see :func:`seeded_noise`.
        refs, ref_mask: the identity encoder's inputs [B, N, ...] and mask [B, N] (padded with
            :func:`idglow.identity.pad_references`), or None: the base model. Encoded once, K/V cached for all steps.
        task, num_steps, mu, id_guidance, id_guidance_interval: as for :func:`sample_packed`.
        precision: ``auto`` (bf16 autocast where the hardware makes it fast), ``bf16`` or ``fp32``; None: the
            process default (``$IDGLOW_PRECISION``, else auto). See :mod:`idglow.utils.precision`. The noise, the
            Euler integration and the decoded images stay fp32.
        init_images, sigma_start: start from these images [B, 3, H, W] in [-1, 1] noised to ``sigma_start`` (< 1)
            instead of pure noise, and take the sampler's steps below that level: image-to-image, and the
            noise-and-denoise probe of what a model keeps (``benchmarks/identity_cap.py``).
        on_step: per-step hook on the packed latents (see :func:`idglow.flow.euler_sample`).
        decode: False returns the packed latents [B, S, C] (float32) instead of images.
        device: where sampling runs (default: where the model's first parameter is; pass it when the backbone is
            offloaded and its parameters wait on the CPU).
    """
    if len(seeds) != len(prompts):
        raise ValueError(f"seeds: {len(seeds)} seeds for {len(prompts)} prompts")
    if (init_images is None) != (sigma_start == 1.0):
        raise ValueError(f"init_images and sigma_start go together: got sigma_start {sigma_start} and "
                         f"{'no' if init_images is None else 'some'} init_images (sigma_start < 1 needs images to noise)")
    if init_images is not None and init_images.shape[0] != len(prompts):
        raise ValueError(f"init_images: {init_images.shape[0]} images for {len(prompts)} prompts")
    device = device or next(model.parameters()).device
    states, pooled = text(list(prompts))
    states, pooled = states.to(device), pooled.to(device)
    identity = None
    noise = seeded_noise(seeds, rep.tokens, rep.channels).to(device)
    if init_images is not None:
        noise = add_noise(rep.encode(init_images.to(device).float()), noise, sigma_start)
    with autocast(resolve_precision(precision, device), device):
        if refs is not None:
            identity = model.cache_identity(model.identity_condition(refs.to(device), ref_mask.to(device), states))
        packed = sample_packed(model, noise, states, pooled, rep.image_ids(device), text_ids(text.max_tokens, device),
                               identity=identity, task=task, num_steps=num_steps, mu=mu, id_guidance=id_guidance,
                               id_guidance_interval=id_guidance_interval, sigma_start=sigma_start, on_step=on_step)
    if not decode:
        return packed.float()
    return rep.decode(packed.float()).clamp(-1, 1).float()
