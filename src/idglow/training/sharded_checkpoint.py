"""Checkpoints of sharded runs (FSDP, DeepSpeed), written through accelerate's state API.

A checkpoint is the same folder as a one-process run's (``checkpoints/step-XXXXXXX``, ``latest.json`` naming the newest),
holding what ``Accelerator.save_state`` writes (each process its shard of the model and optimiser states as torch
distributed-checkpoint files, the LR scheduler, accelerate's per-process RNG states) and the trainer's own parts:
``rng-<process>.safetensors`` (each process's training generator), ``ema.safetensors`` (whole tensors, gathered) and
``state.json`` (step, data position, config, number of processes).

Atomic like :mod:`idglow.training.checkpoint`: every process writes under ``.tmp-step-XXXXXXX``; after a barrier the
main process renames it into place and moves ``latest.json``. A run killed while writing leaves the previous checkpoint.

Nothing is unpickled freely: tensor files are read by torch's weights-only loader (accelerate's default), and the
distributed checkpoint's ``.metadata`` index — a pickle written by torch — is first read here by an unpickler that admits
only torch's checkpoint-metadata classes (:func:`check_metadata`); anything else refuses the checkpoint.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from idglow.training.checkpoint import CheckpointError, publish, rng_tensors, set_rng

# What torch's distributed-checkpoint metadata pickles refer to (torch 2.13): its own dataclasses, sizes, dtypes, layouts.
_METADATA_MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem",
                     "torch.distributed.checkpoint.planner")
_METADATA_GLOBALS = {("torch", "Size"), ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"),
                     ("pathlib", "WindowsPath"), ("collections", "OrderedDict")}


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        value = super().find_class(module, name) if (module in _METADATA_MODULES or (module, name) in _METADATA_GLOBALS
                                                     or module == "torch") else None
        if value is None or (module == "torch" and name != "Size" and not isinstance(value, torch.dtype)):
            raise pickle.UnpicklingError(f"{module}.{name} is not part of torch's checkpoint metadata")
        return value


def check_metadata(path: Path) -> None:
    """Read every distributed-checkpoint ``.metadata`` under ``path`` with the restricted unpickler.

    Raises:
        CheckpointError: one refers to anything but torch's checkpoint metadata, or cannot be read.
    """
    for meta in sorted(Path(path).rglob(".metadata")):
        try:
            _MetadataUnpickler(io.BytesIO(meta.read_bytes())).load()
        except Exception as err:  # noqa: BLE001 - any failure to read the index means the checkpoint cannot be used
            raise CheckpointError(f"{meta}: not a torch distributed-checkpoint index ({type(err).__name__}: {err}); "
                                  "refused, nothing was loaded") from None


def save_sharded_checkpoint(accelerator: Accelerator, folder: Path, step: int, generator: torch.Generator, state: dict,
                            ema: dict[str, torch.Tensor] | None = None, keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``folder`` from every process (collective) and point ``latest.json`` at it.

    ``ema``: whole tensors (already gathered), written by the main process; ``state``: JSON, likewise.
    """
    folder = Path(folder)
    final = folder / f"step-{step:07d}"
    tmp = folder / f".tmp-{final.name}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    save_file(rng_tensors(generator), str(tmp / f"rng-{accelerator.process_index}.safetensors"))
    if accelerator.is_main_process:
        if ema is not None:
            save_file({k: v.contiguous() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
        record = {"step": step, "processes": accelerator.num_processes, "engine": str(accelerator.distributed_type), **state}
        (tmp / "state.json").write_text(json.dumps(record, indent=2) + "\n")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish(folder, tmp, final, step, keep)
    accelerator.wait_for_everyone()
    return final


def load_sharded_checkpoint(accelerator: Accelerator, path: Path, generator: torch.Generator) -> tuple[dict, dict | None]:
    """Restore model, optimiser, scheduler and RNG states of every process from ``path`` (collective); return
    ``(state, ema)`` (``ema`` whole tensors, or None).

    Raises:
        CheckpointError: written by a one-process or DDP run, by another number of processes, or a part is missing,
            foreign or truncated.
    """
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    if "processes" not in state:
        raise CheckpointError(f"{path}: written by a run without sharding (one process or DDP); a sharded run cannot "
                              "resume from it: launch it the way it was trained, or start a new run folder")
    if state["processes"] != accelerator.num_processes:
        raise CheckpointError(f"{path}: written by {state['processes']} processes, resumed with "
                              f"{accelerator.num_processes}: the data order depends on it; launch with "
                              f"--num_processes {state['processes']}")
    check_metadata(path)
    try:
        accelerator.load_state(str(path))
        set_rng(load_file(str(path / f"rng-{accelerator.process_index}.safetensors")), generator)
        ema = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").is_file() else None
    except Exception as err:  # noqa: BLE001 - as in checkpoint.load_checkpoint: any unreadable part refuses the resume
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({type(err).__name__}: "
                              f"{(str(err).splitlines() or [''])[0][:200]}); move it aside to resume from an earlier one, "
                              "or start a new run folder") from None
    return state, ema


def written_by_sharded_run(path: Path) -> bool:
    """Whether the checkpoint at ``path`` was written by :func:`save_sharded_checkpoint`."""
    try:
        return "processes" in json.loads((Path(path) / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
