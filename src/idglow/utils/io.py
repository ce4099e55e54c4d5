"""Weights on disk: safetensors with their JSON config in the metadata and beside the file.

Writes are atomic (temporary file in the same folder, then rename), so a killed process never
leaves a half-written file under the final name; append-only JSONL logs are read tolerating a torn
last line. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(path: Path, tensors: dict[str, torch.Tensor], config: dict) -> None:
    """Write ``tensors`` to ``path`` (.safetensors) and ``config`` to the metadata and to ``path``'s .json twin."""
    path = Path(path)
    text = json.dumps(config, indent=2, sort_keys=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda p: save_file(tensors, str(p), metadata={"config": text}))
    atomic_write(path.with_suffix(".json"), lambda p: p.write_text(text + "\n"))


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, config)`` from a file written by :func:`save_weights`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if "config" not in meta:
        raise ValueError(f"{path}: safetensors metadata has no 'config' entry")
    try:
        return tensors, json.loads(meta["config"])
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the 'config' metadata is not JSON ({err.msg})") from None


def read_append_log(path: str | Path) -> list[dict]:
    """Records of an append-only JSON Lines log (a cache, a resumable job's progress); a line that is not
    JSON, such as a last line torn by a kill mid-write, is skipped (its work is simply redone)."""
    records = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def open_append_log(path: str | Path):
    """Open an append-only JSON Lines log for appending, first cutting a torn last line (a kill mid-write) so
    the next record starts on a line of its own. Returns the open text file."""
    path = Path(path)
    if path.is_file():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)
    return open(path, "a")
