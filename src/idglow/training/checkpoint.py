"""Resumable checkpoints, written atomically.

A checkpoint is a folder ``checkpoints/step-XXXXXXX`` holding the trainable weights (and EMA) as
safetensors, the optimiser and LR-scheduler states, every RNG state, the data position and the
config. It is assembled under a temporary name and renamed into place; ``latest.json`` (itself
replaced atomically) names the newest complete one. A process killed at any moment leaves either
the previous checkpoint or the new one, never a half-written one under a final name.

Optimiser and scheduler states are saved with ``torch.save`` and read back with
``torch.load(weights_only=True)``: tensors and plain containers only, nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from idglow.utils.io import atomic_write

LATEST = "latest.json"


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """This process's RNG states (torch's CPU and CUDA ones) and ``generator``'s, as tensors to save."""
    tensors = {"torch_cpu": torch.get_rng_state(), "train_generator": generator.get_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = state
    return tensors


def set_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Restore what :func:`rng_tensors` saved: torch's RNG states and ``generator``'s."""
    torch.set_rng_state(tensors["torch_cpu"])
    generator.set_state(tensors["train_generator"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
        if states:
            torch.cuda.set_rng_state_all(states)


def save_checkpoint(
    folder: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler,
    generator: torch.Generator,
    state: dict,
    ema: dict[str, torch.Tensor] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``folder`` and point ``latest.json`` at it; keep the newest ``keep``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:07d}"
    tmp = folder / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().cpu() for k, v in trainable.items()}, str(tmp / "model.safetensors"))
    if ema is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    save_file(rng_tensors(generator), str(tmp / "rng.safetensors"))
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=2) + "\n")
    return publish(folder, tmp, final, step, keep)


def publish(folder: Path, tmp: Path, final: Path, step: int, keep: int) -> Path:
    """Rename the complete checkpoint ``tmp`` to ``final``, point ``latest.json`` at it and keep the newest ``keep``."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    atomic_write(folder / LATEST, lambda p: p.write_text(json.dumps({"checkpoint": final.name, "step": step}) + "\n"))
    for old in sorted(folder.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint under ``folder`` (stale temporary folders are removed), or None."""
    folder = Path(folder)
    for stale in folder.glob(".tmp-step-*"):
        shutil.rmtree(stale, ignore_errors=True)
    pointer = folder / LATEST
    if not pointer.is_file():
        return None
    path = folder / json.loads(pointer.read_text())["checkpoint"]
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is incomplete or missing")
    return path


class CheckpointError(ValueError):
    """A checkpoint cannot be read (truncated, foreign or from another configuration); the message names it."""


def load_checkpoint(path: Path, optimizer: torch.optim.Optimizer, scheduler, generator: torch.Generator) -> tuple[dict, dict, dict | None]:
    """Restore optimiser, scheduler and RNG states in place; return ``(trainable weights, state, ema)``.

    Raises:
        CheckpointError: a part is missing, truncated, not what it should be, or does not fit the optimizer.
    """
    path = Path(path)
    try:
        # read onto the CPU: a run checkpointed on a GPU resumes anywhere (the optimizer moves its state to the params)
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True, map_location="cpu"))
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True, map_location="cpu"))
        set_rng(load_file(str(path / "rng.safetensors")), generator)
        ema = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").is_file() else None
        return load_file(str(path / "model.safetensors")), json.loads((path / "state.json").read_text()), ema
    # torch's weights-only unpickler meets foreign bytes with assorted errors (IndexError, TypeError, ...): any failure
    # to read a part means the checkpoint cannot be resumed from
    except Exception as err:  # noqa: BLE001
        why = ("a file that is not plain tensors (refused: nothing is unpickled)" if isinstance(err, pickle.UnpicklingError)
               else f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}")
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({why}); move it aside to resume from an "
                              "earlier one, or start a new run folder") from None
