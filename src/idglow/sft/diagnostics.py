"""The binding diagnostic of stage 1: does the model use its references yet?

On fixed held-out scenes, fixed noise and fixed sigmas, the flow-matching loss is measured with the
scenes' true references, with *shuffled* references (each subject gets the reference of a subject of
another scene; counts and positions unchanged) and with *none* (the identity branch off). A model
that ignores its references scores the same under all three; one that binds identity scores
``true < none < shuffled`` where identity is decided.
"""

from __future__ import annotations

import numpy as np
import torch

from idglow.cast.crops import reference_grid, to_uint8
from idglow.data.subjects import SubjectScenes
from idglow.faces.references import scatter_references
from idglow.flow import add_noise, flow_matching_loss, velocity_target
from idglow.generate.sampling import generate_images
from idglow.models import IdGlowTransformer

CONDITIONS = ("true", "shuffled", "none")


class BindingDiagnostic:
    """Held-out flow-matching loss under :data:`CONDITIONS` at each of ``cfg.sigmas``.

    Args:
        data: held-out scenes; ``ref_inputs`` [R, ...] the identity encoder's input per subject of ``data``.
        rep, text: the trainer's representation and text encoder; img_ids, txt_ids: position ids.
        cfg: a ``DiagnosticsConfig``; max_refs: the branch's N_max; seed: fixes the items and the noise.
    """

    def __init__(self, data: SubjectScenes, ref_inputs: torch.Tensor, rep, text, img_ids, txt_ids, cfg, max_refs: int,
                 seed: int):
        g = torch.Generator().manual_seed(seed + 7)
        self.index = torch.randperm(len(data), generator=g)[: cfg.items].sort().values
        self.data, self.rep, self.text, self.cfg, self.max_refs = data, rep, text, cfg, max_refs
        self.img_ids, self.txt_ids = img_ids, txt_ids
        self.device = device = img_ids.device  # the trainer's
        images, self.prompts = data.batch(self.index)
        self.latents = rep.encode(images.to(device)).to(device)
        self.task = data.tasks[self.index].to(device)
        self.ids, self.rows, self.slots = data.subjects(self.index)
        # A roll by max_refs over the flat subject list always lands in another scene (a scene has <= max_refs).
        self.refs = {"true": ref_inputs[self.ids].to(device), "shuffled": ref_inputs[self.ids.roll(max_refs)].to(device)}
        self.noise = torch.randn(len(cfg.sigmas), *self.latents.shape, generator=g).to(device)

    def _identity_args(self, condition: str) -> dict:
        if condition == "none":
            return {}
        refs, mask = scatter_references(self.refs[condition], self.rows, self.slots, len(self.index), self.max_refs)
        return {"refs": refs, "ref_mask": mask}

    @torch.no_grad()
    def __call__(self, model: IdGlowTransformer, batch: int = 32) -> dict[str, float]:
        """``heldout_<condition>`` (mean over sigmas), ``heldout_<condition>_sigma_<s>``, and the gaps
        ``binding_gap`` (shuffled - true) and ``reference_gain`` (none - true)."""
        was_training = model.training
        model.eval()
        states, pooled = self.text(self.prompts)
        result: dict[str, float] = {}
        for condition in CONDITIONS:
            kwargs = self._identity_args(condition)
            losses = []
            for k, sigma_value in enumerate(self.cfg.sigmas):
                sigma = torch.full((len(self.index),), float(sigma_value), device=self.device)
                noisy = add_noise(self.latents, self.noise[k], sigma)
                velocity = torch.cat([
                    model(noisy[i : i + batch], sigma[i : i + batch], states[i : i + batch], pooled[i : i + batch],
                          self.img_ids, self.txt_ids, task=self.task[i : i + batch],
                          **{key: v[i : i + batch] for key, v in kwargs.items()})
                    for i in range(0, len(self.index), batch)
                ])
                loss = float(flow_matching_loss(velocity, velocity_target(self.latents, self.noise[k]), sigma).mean())
                result[f"heldout_{condition}_sigma_{sigma_value:.2f}"] = loss
                losses.append(loss)
            result[f"heldout_{condition}"] = float(np.mean(losses))
        result["binding_gap"] = result["heldout_shuffled"] - result["heldout_true"]
        result["reference_gain"] = result["heldout_none"] - result["heldout_true"]
        model.train(was_training)
        return result

    @torch.no_grad()
    def sample_rows(self, model: IdGlowTransformer, num: int, steps: int, mu: float | None) -> list[np.ndarray]:
        """``num`` grid rows (uint8 [H, W_row, 3]): reference crops | true scene | sampled with references | without."""
        num = min(num, len(self.index))
        kwargs = self._identity_args("true")
        common = dict(seeds=[1234 + i for i in range(num)], num_steps=steps, mu=mu, task=self.task[:num])
        with_img = generate_images(model, self.rep, self.text, self.prompts[:num], refs=kwargs["refs"][:num],
                                   ref_mask=kwargs["ref_mask"][:num], **common)
        without_img = generate_images(model, self.rep, self.text, self.prompts[:num], **common)
        true = self.rep.decode(self.latents[:num]).clamp(-1, 1)
        crops = self.data.ref_crops(self.ids)
        rows = []
        for i in range(num):
            refs = reference_grid(crops[self.rows == i], true.shape[-2])
            rows.append(np.concatenate([refs, to_uint8(true[i]), to_uint8(with_img[i]), to_uint8(without_img[i])], axis=1))
        return rows
