"""``IdGlowPipeline``: prompts + reference faces -> images, in diffusers' conventions.

It bundles what generation needs: the model (base backbone + identity adapter: the identity branch and any LoRA),
the representation (pixels or latents), the text encoder, the frozen face embedder that turns crops into the identity
branch's input (``identity.encoder: embedding``), and FLUX's resolution shift. Reference K/V are computed once per
image and reused at every step.

``pipe(prompt, id_images=..., ...)`` returns an :class:`IdGlowPipelineOutput` with ``.images`` (PIL by default);
``pipe.sample(...)`` is the tensor-level call the CLI, evaluation and trainers use. ``from_pretrained`` /
``save_pretrained`` read and write self-contained model folders (the layout of ``idglow train export``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import VaeImageProcessor
from diffusers.utils import BaseOutput

from idglow.conditioning.representation import build_representation
from idglow.conditioning.text import build_text_encoder
from idglow.faces.recognizer import load_reference_embedder
from idglow.faces.references import frozen_embeddings
from idglow.flow import flux_shift_mu
from idglow.generate import memory
from idglow.generate.controls import ScheduleOverride, identity_controls
from idglow.generate.id_images import init_image, reference_sets
from idglow.generate.sampling import GuidanceInterval, generate_images
from idglow.identity.branch import pad_references
from idglow.models import IdGlowTransformer
from idglow.models.lora import adapters_disabled
from idglow.runs.load import EXPORTED, is_exported_model, load_run, weights_fingerprint
from idglow.runs.sampler import SAMPLER, SamplerSettings, intervals_for, read_sampler, settings_for
from idglow.utils.precision import resolve_precision

OUTPUT_TYPES = ("pil", "np", "pt", "latent")


@dataclasses.dataclass
class IdGlowPipelineOutput(BaseOutput):
    """What :meth:`IdGlowPipeline.__call__` returns.

    Attributes:
        images: B * num_images_per_prompt images: PIL images (``output_type="pil"``), an array [B, H, W, 3] in [0, 1]
            (``"np"``), a tensor [B, 3, H, W] in [0, 1] (``"pt"``), or the packed latents [B, S, C] (``"latent"``).
    """

    images: list[PIL.Image.Image] | np.ndarray | torch.Tensor


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
        self._representations: dict[tuple[int, int], tuple] = {}
        self.rep, self.mu = self.representation(height, width)
        self.text = build_text_encoder(cfg.text, cfg.data.max_tokens, self.device, cfg.data.cache_dir)
        self.source: str | None = None  # the folder the pipeline was loaded from (save_pretrained copies its provenance)
        self.embedder = None
        self.weights: str | None = None  # the run's weights fingerprint (from_run), recorded in generation sidecars
        # per task, the sampler the model folder recommends (its sampler.json); {} = guidance 1 and the trained gate
        self.recommended: dict[str, SamplerSettings] = {}
        if cfg.model.identity.reads_embeddings:
            self.embedder = load_reference_embedder(cfg).to(self.device)

    @classmethod
    def from_run(cls, run: str | Path, height: int = 64, width: int = 128, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, precision: str | None = None, quantization_config=None) -> IdGlowPipeline:
        """The pipeline of a finished ``idglow train sft`` or ``train dpo`` run folder, on ``device`` in ``dtype``,
        sampling in ``precision`` (see the class); ``quantization_config``: see :meth:`from_pretrained`."""
        model, cfg = load_run(run, dtype, quantization_config=quantization_config)
        pipe = cls(_placed(model, device, dtype), cfg, height, width, _ref_size(cfg), device=device, precision=precision)
        pipe.weights, pipe.source = weights_fingerprint(run), str(run)
        pipe.recommended = read_sampler(run)
        return pipe

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, adapter: str | Path | None = None,
                        torch_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                        height: int = 64, width: int = 128, precision: str | None = None,
                        quantization_config=None) -> IdGlowPipeline:
        """A pipeline from local folders (nothing is downloaded).

        Args:
            pretrained_model_name_or_path: an IdGlow model folder (``assets/idglow``, one written by
                :meth:`save_pretrained` or ``idglow train export``), a finished SFT/DPO run folder, or, with
                ``adapter``, the base model the adapter was trained on (a diffusers FLUX.1 folder or a base model).
            adapter: an IdGlow adapter folder (an SFT or DPO run, or what :meth:`save_pretrained` wrote for a FLUX
                pipeline) to put on that base; its own record of the base is replaced by this path.
            torch_dtype, device: where and in what the weights live; height, width: the default output size;
                precision: sampling arithmetic (see the class).
            quantization_config: a diffusers quantization config for the base transformer, applied by diffusers as it
                loads (``TorchAoConfig(Int8WeightOnlyConfig())``; ``BitsAndBytesConfig(load_in_4bit=True,
                bnb_4bit_quant_type="nf4")`` on CUDA). The identity branch and the LoRA stay in ``torch_dtype``.
        """
        path = Path(pretrained_model_name_or_path)
        if adapter is None:
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path}: not an IdGlow model or run folder (no config.json); a FLUX folder "
                                        "needs adapter=<IdGlow adapter folder>")
            return cls.from_run(path, height, width, device=device, dtype=torch_dtype, precision=precision,
                                quantization_config=quantization_config)
        model, cfg = load_run(adapter, torch_dtype, base=path, quantization_config=quantization_config)
        pipe = cls(_placed(model, device, torch_dtype), cfg, height, width, _ref_size(cfg), device=device,
                   precision=precision)
        pipe.weights, pipe.source = weights_fingerprint(adapter), str(adapter)
        return pipe

    def save_pretrained(self, save_directory: str | Path) -> Path:
        """Write the pipeline's model as a folder :meth:`from_pretrained` (and ``--run``) accepts.

        A model on a cast base becomes one self-contained folder (base backbone unmerged, identity branch, LoRA, configs;
        :func:`idglow.runs.export.write_model_folder`). On a FLUX folder, only the adapter is written (the identity
        branch, LoRA and config, a few MB): load it with ``from_pretrained(<FLUX folder>, adapter=save_directory)``.
        Written beside ``save_directory`` and renamed into place; ``provenance.json`` names the source.
        """
        import shutil

        from idglow.conditioning.flux_folder import is_pipeline_folder
        from idglow.runs.export import replace_folder, write_model_folder

        out = Path(save_directory)
        tmp = out.with_name(out.name + ".tmp-save")
        shutil.rmtree(tmp, ignore_errors=True)
        provenance = {"saved_by": "IdGlowPipeline.save_pretrained", "source": self.source, "source_weights": self.weights}
        if self.source and (Path(self.source) / EXPORTED).is_file():
            provenance = {**json.loads((Path(self.source) / EXPORTED).read_text()), **provenance}
        adapter_only = is_pipeline_folder(self.cfg.base)
        base_config = None if adapter_only else json.loads((Path(self.cfg.base) / "train_config.json").read_text())
        write_model_folder(self.model, self.cfg, base_config, tmp)
        (tmp / ("adapter.json" if adapter_only else EXPORTED)).write_text(json.dumps(provenance, indent=2) + "\n")
        if self.source and (Path(self.source) / SAMPLER).is_file():  # same weights: the same sampler stays best
            shutil.copyfile(Path(self.source) / SAMPLER, tmp / SAMPLER)
        replace_folder(tmp, out)
        return out

    def enable_model_cpu_offload(self, device: torch.device | str = "cuda") -> None:
        """Keep the large parts in CPU memory, each moved to ``device`` only while it runs (diffusers' model CPU offload,
        through accelerate); see :mod:`idglow.generate.memory`."""
        memory.enable_model_cpu_offload(self, device)

    def enable_group_offload(self, onload_device: torch.device | str = "cuda", offload_device: torch.device | str = "cpu",
                             num_blocks_per_group: int = 1, use_stream: bool = False) -> None:
        """Stream the transformer's blocks to ``onload_device`` during each forward (diffusers' group offloading)."""
        memory.enable_group_offload(self, onload_device, offload_device, num_blocks_per_group, use_stream)

    def representation(self, height: int, width: int) -> tuple:
        """``(representation, mu)`` for images of ``height`` x ``width`` (built once per size)."""
        if (height, width) not in self._representations:
            rep = build_representation(self.cfg.representation, height, width).to(self.device)
            mu = flux_shift_mu(rep.tokens) if self.cfg.flow.shift == "resolution" else None
            self._representations[(height, width)] = (rep, mu)
        return self._representations[(height, width)]

    def reference_inputs(self, references: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample reference crops (B tensors [N_b, 3, h, w] in [-1, 1]) -> the identity encoder's padded inputs
        ``(refs [B, N, ...], ref_mask [B, N])``: frozen face embeddings for ``identity.encoder: embedding``
        (and ``embedding_map``), else crops."""
        crops = torch.cat(list(references)).to(self.device)
        inputs = frozen_embeddings(self.embedder, crops) if self.embedder is not None else crops
        return pad_references(inputs.split([len(r) for r in references]), self.cfg.model.identity.max_refs)

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[str],
        references: Sequence[torch.Tensor] | None = None,
        tasks: Sequence[str] | str = "group",
        steps: int = 20,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        id_guidance: float | Sequence[float] = 1.0,
        id_guidance_interval: GuidanceInterval = None,
        init_images: torch.Tensor | None = None,
        sigma_start: float = 1.0,
        height: int | None = None,
        width: int | None = None,
        on_step: Callable[[int, float, torch.Tensor], torch.Tensor | None] | None = None,
        decode: bool = True,
    ) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] (on the CPU): the tensor-level call behind ``__call__``, the CLI and evaluation.

        Args:
            prompts: B prompts.
            references: B tensors [N_b, 3, h, w] of face crops (None: text only, identity branch off).
            tasks: ``group``/``age`` per prompt, or one for all.
            steps: Euler steps.
            generator: one generator per prompt (each image then depends only on its own seed, not on what else
                is in the batch); a single generator draws every image's noise from it in turn; None: torch's
                default generator.
            id_guidance: identity guidance scale (1 = none; see :func:`idglow.generate.sampling.sample_packed`).
            id_guidance_interval: ``(sigma_lo, sigma_hi)`` (or one per prompt): guide only at those noise levels.
            init_images, sigma_start: image-to-image: start from these images [B, 3, H, W] in [-1, 1] noised to
                ``sigma_start`` < 1 (see :func:`idglow.generate.sampling.generate_images`).
            height, width: output size (default: the pipeline's).
            on_step, decode: see :func:`idglow.generate.sampling.generate_images` (``decode=False``: packed latents).
        """
        if references is not None and len(references) != len(prompts):
            raise ValueError(f"references: {len(references)} reference sets for {len(prompts)} prompts")
        if generator is None:
            generator = torch.default_generator
        if not isinstance(generator, Sequence):
            generator = [generator] * len(prompts)
        elif len(generator) != len(prompts):
            raise ValueError(f"generator: {len(generator)} generators for {len(prompts)} prompts")
        task = [tasks] * len(prompts) if isinstance(tasks, str) else list(tasks)
        memory.onload(self)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            refs, ref_mask = self.reference_inputs(references) if references is not None else (None, None)
            rep, mu = self.representation(height or self.height, width or self.width)
            images = generate_images(self.model, rep, self.text, prompts, generator, refs, ref_mask, task=task,
                                     num_steps=steps, mu=mu, id_guidance=id_guidance,
                                     id_guidance_interval=id_guidance_interval, precision=self.precision,
                                     init_images=init_images, sigma_start=sigma_start, on_step=on_step, decode=decode,
                                     device=self.device)
        return images.cpu()

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        id_images=None,
        task: str | Sequence[str] = "group",
        num_inference_steps: int = 20,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        id_scale: float = 1.0,
        id_schedule: ScheduleOverride = None,
        id_guidance: float | None = None,
        id_guidance_interval: tuple[float, float] | None = None,
        image=None,
        strength: float = 1.0,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> IdGlowPipelineOutput | tuple:
        """Generate images, diffusers-style.

        Args:
            prompt: one prompt or a list of B.
            id_images: the people to draw, in the prompt's order: for one prompt an image or a list of images (PIL,
                file paths, HxWx3 arrays, [3, h, w] tensors in [0, 1]); for B prompts a list of B such lists. None:
                the base model exactly (identity branch and LoRA both off), whatever earlier calls did.
            task: ``group`` (several people as they are) or ``age`` (adults drawn as children), per prompt or one.
            num_inference_steps: Euler steps; height, width: output size (default: the pipeline's; multiples of
                the patch size); num_images_per_prompt: images per prompt (each its own noise).
            generator: one per image (each image depends on its own seed only), or one for all, or None.
            id_scale: identity strength, multiplying the gate (0 = off, 1 = as trained, > 1 extrapolates).
            id_schedule: a gate schedule for this call only: a ``GateConfig``, ``{"group": {"kind": "constant"}}`` or
                ``["age.sigma_lo=0.4"]`` (see ``idglow generate --help``); ``{}``: the trained gate. None: the gate
                overrides the model folder recommends for the call's tasks (``self.recommended``, its ``sampler.json``).
            id_guidance: identity guidance scale (1 = none; > 1 costs a second forward per step). None: the
                recommended one for each prompt's task (1 when the folder recommends none; ``pipe.recommended = {}``
                makes guidance 1 and the trained gate the defaults).
            id_guidance_interval: ``(sigma_lo, sigma_hi)``: guide only at those noise levels. None: the recommended
                interval of each prompt's task when ``id_guidance`` is None too, else every step.
            image, strength: image-to-image: start from ``image`` (one for all prompts, or one per prompt) noised to
                sigma = ``strength`` (< 1); 1 = from noise.
            output_type: ``pil``, ``np``, ``pt`` (images in [0, 1]) or ``latent`` (packed latents [B, S, C]).
            return_dict: False returns the tuple ``(images,)``.
            callback_on_step_end: ``fn(pipe, step, sigma, {"latents": x}) -> dict`` after every step; a ``latents``
                entry in the returned dict replaces the latents (diffusers' convention).
        """
        prompts, tasks = _checked_call(prompt, task, num_images_per_prompt, output_type, callback_on_step_end_tensor_inputs)
        height, width = height or self.height, width or self.width
        refs = None
        if id_images is not None:
            refs = reference_sets(id_images, len(prompts), self.ref_size, self.cfg.model.identity.max_refs)
        init = init_image(image, len(prompts), height, width) if image is not None else None
        repeat = num_images_per_prompt

        def expand(items):
            return None if items is None else [x for x in items for _ in range(repeat)]

        on_step = None
        if callback_on_step_end is not None:
            def on_step(i: int, sigma: float, latents: torch.Tensor):
                returned = callback_on_step_end(self, i, sigma, {"latents": latents}) or {}
                return returned.get("latents")
        guidance, recommended_schedule = settings_for(self.recommended, tasks)
        if id_guidance is None:
            id_guidance = guidance[0] if len(set(guidance)) == 1 else expand(guidance)
            if id_guidance_interval is None:
                id_guidance_interval = expand(intervals_for(self.recommended, tasks))
        if id_schedule is None and recommended_schedule:
            id_schedule = recommended_schedule
        adapter_off = refs is None and self.model.config.lora.rank > 0
        with identity_controls(self.model, id_scale, id_schedule), (adapters_disabled(self.model.flux) if adapter_off else contextlib.nullcontext()):
            out = self.sample(expand(prompts), expand(refs), expand(tasks), steps=num_inference_steps, generator=generator,
                              id_guidance=id_guidance, id_guidance_interval=id_guidance_interval, init_images=None if init is None else init.repeat_interleave(repeat, 0),
                              sigma_start=strength, height=height, width=width, on_step=on_step, decode=output_type != "latent")
        if output_type != "latent":
            out = VaeImageProcessor(vae_scale_factor=1).postprocess(out, output_type=output_type)
        return IdGlowPipelineOutput(images=out) if return_dict else (out,)


def _checked_call(prompt, task, num_images_per_prompt: int, output_type: str,
                  callback_inputs: Sequence[str]) -> tuple[list[str], list[str]]:
    """The prompts and their tasks (one each) of a pipeline call, or a ValueError naming the argument at fault."""
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type: expected one of {', '.join(OUTPUT_TYPES)}, got {output_type!r}")
    if not set(callback_inputs) <= {"latents"}:
        raise ValueError(f"callback_on_step_end_tensor_inputs: only 'latents' is available, got {list(callback_inputs)}")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or num_images_per_prompt < 1:
        raise ValueError(f"prompt: at least one prompt and num_images_per_prompt >= 1 (got {len(prompts)}, {num_images_per_prompt})")
    tasks = [task] * len(prompts) if isinstance(task, str) else list(task)
    if len(tasks) != len(prompts) or any(t not in ("group", "age") for t in tasks):
        raise ValueError(f"task: expected group or age, one for all or one per prompt; got {task!r} for {len(prompts)} prompt(s)")
    return prompts, tasks


def _placed(model: IdGlowTransformer, device, dtype: torch.dtype) -> IdGlowTransformer:
    """``model`` on ``device`` in ``dtype``; a backbone diffusers quantized keeps its own dtypes (casting it is refused)."""
    if getattr(model.flux, "is_quantized", False):
        model.flux.to(device)
        for name, child in model.named_children():
            if name != "flux":
                child.to(device=device, dtype=dtype)
        return model
    return model.to(device=device, dtype=dtype)


def _ref_size(cfg) -> int:
    """Side of the reference crops the run's identity encoder reads: ArcFace 112 x 112; dlib and insightface detect the
    face in the reference (HOG needs ~80 px): 160; the cast's own crops: 32."""
    return {"dlib": 160, "insightface": 160}.get(cfg.references.backend, 112 if cfg.identity_loss.recognizer == "arcface" else 32)
