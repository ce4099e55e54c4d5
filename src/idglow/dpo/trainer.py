"""Stage 2, Flow-DPO: a LoRA policy on a finished SFT model, trained on group-level preference pairs.

Per step: winner and loser of each pair are noised with the same noise and sigma; the policy (SFT
model + DPO adapter) and the reference (the same module with the adapter disabled, so no second copy
in memory) predict velocities; :func:`idglow.flow.dpo.dpo_terms` turns the four flow-matching errors
into the configured loss. The identity branch and the SFT weights are frozen; only the adapter trains.

Noise and sigma of a pair depend on ``(seed, step, pair index)`` only, so the same step gives the same
update whatever the split into micro-batches or processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idglow.cast.crops import to_uint8
from idglow.conditioning.precompute import encode_latents
from idglow.data.pairs import PairImages, PreferencePairs
from idglow.faces.recognizer import load_reference_embedder
from idglow.faces.references import frozen_embeddings, scatter_references
from idglow.flow import add_noise, flow_matching_loss, sample_sigmas, velocity_target
from idglow.flow.dpo import dpo_terms
from idglow.models import IdGlowTransformer
from idglow.models.io import save_lora
from idglow.models.lora import adapters_disabled, add_lora, is_lora_parameter
from idglow.recipes.dpo import DPOConfig
from idglow.runs.adopt import resolve_dpo
from idglow.runs.load import PARENT, load_policy, weights_fingerprint
from idglow.training.engine import strip_prefix
from idglow.training.loop import Trainer
from idglow.utils.defaults import TASKS
from idglow.utils.io import atomic_write


class DPOTrainer(Trainer):
    """Trains a LoRA adapter on the SFT model with Flow-DPO on ``cfg.data`` (preference manifests)."""

    def __init__(self, cfg: DPOConfig):
        cfg.validate()
        cfg, self.sft_cfg = resolve_dpo(cfg)
        identity = self.sft_cfg.model.identity
        self.embedder = load_reference_embedder(self.sft_cfg) if identity.reads_embeddings else None
        super().__init__(cfg)
        crops = self.data.ref_crops(torch.arange(len(self.data.refs)))
        self.ref_inputs = frozen_embeddings(self.embedder, crops) if self.embedder is not None else crops

    def _load_data(self) -> PreferencePairs:
        progress = self.cfg.log.progress and self.accelerator.is_main_process
        return PreferencePairs(self.cfg.data.manifests, progress=progress, max_refs=self.cfg.model.identity.max_refs)

    def _build_model(self) -> IdGlowTransformer:
        model, _ = load_policy(self.cfg.sft)
        model.requires_grad_(False)
        add_lora(model.flux, self.cfg.lora)  # peft marks only the new adapter trainable
        model.config.lora = self.cfg.lora
        return model.train()

    def _encode_dataset(self) -> torch.Tensor:
        """Latent tokens of every winner and loser [P, 2, S, C], encoded once (the autoencoder is frozen); with
        ``data.cache_dir``, read from and written to the disk cache like the other stages."""
        tokens = encode_latents(PairImages(self.data), self.rep, self.cfg.data.cache_dir, self.cfg.log.progress)
        return torch.stack([tokens[: len(self.data)], tokens[len(self.data) :]], dim=1)

    def _pair_tokens(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """Winner and loser tokens [B, S, C] and prompts of pairs ``index``."""
        winners, losers, prompts = self.data.batch(index)
        if self.cached_tokens is not None:
            winners, losers = self.cached_tokens[index, 0], self.cached_tokens[index, 1]
        else:
            winners, losers = self.rep.encode(winners), self.rep.encode(losers)
        device = self.accelerator.device
        return winners.to(device), losers.to(device), prompts

    def _pair_noise(self, index: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise [B, S, C] and sigma [B] of each pair, drawn from ``(seed, step, pair index)`` alone."""
        f, noises, sigmas = self.cfg.flow, [], []
        for i in index.tolist():
            generator = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + self.step) * 1_000_003 + i)
            noises.append(torch.randn(shape, generator=generator))
            sigmas.append(sample_sigmas(1, f.sampler, logit_mean=f.logit_mean, logit_std=f.logit_std,
                                        mode_scale=f.mode_scale, mu=self.mu, generator=generator))
        device = self.accelerator.device
        return torch.stack(noises).to(device), torch.cat(sigmas).to(device)

    def _loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, device, b = self.cfg, self.accelerator.device, len(index)
        winners, losers, prompts = self._pair_tokens(index)
        noise, sigma = self._pair_noise(index, tuple(winners.shape[1:]))
        clean, noise2, sigma2 = torch.cat([winners, losers]), torch.cat([noise, noise]), torch.cat([sigma, sigma])
        noisy, target = add_noise(clean, noise2, sigma2), velocity_target(clean, noise2)
        states, pooled = self.text(prompts)
        ids, rows, slots = self.data.subjects(index)
        refs, mask = scatter_references(self.ref_inputs[ids], rows, slots, b, cfg.model.identity.max_refs)
        task = self.data.tasks[index].to(device)
        inputs = (noisy, sigma2, states.repeat(2, 1, 1), pooled.repeat(2, 1), self.img_ids, self.txt_ids)
        condition = dict(task=task.repeat(2), refs=refs.repeat(2, *[1] * (refs.dim() - 1)).to(device),
                         ref_mask=mask.repeat(2, 1).to(device))
        with torch.no_grad(), self.autocast():
            reference = flow_matching_loss(self._reference_velocity(inputs, condition), target, sigma2, cfg.flow.weighting)
        with self.autocast():
            policy = flow_matching_loss(self.model(*inputs, **condition), target, sigma2, cfg.flow.weighting)
        terms = dpo_terms(policy[:b], policy[b:], reference[:b], reference[b:], cfg.dpo.beta, cfg.dpo.loss,
                          self.data.weights[index].to(device), self.data.margins[index].to(device))
        return {**terms, "sigma": sigma, "task": task}

    def _reference_velocity(self, inputs: tuple, condition: dict) -> torch.Tensor:
        """The reference's prediction: the policy module itself with the DPO adapter switched off."""
        model = self.accelerator.unwrap_model(self.model)
        with adapters_disabled(model.flux):
            return model(*inputs, **condition)

    def _saves(self, key: str) -> bool:
        return is_lora_parameter(key)

    def _save_final(self, model: IdGlowTransformer, folder: Path, whole: dict[str, torch.Tensor] | None = None) -> None:
        """The DPO adapter as safetensors + JSON, and ``parent.json``: the SFT run it applies to and that run's weights
        fingerprint, so that a retrained SFT run is refused rather than silently combined with this adapter."""
        save_lora(model, folder, None if whole is None else strip_prefix(whole, "flux."))
        parent = {"sft": self.cfg.sft, "sft_weights": weights_fingerprint(self.cfg.sft)}
        atomic_write(folder / PARENT, lambda p: p.write_text(json.dumps(parent, indent=2) + "\n"))

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """The first pairs' prompts and references, one row each: references | SFT (adapter off) | DPO; same noise."""
        from idglow.generate.pipeline import IdGlowPipeline

        model = self.accelerator.unwrap_model(self.model).eval()
        pipe = IdGlowPipeline(model, self.sft_cfg, self.height, self.width, ref_size=self.data.refs.shape[-1])
        index = torch.arange(min(self.cfg.log.num_samples, len(self.data)))
        refs = [self.data.ref_crops(torch.arange(int(self.data.first[i]), int(self.data.first[i + 1]))) for i in index]
        prompts, tasks = [self.data.prompts[i] for i in index], [TASKS[int(self.data.tasks[i])] for i in index]

        def generate() -> torch.Tensor:
            seeds = [torch.Generator().manual_seed(1234 + int(i)) for i in index]
            return pipe.sample(prompts, refs, tasks, steps=self.cfg.log.sample_steps, generator=seeds)

        with adapters_disabled(model.flux), self.autocast():
            before = generate()
        with self.autocast():
            after = generate()
        model.train()
        rows = []
        for i in range(len(index)):
            strip = np.concatenate([to_uint8(torch.nn.functional.interpolate(r[None], size=self.height)[0]) for r in refs[i]], 1)
            rows.append(np.concatenate([strip, to_uint8(before[i]), to_uint8(after[i])], axis=1))
        width = max(r.shape[1] for r in rows)
        grid = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))
        return path
