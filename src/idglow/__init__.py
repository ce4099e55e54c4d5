"""IdGlow: dynamic identity modulation for multi-subject generation on flow-matching transformers.

The public API, imported lazily (``import idglow`` loads nothing else; each name loads its module on
first use)::

    from idglow import IdGlowPipeline              # generation from a trained run
    from idglow import IdGlowTransformer, ModelConfig, load_config

The packages, bottom to top (each imports only from itself and those below; ``docs/design.md``):
``utils`` · ``flow`` · ``cast`` · ``data`` · ``faces`` · ``identity`` · ``models`` · ``conditioning`` ·
``recipes`` · ``runs`` · ``generate`` · ``eval`` · ``prompts`` · ``training`` · ``base`` · ``sft`` · ``pairs`` ·
``dpo`` · ``demo`` · ``cli``.
"""

from __future__ import annotations

import importlib
import logging

# torchao (the `quant` extra) warns at import, through diffusers, that its CUDA kernels (mxfp8, cutlass) do not load
# on a CPU build of torch; int8 weight-only quantization does not use them. Its other messages still show.
for _name in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__version__ = "0.1.0"

_PUBLIC = {
    "IdGlowPipeline": "idglow.generate.pipeline",
    "generate_images": "idglow.generate.sampling",
    "IdGlowTransformer": "idglow.models",
    "ModelConfig": "idglow.models",
    "IdentityConfig": "idglow.identity",
    "GateConfig": "idglow.identity",
    "load_run": "idglow.runs.load",
    "load_config": "idglow.utils.config",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'idglow' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
