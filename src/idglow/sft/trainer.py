"""Stage 1, SFT: the identity branch trained on a frozen base model with flow matching plus the identity loss.

Per step: noise the scenes, encode each subject's reference (the frozen cast ``encoder`` embedding for
``identity.encoder: embedding``, the crop for ``conv``), predict the velocity with the gate of each
sample's task, and add ``w_id * s_task(sigma) * a(step) * (1 - cos)`` between the frozen ``encoder``'s
embedding of each subject's face in ``x0_hat`` (cut at its ground-truth box) and its reference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from idglow.conditioning.flux_folder import is_pipeline_folder
from idglow.data.streaming import StreamingScenes
from idglow.data.subjects import SubjectScenes
from idglow.faces.identity_loss import (annealing, gaussian_blur, identity_loss_weight, per_sample_mean,
                                       subject_similarity)
from idglow.faces.recognizer import load_recognizer, load_reference_embedder
from idglow.faces.references import frozen_embeddings, scatter_references
from idglow.flow import flow_matching_loss, latents_from_velocity, velocity_target
from idglow.identity.schedules import schedule_function
from idglow.models import IdGlowTransformer
from idglow.models.io import apply_lora, save_identity_branch, save_lora, start_identity_branch
from idglow.models.lora import is_lora_parameter
from idglow.recipes.sft import SFTConfig
from idglow.runs.adopt import resolve_sft
from idglow.runs.load import run_adapter, sft_folder
from idglow.sft.diagnostics import BindingDiagnostic
from idglow.training.engine import strip_prefix
from idglow.training.loop import Trainer
from idglow.utils.config import ConfigError
from idglow.utils.io import atomic_write, open_append_log


class SFTTrainer(Trainer):
    """Trains ``model.identity`` (and LoRA when ``model.lora.rank > 0``) on subject scenes; the backbone is frozen."""

    def __init__(self, cfg: SFTConfig):
        cfg.validate()
        cfg = resolve_sft(cfg)
        # On photos without a differentiable recognizer (identity_loss.weight 0, checked), nothing scores x0_hat's faces.
        photos_without_recognizer = is_pipeline_folder(cfg.base) and cfg.identity_loss.recognizer == "cast"
        self.embedder = None if photos_without_recognizer else load_recognizer(cfg.identity_loss)
        self.ref_embedder = None
        if cfg.model.identity.reads_embeddings:
            self.ref_embedder = load_reference_embedder(cfg, self.embedder)
        super().__init__(cfg)
        # The recognizer scores x0_hat where the model runs; a face backend (no parameters) stays on the CPU.
        for embedder in (self.embedder, self.ref_embedder):
            if embedder is not None and next(embedder.parameters(), None) is not None:
                embedder.to(self.accelerator.device)
        cfg = self.cfg
        loss = cfg.identity_loss
        specs = (cfg.model.identity.gate.group, cfg.model.identity.gate.age) if loss.follow_gate else (loss.group, loss.age)
        self.loss_schedules = [schedule_function(s) for s in specs]
        held = SubjectScenes(cfg.diagnostics.manifests, progress=False, max_refs=cfg.model.identity.max_refs)
        self._check_heldout_size(held)  # before every training reference is embedded
        # in memory, every subject's reference is embedded once; streamed, each batch's are embedded as it is read
        self.ref_inputs, self.ref_targets = (None, None) if cfg.data.stream else self._reference_inputs(self.data)
        # lambda as the forward computed it (a sharded gate cannot be called outside the model's forward)
        self._gate_strength: dict[str, torch.Tensor] = {}
        self.accelerator.unwrap_model(self.model).identity.gate.register_forward_hook(
            lambda module, args, out: self._gate_strength.__setitem__("lambda", out.detach()))
        self.diagnostic = BindingDiagnostic(held, self._reference_inputs(held)[0], self.rep, self.text, self.img_ids,
                                            self.txt_ids, cfg.diagnostics, cfg.model.identity.max_refs, cfg.seed)

    def _check_heldout_size(self, held: SubjectScenes) -> None:
        """Refuse held-out scenes of another size than the training images now, not at the first diagnostic."""
        if held.size != (self.height, self.width):
            (h, w), folder = held.size, Path(self.cfg.data.manifests[0]).parent
            named = ", ".join(map(str, self.cfg.diagnostics.manifests))
            raise ConfigError(f"diagnostics.manifests: held-out scenes of {w}x{h} ({named}), but the training images "
                              f"(data.manifests) are {self.width}x{self.height}; give the held-out manifests of the "
                              f"training cast, e.g. [{folder / 'sft-group-heldout.jsonl'}, "
                              f"{folder / 'sft-age-heldout.jsonl'}]")

    def _load_data(self) -> SubjectScenes | StreamingScenes:
        progress = self.cfg.log.progress and self.accelerator.is_main_process
        if self.cfg.data.stream:
            return StreamingScenes(self.cfg.data.manifests, max_refs=self.cfg.model.identity.max_refs)
        return SubjectScenes(self.cfg.data.manifests, progress=progress, max_refs=self.cfg.model.identity.max_refs)

    def _build_model(self) -> IdGlowTransformer:
        model = IdGlowTransformer(self.cfg.model)
        if self.cfg.init:  # the run's weights, not zeros: step 0 is the init run's model (LoRA already stacked)
            start_identity_branch(model, sft_folder(self.cfg.init) / "final")
            adapter = run_adapter(self.cfg.init)
            if adapter is not None:
                apply_lora(model, *adapter, source=f"init: {self.cfg.init}")
        model.flux.requires_grad_(False)
        for name, param in model.flux.named_parameters():
            param.requires_grad_(is_lora_parameter(name))
        model.identity.requires_grad_(True)
        return model

    def _reference_inputs(self, data: SubjectScenes) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per subject of ``data``: what the identity encoder reads (frozen embeddings [R, E] of ``references``, or
        crops [R, 3, h, w] for ``conv``) and the identity loss's targets (the recognizer's embeddings [R, E'])."""
        return self._embed(data.ref_crops(torch.arange(len(data.refs))), data.ref_sources)

    def _embed(self, crops: torch.Tensor, sources: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the identity encoder reads of reference crops [M, 3, h, w] and the identity loss's targets [M, E']."""
        blur = self.cfg.identity_loss.blur
        targets = None if self.embedder is None else frozen_embeddings(self.embedder, gaussian_blur(crops, blur))
        if self.ref_embedder is None:
            return crops, targets
        if self.ref_embedder is self.embedder and blur == 0:
            return targets, targets
        return frozen_embeddings(self.ref_embedder, crops, sources=sources), targets

    def _subject_inputs(self, scenes: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The encoder inputs [M, ...] and loss targets [M, E'] of a batch's subjects (``scene_batch``'s dict)."""
        if "ids" in scenes and self.ref_inputs is not None:
            ids = scenes["ids"]
            return self.ref_inputs[ids], None if self.ref_targets is None else self.ref_targets[ids]
        return self._embed(scenes["crops"], scenes["sources"])

    def _loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, device = self.cfg, self.accelerator.device
        scenes = self.data.scene_batch(index)
        latents, prompts = self._batch(index, scenes)
        ref_inputs, ref_targets = self._subject_inputs(scenes)
        rows, slots = scenes["rows"], scenes["slots"]
        refs, mask = scatter_references(ref_inputs, rows, slots, len(index), cfg.model.identity.max_refs)
        task = scenes["tasks"].to(device)
        noisy, noise, sigma = self._noised(latents)
        states, pooled = self.text(prompts)
        with self.autocast():
            velocity = self.model(noisy, sigma, states, pooled, self.img_ids, self.txt_ids, task=task,
                                  refs=refs.to(device), ref_mask=mask.to(device))
        flow = flow_matching_loss(velocity, velocity_target(latents, noise), sigma, cfg.flow.weighting)
        lam = self._gate_strength.pop("lambda").float()
        if self.embedder is None:
            return {"loss": flow, "flow": flow, "lambda": lam, "sigma": sigma, "task": task}
        id_cfg = cfg.identity_loss
        weight = identity_loss_weight(sigma, task, self.loss_schedules, id_cfg.weight,
                                      annealing(self.step, id_cfg.anneal, id_cfg.anneal_steps))
        reference = ref_targets.to(device)
        # The second reference row: another scene's subject, what id_sim would be without identity-specific binding.
        references = torch.stack([reference, reference.roll(cfg.model.identity.max_refs, 0)])
        # the views' own random source: the noise and data order stay those of the same run without views
        jittered = id_cfg.view_shift > 0 or id_cfg.view_scale > 0
        jitter = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step) if jittered else None
        with torch.set_grad_enabled(bool((weight > 0).any())):
            images = self.rep.decode(latents_from_velocity(noisy, sigma, velocity.float()))
            sim, other_sim = subject_similarity(images, scenes["boxes"].to(device), rows.to(device), references,
                                                self.embedder, id_cfg.views, id_cfg.view_shift, id_cfg.view_scale,
                                                id_cfg.blur, jitter)
        identity = per_sample_mean(1.0 - sim, rows.to(device), len(index))
        other = per_sample_mean(other_sim.detach(), rows.to(device), len(index))
        return {"loss": flow + weight * identity, "flow": flow, "identity": identity.detach(),
                "id_sim": 1.0 - identity.detach(), "id_sim_other": other, "id_weight": weight, "lambda": lam,
                "sigma": sigma, "task": task}

    def _periodic(self, last: bool) -> dict:
        every = self.cfg.diagnostics.every
        if not self.accelerator.is_main_process or self.sharded or not ((every and self.step % every == 0) or last):
            return {}
        with self.autocast():
            result = self.diagnostic(self.accelerator.unwrap_model(self.model))
        with open_append_log(self.out / "diagnostics.jsonl") as f:
            f.write(json.dumps({"step": self.step, **result}) + "\n")
        return {k: v for k, v in result.items() if "_sigma_" not in k}

    def _saves(self, key: str) -> bool:
        return key.startswith("identity.") or is_lora_parameter(key)

    def _save_final(self, model: IdGlowTransformer, folder: Path, whole: dict[str, torch.Tensor] | None = None) -> None:
        """The identity branch (and LoRA) as safetensors + JSON; the backbone stays in ``base``."""
        save_identity_branch(model, folder, None if whole is None else strip_prefix(whole, "identity."))
        if model.config.lora.rank > 0:
            save_lora(model, folder, None if whole is None else strip_prefix(whole, "flux."))

    @torch.no_grad()
    def sample_grid(self, path: Path) -> Path:
        """Held-out scenes, one row each: reference crops | true scene | with references | without."""
        model = self.accelerator.unwrap_model(self.model).eval()
        with self.autocast():
            rows = self.diagnostic.sample_rows(model, self.cfg.log.num_samples, self.cfg.log.sample_steps, self.mu)
        model.train()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG"))
        return path
