"""The distributed engine under the trainer: the accelerate engine a launch asked for, and what sharding changes.

``accelerate launch`` picks the engine (one process, DDP, FSDP, DeepSpeed) from its config; the trainer asks this module
for its :class:`~accelerate.Accelerator` and for the few things a *sharded* engine does differently:

- parameters are shards (FSDP2 ``DTensor``s): whole tensors are gathered collectively (:func:`full_tensors`);
- checkpoints go through accelerate's state API (``save_state`` / ``load_state``: sharded model and optimiser states,
  torch distributed checkpoint files), see :mod:`idglow.training.sharded_checkpoint`.

FSDP on CPU processes: accelerate 1.15 enables FSDP only beside GPU-type backends; on CPU processes (gloo) it silently
falls back to no engine, while PyTorch's FSDP2 (``fully_shard``) runs on gloo. When a launch asks for FSDP and the
processes are CPU ones, :func:`build_accelerator` sets accelerate's state to FSDP with the launch's own plugin (read from
the ``FSDP_*`` variables ``accelerate launch`` sets), so that ``prepare``, ``save_state`` and ``load_state`` take their
FSDP2 paths. That is what runs the FSDP tests here (2 CPU processes); on GPUs nothing is changed.
"""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import PartialState
from accelerate.utils import DistributedType

SHARDED = (DistributedType.FSDP, DistributedType.DEEPSPEED)


class EngineError(RuntimeError):
    """The launch cannot train as asked (processes that did not join one group, an unsupported engine on CPUs)."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").lower() in ("1", "true", "yes")


def build_accelerator(**kwargs) -> Accelerator:
    """An :class:`Accelerator` for this launch (``kwargs`` as accelerate takes them).

    Raises:
        EngineError: several processes were launched but did not join one process group (each would train alone and
            write the same run folder), or FSDP on CPU processes with ``fsdp_version: 1``, or DeepSpeed on CPUs.
    """
    # Without a GPU-type device, launched processes join a gloo group (accelerate's MULTI_CPU); without `cpu`, a launch
    # through the GPU launcher on a CPU machine would leave every process alone.
    accelerator = Accelerator(cpu=not torch.accelerator.is_available(), **kwargs)
    if _env_flag("ACCELERATE_USE_FSDP") and accelerator.distributed_type == DistributedType.MULTI_CPU:
        _enable_cpu_fsdp(accelerator)
    if accelerator.distributed_type == DistributedType.DEEPSPEED and not torch.accelerator.is_available():
        # measured with deepspeed 0.19.8 (its CPU accelerator, gloo): each process reports num_processes 1 to accelerate
        # while DeepSpeed counts the whole world, and the batch arithmetic of the two disagrees at prepare
        raise EngineError("DeepSpeed on CPU processes: accelerate 1.15 starts each as a world of one; train on CPU "
                          "processes with FSDP (configs/accelerate/fsdp-cpu.yaml), and ZeRO-2 on GPUs")
    if _env_flag("ACCELERATE_USE_DEEPSPEED") and accelerator.distributed_type != DistributedType.DEEPSPEED:
        raise EngineError("DeepSpeed was asked for, but accelerate did not start it (DeepSpeed needs GPUs here: "
                          "see README 'Sharded training'); use configs/accelerate/fsdp-cpu.yaml on CPU processes")
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes != launched:
        raise EngineError(f"{launched} processes were launched but accelerate joined {accelerator.num_processes}: each "
                          "would train alone on the same run folder. Launch with a config whose distributed_type matches "
                          "the machine (configs/accelerate/*.yaml)")
    return accelerator


def _enable_cpu_fsdp(accelerator: Accelerator) -> None:
    """Switch accelerate's state from MULTI_CPU to FSDP with the launch's plugin (see the module docstring)."""
    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables accelerate launch sets
    if plugin.fsdp_version != 2:
        raise EngineError("FSDP on CPU processes needs fsdp_version: 2 (FSDP1 needs CUDA); configs/accelerate/"
                          "fsdp-cpu.yaml has it")
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    state = accelerator.state
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP


def configure_deepspeed(deepspeed_config: dict, batch_size: int, grad_accum: int, grad_clip: float) -> None:
    """Complete a DeepSpeed plugin's ``deepspeed_config`` from the training config, before ``prepare``.

    The trainer prepares no dataloader, so DeepSpeed cannot infer its micro-batch: without
    ``train_micro_batch_size_per_gpu`` accelerate refuses to prepare (measured, accelerate 1.15). The accumulation
    and clipping DeepSpeed applies are its config's, not ours: a config that disagrees with the training config is
    refused instead of training with other numbers than the recipe says.

    Raises:
        EngineError: ``gradient_accumulation_steps`` or ``gradient_clipping`` differ from ``optim.grad_accum`` /
            ``optim.grad_clip``.
    """
    deepspeed_config["train_micro_batch_size_per_gpu"] = batch_size
    for key, ours, name in (("gradient_accumulation_steps", grad_accum, "optim.grad_accum"),
                            ("gradient_clipping", grad_clip, "optim.grad_clip")):
        theirs = deepspeed_config.get(key, "auto")
        if theirs != "auto" and float(theirs) != float(ours):
            raise EngineError(f"the DeepSpeed config's {key} is {theirs} but {name} is {ours}: make them equal "
                              f"(or set {key}: auto)")
        deepspeed_config[key] = ours


def is_sharded(accelerator: Accelerator) -> bool:
    """Whether parameters and optimiser states are split across processes (FSDP, DeepSpeed)."""
    return accelerator.distributed_type in SHARDED


def full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` whole on the CPU: a sharded ``DTensor`` is gathered (collective: every process calls it, in the same
    order), a plain tensor is returned as it is (detached, on the CPU)."""
    if hasattr(tensor, "full_tensor"):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu()


def full_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`full_tensor` of every value, in the dict's order (collective for sharded ones)."""
    return {name: full_tensor(t) for name, t in tensors.items()}


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` [the global shape of ``like``] split the way ``like`` is (a ``DTensor``: every process holds ``full``
    and keeps its own shard, no communication); a plain ``like`` gets ``full`` itself."""
    if not hasattr(like, "device_mesh"):
        return full.to(like.device, like.dtype)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements, src_data_rank=None)


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix``, with it removed (a submodule's part of a model's state dict)."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
