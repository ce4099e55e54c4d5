"""Arithmetic precision of sampling and training: where bf16 is fast, and the contexts that apply it.

On a CPU, bf16 matmuls are fast only with hardware support (AVX512-BF16 or AMX): 3.5-4.4x fp32 on this
project's reference machine, while without it they are emulated and slower than fp32. ``precision="auto"``
therefore means bf16 autocast where the hardware has it and fp32 elsewhere, with one line saying which.
Weights stay fp32 under autocast; only the matmuls (and attention, unless kept in fp32) run in bf16.
See ``benchmarks/cpu_speed.py`` for the measurements and docs/design.md §10 for the policy.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from idglow.utils.defaults import PRECISION_ENV, PRECISIONS

Precision = Literal["auto", "bf16", "fp32"]
log = logging.getLogger(__name__)
_said: set[str] = set()


def _cpu_has_fast_bf16() -> bool:
    # torch exposes the CPU feature checks only as private helpers; a torch without them gets fp32
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and check() for check in checks)


def fast_bf16(device: torch.device | str) -> bool:
    """True where bf16 matmuls beat fp32 on ``device``: CUDA with bf16, or a CPU with AVX512-BF16 or AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and _cpu_has_fast_bf16()


def default_precision() -> str:
    """The sampling precision of this process: ``$IDGLOW_PRECISION`` if set, else ``auto``."""
    value = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV}: unknown {value!r}; choose one of {list(PRECISIONS)}")
    return value


def resolve_precision(precision: str | None, device: torch.device | str) -> str:
    """``"bf16"`` or ``"fp32"`` for ``precision`` on ``device``; ``auto`` picks bf16 where :func:`fast_bf16`,
    and says once per process when it falls back to fp32; None is :func:`default_precision`."""
    precision = default_precision() if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision: unknown {precision!r}; choose one of {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    if fast_bf16(device):
        return "bf16"
    key = torch.device(device).type
    if key not in _said:
        _said.add(key)
        log.warning("precision auto: no fast bf16 on %s (needs AVX512-BF16, AMX or a bf16 GPU); sampling in fp32", key)
    return "fp32"


class _Fp32Attention(TorchFunctionMode):
    """Runs ``scaled_dot_product_attention`` in fp32 (autocast off, inputs upcast), returning the caller's dtype."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention:
            return func(*args, **kwargs)
        query = args[0] if args else kwargs["query"]  # diffusers passes query, key, value by keyword
        with torch.autocast(query.device.type, enabled=False):
            return func(*map(_upcast, args), **{k: _upcast(v) for k, v in kwargs.items()}).to(query.dtype)


def _upcast(value):
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


def fp32_attention() -> TorchFunctionMode:
    """A context in which ``scaled_dot_product_attention`` runs in fp32 whatever autocast says (see :func:`autocast`)."""
    return _Fp32Attention()


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str, attention_fp32: bool = False) -> Iterator[None]:
    """bf16 autocast on ``device`` when ``precision`` (already resolved) is ``"bf16"``; nothing for ``"fp32"``.

    ``attention_fp32`` keeps scaled-dot-product attention in fp32 inside the bf16 region: on CPUs its bf16
    backward is slower than fp32 (``benchmarks/cpu_speed.py``), while the projections and MLPs gain from bf16.
    """
    if precision == "fp32":
        yield
        return
    if precision != "bf16":
        raise ValueError(f"precision: expected a resolved 'bf16' or 'fp32', got {precision!r}")
    device_type = torch.device(device).type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        if attention_fp32:
            with fp32_attention():
                yield
        else:
            yield
