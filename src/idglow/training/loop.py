"""The trainer: an accelerate loop over captioned images with the flow-matching objective.

One CPU process here; the same code under ``accelerate launch`` on many GPUs (each process takes its
own slice of every global batch). Resumable: re-running the same command continues from the newest
checkpoint in ``out/checkpoints`` and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import torch
from accelerate import DistributedType
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from idglow.conditioning.cache import TensorCache
from idglow.conditioning.precompute import encode_batch_latents, encode_latents
from idglow.conditioning.representation import build_representation
from idglow.conditioning.text import build_text_encoder
from idglow.data.images import EpochOrder
from idglow.flow import add_noise, flux_shift_mu, sample_sigmas
from idglow.models import IdGlowTransformer
from idglow.models.packing import text_ids
from idglow.recipes.train import TrainConfig
from idglow.runs.adopt import inherit
from idglow.training.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from idglow.training.engine import EngineError, build_accelerator, configure_deepspeed, full_tensors, is_sharded, shard_like
from idglow.training.sharded_checkpoint import load_sharded_checkpoint, save_sharded_checkpoint, written_by_sharded_run
from idglow.training.memory import apply_memory_options, make_optimizer
from idglow.utils.config import ConfigError, differences, to_dict
from idglow.utils.defaults import TASKS
from idglow.utils.io import atomic_write, open_append_log, read_append_log
from idglow.utils.precision import fp32_attention

SIGMA_BUCKETS = 10
# What may change when a run is resumed: how long it trains, how it logs, what its held-out diagnostic reads (it scores
# the model without training it), where its folder lives (a run copied or moved elsewhere resumes there), and the
# permission itself.
RESUMABLE_CHANGES = ("optim.steps:", "optim.max_minutes:", "log.", "diagnostics.", "out:", "resume_changed:")


class NonFiniteLossError(ValueError):
    """A training step's loss is NaN or infinite: the step is not applied and nothing more is saved."""


class TermStats:
    """Running sums of per-sample loss terms between two log lines.

    Every term's mean is logged; ``flow`` also by sigma bucket (``loss_sigma_0.3`` = flow loss of
    samples with sigma in [0.3, 0.4)), and terms named in ``BUCKETED`` likewise; terms named in
    ``PER_TASK`` also by task (``lambda_group``...) when the terms carry ``task``.
    """

    BUCKETED = {"flow": "loss_sigma", "id_sim": "id_sim_sigma"}
    PER_TASK = ("lambda", "id_weight", "id_sim")

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.images, self.grad_norm = 0, 0.0

    def _add(self, key: str, slot: torch.Tensor, values: torch.Tensor, slots: int) -> None:
        self.sums.setdefault(key, torch.zeros(slots)).index_add_(0, slot, values)
        self.counts.setdefault(key, torch.zeros(slots)).index_add_(0, slot, torch.ones_like(values))

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        """Accumulate one micro-batch of terms (each [B]; ``sigma`` and ``task`` are keys, not logged)."""
        terms = {k: v.detach().float().cpu() for k, v in terms.items()}
        bucket = (terms["sigma"] * SIGMA_BUCKETS).long().clamp(max=SIGMA_BUCKETS - 1)
        zero = torch.zeros_like(bucket)
        for name, values in terms.items():
            if name in ("sigma", "task"):
                continue
            self._add(name, zero, values, 1)
            if name in self.BUCKETED:
                self._add(self.BUCKETED[name], bucket, values, SIGMA_BUCKETS)
            if name in self.PER_TASK and "task" in terms:
                self._add(f"{name}_by_task", terms["task"].long(), values, len(TASKS))
        self.images += len(terms["sigma"])

    def summary(self) -> dict[str, float]:
        """Means: one entry per term, per non-empty sigma bucket and per task seen."""
        out = {}
        for key, total in self.sums.items():
            count = self.counts[key]
            for i in range(len(total)):
                if count[i] == 0:
                    continue
                mean = float(total[i] / count[i])
                if key.endswith("_by_task"):
                    out[f"{key[: -len('_by_task')]}_{TASKS[i]}"] = mean
                elif key in self.BUCKETED.values():
                    out[f"{key}_{i / SIGMA_BUCKETS:.1f}"] = mean
                else:
                    out[key] = mean
        return out



class Trainer:
    """The training engine every stage shares: accelerate, optimizer and schedule, EMA, checkpoints and resume,
    logging (every loss term, by sigma bucket and task, throughput), periodic work and sample grids.

    A stage subclasses it and defines its data, model, loss and final weights (the hooks below); see
    :class:`idglow.base.trainer.BaseTrainer`, :class:`idglow.sft.trainer.SFTTrainer` and
    :class:`idglow.dpo.trainer.DPOTrainer`. The config given is never changed: ``self.cfg`` is the resolved copy.

    Under a sharded engine (FSDP; ``idglow.training.engine``) checkpoints go through accelerate's state API, final
    weights and EMA are gathered whole, and the periodic diagnostics and sample grids are skipped (they would run the
    sharded model on one process): evaluate the run after training (``idglow sft-eval``, ``idglow eval``).
    """

    #: whether this stage may train under a sharded engine (the stage's final weights can be saved from gathered ones)
    SHARDABLE = True

    def __init__(self, cfg: TrainConfig):
        cfg.validate()
        self.cfg, self.out = cfg, Path(cfg.out)
        log_with = ["tensorboard"] if cfg.log.tensorboard else None
        self.accelerator = build_accelerator(gradient_accumulation_steps=cfg.optim.grad_accum,
                                             mixed_precision=cfg.optim.mixed_precision, log_with=log_with,
                                             project_dir=str(self.out))
        self.sharded = is_sharded(self.accelerator)
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            configure_deepspeed(self.accelerator.state.deepspeed_plugin.deepspeed_config, cfg.optim.batch_size,
                                cfg.optim.grad_accum, cfg.optim.grad_clip)
        if self.sharded and not self.SHARDABLE:
            raise EngineError(f"{type(self).__name__}: this stage does not train under {self.accelerator.distributed_type} "
                              "(launch it with one process or DDP: configs/accelerate/ddp.yaml)")
        torch.manual_seed(cfg.seed)
        self.data = self._load_data()
        self.height, self.width = self.data.size
        self.rep = build_representation(cfg.representation, self.height, self.width)
        if not cfg.representation.offload:
            self.rep.to(self.accelerator.device)
        latents, stream = cfg.representation.kind == "latents", cfg.data.stream
        self.cached_tokens = self._encode_dataset() if latents and not stream else None
        # streamed: latents are encoded per batch, through the disk cache when there is one
        self.latent_cache = TensorCache(cfg.data.cache_dir, "latents") if latents and stream and cfg.data.cache_dir else None
        self.text = build_text_encoder(cfg.text, cfg.data.max_tokens, self.accelerator.device, cfg.data.cache_dir,
                                       bounded=stream)
        derived = {"model.in_channels": self.rep.channels}
        if cfg.text.kind == "minilm":
            derived["model.text_dim"] = self.text.dim
        self.cfg = cfg = inherit(cfg, derived, "the representation and text encoder")
        self.model = self._build_model()
        apply_memory_options(self.model, cfg.optim, self.accelerator.device)
        self.names = [n for n, q in self.model.named_parameters() if q.requires_grad]
        optimizer = make_optimizer(self._param_groups(), cfg.optim)
        scheduler = get_scheduler(cfg.optim.schedule if cfg.optim.schedule != "constant" else "constant_with_warmup",
                                  optimizer, num_warmup_steps=cfg.optim.warmup_steps, num_training_steps=cfg.optim.steps)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(self.model, optimizer, scheduler)
        # after prepare: a sharded engine has replaced the parameters by its shards, which the EMA must follow
        self.ema = EMAModel(self._params(), decay=cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
        self.order = EpochOrder(len(self.data), cfg.optim.batch_size, cfg.seed,
                                self.accelerator.process_index, self.accelerator.num_processes)
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)
        self.tokens = self.rep.tokens
        self.mu = flux_shift_mu(self.tokens) if cfg.flow.shift == "resolution" else None
        self.img_ids = self.rep.image_ids(self.accelerator.device)
        self.txt_ids = text_ids(cfg.data.max_tokens, self.accelerator.device)
        self.step, self.elapsed_before = 0, 0.0
        self._process_start = time.perf_counter()
        self._resume()
        if self.sharded:
            self.accelerator.print(f"{self.accelerator.distributed_type} across {self.accelerator.num_processes} processes: "
                                   "periodic diagnostics and sample grids are off; evaluate the run after training")

    def _param_groups(self) -> list[dict]:
        """Trainable parameters for AdamW: LoRA weights get ``optim.lora_lr`` when it is set."""
        trained = [q for q in self.model.parameters() if q.requires_grad]
        lora = {id(q) for q in self.model.trainable_parameter_groups()["lora"]}
        if self.cfg.optim.lora_lr is None or not lora & {id(q) for q in trained}:
            return [{"params": trained}]
        rest, adapters = [q for q in trained if id(q) not in lora], [q for q in trained if id(q) in lora]
        return [g for g in ({"params": rest}, {"params": adapters, "lr": self.cfg.optim.lora_lr}) if g["params"]]

    # What a stage defines (base/, sft/, dpo/): its data, its model with what it trains, its loss, its final
    # weights and its sample grid.
    def _load_data(self):
        """The training set: ``len``, ``size`` (H, W) and ``batch(index)``."""
        raise NotImplementedError

    def _build_model(self) -> IdGlowTransformer:
        """The model with ``requires_grad`` set on what this stage trains."""
        raise NotImplementedError

    def _loss(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample terms [B] of dataset items ``index``: ``loss`` (optimised), ``sigma``, and what is logged."""
        raise NotImplementedError

    def _save_final(self, model: IdGlowTransformer, folder: Path, whole: dict[str, torch.Tensor] | None = None) -> None:
        """The stage's final weights under ``folder``; ``whole``: the model state entries :meth:`_saves` names, gathered
        whole (sharded engines), or None (read them from ``model``)."""
        raise NotImplementedError

    def sample_grid(self, path: Path) -> Path:
        """A PNG of samples from the current weights at ``path``."""
        raise NotImplementedError

    def _encode_dataset(self) -> torch.Tensor:
        """Every training image's latent tokens, encoded once (the autoencoder is frozen); with ``data.cache_dir``,
        read from and written to the disk cache, so a later run encodes nothing again."""
        return encode_latents(self.data, self.rep, self.cfg.data.cache_dir, self.cfg.log.progress)

    def _batch(self, index: torch.Tensor, scenes: dict | None = None) -> tuple[torch.Tensor, list[str]]:
        """Clean tokens [B, S, C] and prompts of dataset items ``index`` (``scenes``: their images and prompts, when
        the caller has read them already)."""
        images, prompts = (scenes["images"], scenes["prompts"]) if scenes is not None else self.data.batch(index)
        if self.cached_tokens is not None:
            tokens = self.cached_tokens[index]
        elif self.latent_cache is not None:
            keys = ([f"{self.rep.name}|{i}" for i in scenes["identities"]] if scenes is not None and "identities" in scenes
                    else self.data.cache_keys(self.rep.name, index))  # a batch already read is not read again to hash it
            tokens = encode_batch_latents(images, keys, self.rep, self.latent_cache)
        else:
            tokens = self.rep.encode(images)
        return tokens.to(self.accelerator.device), prompts

    def elapsed(self) -> float:
        """Wall-clock seconds of training so far, over every process run of this folder (resumes included)."""
        return self.elapsed_before + time.perf_counter() - self._process_start

    def _params(self) -> list[torch.nn.Parameter]:
        """The trained parameters of the unwrapped model, in ``self.names`` order (the EMA's order)."""
        return list(self._trainable().values())

    def _trainable(self) -> dict[str, torch.Tensor]:
        named = dict(self.accelerator.unwrap_model(self.model).named_parameters())
        return {n: named[n] for n in self.names}

    def _resume(self) -> None:
        path = latest_checkpoint(self.out / "checkpoints")
        if path is None:  # a run killed before its first checkpoint starts again: its log lines would be doubled
            self._truncate_logs()
            return
        self._check_resumed_config(path)
        if self.sharded:
            state, ema = load_sharded_checkpoint(self.accelerator, path, self.generator)
            self._restore_ema(ema, state)
        elif written_by_sharded_run(path):
            raise CheckpointError(f"{path}: written by a sharded run; resume it under the engine it was trained with "
                                  "(the same accelerate launch config)")
        else:
            state = self._restore_unsharded(path)
        self.order.load_state_dict(state["data"])
        self.step = state["step"]
        self._truncate_logs()
        self.elapsed_before = state.get("elapsed_seconds", 0.0)
        self.accelerator.print(f"resumed from {path} at step {self.step}")

    def _restore_unsharded(self, path: Path) -> dict:
        """Load a one-process / DDP checkpoint into the model, optimizer, scheduler, RNG and EMA; return its state."""
        weights, state, ema = load_checkpoint(path, self.optimizer, self.scheduler, self.generator)
        trainable = self._trainable()
        unfit = [n for n, q in trainable.items() if n not in weights or weights[n].shape != q.shape]
        if unfit:
            raise CheckpointError(f"{path}: its weights do not fit this model ({unfit[0]}, {len(unfit)} in all): written "
                                  "by another configuration; resume with the run's own config or use a new run folder")
        with torch.no_grad():
            for name, tensor in trainable.items():
                tensor.copy_(weights[name])
        self._restore_ema(ema, state)
        return state

    def _restore_ema(self, ema: dict[str, torch.Tensor] | None, state: dict) -> None:
        """Put saved EMA tensors (whole) into the EMA, split like the parameters they follow."""
        if self.ema is not None and ema is not None:
            self.ema.shadow_params = [shard_like(ema[n], p) for n, p in zip(self.names, self._params())]
            self.ema.optimization_step = state["ema_step"]

    def _check_resumed_config(self, path: Path) -> None:
        """Refuse to continue a run with another config than it was trained with (unless ``resume_changed``)."""
        try:
            saved = json.loads((path / "state.json").read_text()).get("config", {})
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path}: unreadable state.json ({err}); move the checkpoint aside") from None
        defaults = to_dict(type(self.cfg)())  # keys added to the config since the run began mean their defaults
        changed = [d for d in differences(saved, to_dict(self.cfg), defaults=defaults) if not d.startswith(RESUMABLE_CHANGES)]
        if changed and not self.cfg.resume_changed:
            raise ConfigError(f"{self.out}: resuming with a config that differs from the one this run was trained with:"
                              "\n  " + "\n  ".join(changed) + "\nrestore those values, use a new `out` folder, or set "
                              "resume_changed: true to continue anyway")
        if changed:
            self.accelerator.print("resuming with a changed config:\n  " + "\n  ".join(changed))

    def _truncate_logs(self) -> None:
        """Drop log lines written after the checkpoint being resumed (they will be written again)."""
        if not self.accelerator.is_main_process:
            return
        for name in ("log.jsonl", "diagnostics.jsonl"):
            path = self.out / name
            if path.is_file():
                kept = [json.dumps(r) for r in read_append_log(path) if r.get("step", 0) <= self.step]  # torn line: dropped
                atomic_write(path, lambda p, kept=kept: p.write_text("".join(f"{line}\n" for line in kept)))

    def _checkpoint(self) -> None:
        ema = dict(zip(self.names, self.ema.shadow_params)) if self.ema is not None else None
        state = {"data": self.order.state_dict(), "ema_step": self.ema.optimization_step if self.ema else 0,
                 "elapsed_seconds": self.elapsed(), "config": to_dict(self.cfg)}
        if self.sharded:
            save_sharded_checkpoint(self.accelerator, self.out / "checkpoints", self.step, self.generator, state,
                                    full_tensors(ema) if ema is not None else None, keep=self.cfg.log.keep_checkpoints)
            return
        if not self.accelerator.is_main_process:
            return
        save_checkpoint(self.out / "checkpoints", self.step, self._trainable(), self.optimizer, self.scheduler,
                        self.generator, state, ema, keep=self.cfg.log.keep_checkpoints)

    def autocast(self):
        """The forward passes' precision: accelerate's autocast (``optim.mixed_precision``), with attention kept in
        fp32 inside it when ``optim.attention_fp32`` (the backward follows the forward's dtypes)."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.accelerator.autocast())
        if self.cfg.optim.attention_fp32:
            stack.enter_context(fp32_attention())
        return stack

    def _noised(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_sigma, noise, sigma [B])`` for clean tokens ``latents``, from the trainer's generator."""
        f = self.cfg.flow
        noise = torch.randn(latents.shape, generator=self.generator).to(latents.device)
        sigma = sample_sigmas(len(latents), f.sampler, logit_mean=f.logit_mean, logit_std=f.logit_std,
                              mode_scale=f.mode_scale, mu=self.mu, generator=self.generator).to(latents.device)
        return add_noise(latents, noise, sigma), noise, sigma

    def _train_step(self, stats: TermStats) -> None:
        for _ in range(self.cfg.optim.grad_accum):
            with self.accelerator.accumulate(self.model):
                terms = self._loss(self.order.next())
                loss = terms["loss"].mean()
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"step {self.step + 1}: the loss is {float(loss.detach())}; stopped before updating the weights. The "
                        f"newest checkpoint in {self.out / 'checkpoints'} holds the last good weights; check the data "
                        "(pair weights and margins, boxes, images) and optim.lr")
                self.accelerator.backward(loss)
                if self.accelerator.sync_gradients and self.cfg.optim.grad_clip > 0:
                    stats.grad_norm = float(self.accelerator.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip))
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            stats.add(terms)
        if self.ema is not None:
            self.ema.step(self._params())
        self.step += 1

    def _log(self, stats: TermStats, seconds: float, extra: dict | None = None) -> dict:
        record = {
            "step": self.step,
            **stats.summary(),
            "lr": self.scheduler.get_last_lr()[0],
            "images_per_second": stats.images * self.accelerator.num_processes / max(seconds, 1e-9),
            "grad_norm": stats.grad_norm,
            "elapsed_seconds": self.elapsed(),
            **(extra or {}),
        }
        if self.accelerator.is_main_process:
            with open_append_log(self.out / "log.jsonl") as f:
                f.write(json.dumps(record) + "\n")
        self.accelerator.log({k: v for k, v in record.items() if k != "step"}, step=self.step)
        return record

    def run(self) -> dict:
        """Train to ``optim.steps``; returns the last log record."""
        cfg = self.cfg
        if self.accelerator.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write(self.out / "config.json", lambda p: p.write_text(json.dumps(to_dict(cfg), indent=2) + "\n"))
        self.accelerator.init_trackers("idglow", config={"seed": cfg.seed, "steps": cfg.optim.steps})
        self.model.train()
        bar = tqdm(total=cfg.optim.steps, initial=self.step, desc="train", disable=not cfg.log.progress)
        stats, start, record = TermStats(), time.perf_counter(), {}
        deadline = time.perf_counter() + 60 * cfg.optim.max_minutes if cfg.optim.max_minutes > 0 else float("inf")
        saved = self.step
        while self.step < cfg.optim.steps and time.perf_counter() < deadline:
            self._train_step(stats)
            bar.update(1)
            last = self.step == cfg.optim.steps or time.perf_counter() >= deadline
            extra = self._periodic(last)
            if self.step % cfg.log.log_every == 0 or last or extra:
                record = self._log(stats, time.perf_counter() - start, extra)
                bar.set_postfix(loss=f"{record['loss']:.4f}", ips=f"{record['images_per_second']:.1f}")
                stats, start = TermStats(), time.perf_counter()
            if self.step % cfg.log.checkpoint_every == 0 or last:
                self._checkpoint()
                saved = self.step
            if (cfg.log.sample_every and self.step % cfg.log.sample_every == 0 and self.accelerator.is_main_process
                    and not self.sharded):
                self.sample_grid(self.out / "samples" / f"step-{self.step:07d}.png")
        if saved != self.step:  # periodic work (diagnostics, samples) ran past the deadline after `last` was decided
            record = self._log(stats, time.perf_counter() - start) if stats.images else record
            self._checkpoint()
        bar.close()
        if not record and (self.out / "log.jsonl").is_file():  # resumed at its last step: report the run's last record
            record = (read_append_log(self.out / "log.jsonl") or [{}])[-1]
        self._finish()
        self.accelerator.end_training()
        return record

    def _periodic(self, last: bool) -> dict:
        """Extra log entries due at this step (none for the base model; SFT adds its diagnostics)."""
        return {}

    def _finish(self) -> None:
        """Final weights (EMA when on) and a last sample grid (not under a sharded engine)."""
        model = self.accelerator.unwrap_model(self.model)
        if self.ema is not None:
            self.ema.store(self._params())
            self.ema.copy_to(self._params())
        whole = None
        if self.sharded:  # every process takes part in gathering what the stage saves
            whole = full_tensors({k: v for k, v in model.state_dict().items() if self._saves(k)})
        if self.accelerator.is_main_process:
            self._save_final(model, self.out / "final", whole)
        if self.ema is not None:
            self.ema.restore(self._params())
        if self.accelerator.is_main_process and not self.sharded:
            self.sample_grid(self.out / "samples" / "final.png")
        self.accelerator.wait_for_everyone()

    def _saves(self, key: str) -> bool:
        """Whether the model state entry ``key`` is among the stage's final weights (what a sharded run gathers)."""
        return True
