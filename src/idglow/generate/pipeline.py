"""``IdGlowPipeline``: prompts + reference face crops -> images, from a trained SFT run.

It bundles what generation needs: the model (base backbone + identity branch), the representation
(pixels or latents), the text encoder, the frozen face embedder that turns crops into the identity
branch's input (``identity.encoder: embedding``), and FLUX's resolution shift. Reference K/V are
computed once per image and reused at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from idglow.conditioning.representation import build_representation
from idglow.conditioning.text import build_text_encoder
from idglow.faces.recognizer import load_reference_embedder
from idglow.faces.references import frozen_embeddings
from idglow.flow import flux_shift_mu
from idglow.generate.sampling import generate_images
from idglow.identity.branch import pad_references
from idglow.models import IdGlowTransformer
from idglow.runs.load import load_run, weights_fingerprint
from idglow.utils.precision import resolve_precision


class IdGlowPipeline:
    """Generation with a trained identity branch.

    Args:
        model: the IdGlow transformer (eval mode).
        cfg: the run's ``SFTConfig`` (representation, prompt length, encoder kind, judges folder).
        height, width: output image size in pixels.
        ref_size: side of the square reference crops the identity branch was trained on (the cast's
            ``build.ref_size``); :mod:`idglow.generate.files` resizes user files to it.
        device: where everything runs (default: where ``model`` is). Images are returned on the CPU.
        precision: arithmetic of sampling: ``auto`` (bf16 autocast where the hardware makes it fast, else fp32),
            ``bf16`` or ``fp32``; None: ``$IDGLOW_PRECISION``, else auto. Weights other than float32 always run
            under bf16 autocast. ``self.precision`` holds the resolved choice (recorded in generation sidecars).
    """

    def __init__(self, model: IdGlowTransformer, cfg, height: int, width: int, ref_size: int = 32,
                 device: torch.device | str | None = None, precision: str | None = None):
        param = next(model.parameters())
        self.device = torch.device(device) if device is not None else param.device
        self.model, self.cfg, self.ref_size = model.eval().to(self.device), cfg, ref_size
        self.autocast = param.dtype != torch.float32
        self.precision = "bf16" if self.autocast else resolve_precision(precision, self.device)
        self.height, self.width = height, width
        self.rep = build_representation(cfg.representation, height, width).to(self.device)
        self.text = build_text_encoder(cfg.text, cfg.data.max_tokens, self.device, cfg.data.cache_dir)
        self.mu = flux_shift_mu(self.rep.tokens) if cfg.flow.shift == "resolution" else None
        self.embedder = None
        self.weights: str | None = None  # the run's weights fingerprint (from_run), recorded in generation sidecars
        if cfg.model.identity.encoder == "embedding":
            self.embedder = load_reference_embedder(cfg).to(self.device)

    @classmethod
    def from_run(cls, run: str | Path, height: int = 64, width: int = 128, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, precision: str | None = None) -> IdGlowPipeline:
        """The pipeline of a finished ``idglow train sft`` or ``train dpo`` run folder, on ``device`` in ``dtype``,
        sampling in ``precision`` (see the class)."""
        model, cfg = load_run(run, dtype)
        # ArcFace reads 112 x 112 crops; dlib and insightface detect the face in the reference (HOG needs ~80 px)
        ref_size = {"dlib": 160, "insightface": 160}.get(cfg.references.backend, 112 if cfg.identity_loss.recognizer == "arcface" else 32)
        pipe = cls(model.to(device=device, dtype=dtype), cfg, height, width, ref_size, device=device, precision=precision)
        pipe.weights = weights_fingerprint(run)
        return pipe

    def reference_inputs(self, references: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample reference crops (B tensors [N_b, 3, h, w] in [-1, 1]) -> the identity encoder's padded inputs
        ``(refs [B, N, ...], ref_mask [B, N])``: frozen face embeddings for ``identity.encoder: embedding``, else crops."""
        crops = torch.cat(list(references)).to(self.device)
        inputs = frozen_embeddings(self.embedder, crops) if self.embedder is not None else crops
        return pad_references(inputs.split([len(r) for r in references]), self.cfg.model.identity.max_refs)

    @torch.no_grad()
    def __call__(
        self,
        prompts: Sequence[str],
        references: Sequence[torch.Tensor] | None = None,
        tasks: Sequence[str] | str = "group",
        steps: int = 20,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        id_guidance: float = 1.0,
        init_images: torch.Tensor | None = None,
        sigma_start: float = 1.0,
    ) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1].

        Args:
            prompts: B prompts.
            references: B tensors [N_b, 3, h, w] of face crops (None: text only, identity branch off).
            tasks: ``group``/``age`` per prompt, or one for all.
            steps: Euler steps.
            generator: one generator per prompt (each image then depends only on its own seed, not on what else
                is in the batch); a single generator draws every image's noise from it in turn; None: torch's
                default generator.
            id_guidance: identity guidance scale (1 = none; see :func:`idglow.generate.sampling.sample_packed`).
            init_images, sigma_start: image-to-image: start from these images [B, 3, H, W] in [-1, 1] noised to
                ``sigma_start`` < 1 (see :func:`idglow.generate.sampling.generate_images`).
        """
        if references is not None and len(references) != len(prompts):
            raise ValueError(f"references: {len(references)} reference sets for {len(prompts)} prompts")
        if not isinstance(generator, Sequence):
            generator = [generator if generator is not None else torch.default_generator] * len(prompts)
        elif len(generator) != len(prompts):
            raise ValueError(f"generator: {len(generator)} generators for {len(prompts)} prompts")
        task = [tasks] * len(prompts) if isinstance(tasks, str) else list(tasks)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            refs, ref_mask = self.reference_inputs(references) if references is not None else (None, None)
            images = generate_images(self.model, self.rep, self.text, prompts, generator, refs, ref_mask, task=task,
                                     num_steps=steps, mu=self.mu, id_guidance=id_guidance, precision=self.precision,
                                     init_images=init_images, sigma_start=sigma_start)
        return images.cpu()
