"""Inference memory of FLUX.1-dev + IdGlow per memory mode and number of people: computed, not measured.

Every module is built on the meta device (no weights, no memory) from FLUX.1-dev's configuration (the ``flux-dev``
preset, the identity branch of ``configs/flux-dev-sft.yaml``, T5-XXL, CLIP-L, FLUX's VAE), so parameter counts are
exact; bytes follow from the dtypes each mode keeps. Activations are a stated estimate (see ``activations``). No GPU
was lent to this project's sessions, so no figure here is a measurement; run ``scripts/gpu_check.sh`` on one.

    python benchmarks/flux_memory.py          # writes benchmarks/results/flux_memory.json and prints the table
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, FluxTransformer2DModel
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from idglow.identity.branch import IdentityBranch
from idglow.models.presets import FLUX_PRESETS
from idglow.recipes.sft import SFTConfig
from idglow.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
SIZE = 1024  # output side in pixels


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def components() -> dict[str, dict[str, int]]:
    """Parameter counts: per component; for the transformer also its linear weights and its largest block."""
    cfg = load_config(SFTConfig, ROOT / "configs" / "flux-dev-sft.yaml", [])
    with init_empty_weights():
        flux = FluxTransformer2DModel(**FLUX_PRESETS["flux-dev"])
        branch = IdentityBranch.for_backbone(cfg.model.identity, flux.config)
        t5 = T5EncoderModel(T5Config(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=32128,
                                     feed_forward_proj="gated-gelu"))
        clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                            num_hidden_layers=12, projection_dim=768))  # CLIP ViT-L/14's text tower
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2)
    blocks = [*flux.transformer_blocks, *flux.single_transformer_blocks]
    linear = sum(m.weight.numel() for m in flux.modules() if isinstance(m, torch.nn.Linear))
    return {
        "transformer": {"params": _params(flux), "linear_weights": linear, "largest_block": max(map(_params, blocks)),
                        "outside_blocks": _params(flux) - sum(map(_params, blocks))},
        "identity_branch": {"params": _params(branch), "num_tokens": cfg.model.identity.num_tokens,
                            "inner_dim": cfg.model.identity.attention_heads * flux.config.attention_head_dim,
                            "blocks": len(branch.cross_attention) if hasattr(branch, "cross_attention") else flux.config.num_layers},
        "t5": {"params": _params(t5)}, "clip": {"params": _params(clip)}, "vae": {"params": _params(vae)},
    }


def activations(people: int, parts: dict) -> float:
    """Estimated peak activation bytes of one 1024^2 image (bf16): the joint stream's hidden states and MLP
    intermediates of one block (SDPA keeps attention linear in memory), the VAE decode's largest feature map (fp32
    in the decoder's last stage), and per person the identity K/V cache (K and V of ``num_tokens`` tokens per block)."""
    tokens = (SIZE // 16) ** 2 + 512
    hidden = tokens * 3072 * 2 * 6 + tokens * 12288 * 2
    vae = 128 * SIZE * SIZE * 4 * 3
    ib = parts["identity_branch"]
    kv = people * 2 * ib["num_tokens"] * ib["inner_dim"] * 2 * ib["blocks"]
    return hidden + vae + kv


def table() -> dict:
    parts = components()
    t = parts["transformer"]
    bf16 = {name: p["params"] * 2 for name, p in parts.items()}
    int8_transformer = t["linear_weights"] + (t["params"] - t["linear_weights"]) * 2
    nf4_transformer = t["linear_weights"] // 2 + t["linear_weights"] // 64 * 2 + (t["params"] - t["linear_weights"]) * 2
    branch = parts["identity_branch"]["params"] * 4  # the identity branch stays fp32 (a few hundred MB at most)
    text = bf16["t5"] + bf16["clip"]
    # the sampling loop's resident weights; prompts are encoded before it (T5 on the GPU, or on the CPU / from the cache)
    modes = {
        "everything on the GPU (bf16)": bf16["transformer"] + text + bf16["vae"] + branch,
        "model CPU offload (bf16)": bf16["transformer"] + branch,
        "group offload, 1 block at a time (bf16)": t["largest_block"] * 2 + t["outside_blocks"] * 2 + bf16["vae"] + branch,
        "int8 transformer (torchao) + model CPU offload": int8_transformer + branch,
        "nf4 transformer (bitsandbytes) + model CPU offload": nf4_transformer + branch,
    }
    rows = {mode: {str(n): (weights + activations(n, parts)) / GIB for n in (1, 2, 4)} for mode, weights in modes.items()}
    return {"size": SIZE, "parts_params": {k: v["params"] for k, v in parts.items()}, "identity_per_person_mib":
            (activations(1, parts) - activations(0, parts)) / 2**20, "t5_encode_gib": (bf16["t5"] + 4 * 512 * 4096 * 2) / GIB,
            "gib": rows, "measured": False}


def main() -> None:
    result = table()
    out = ROOT / "benchmarks" / "results" / "flux_memory.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"| sampling peak, FLUX.1-dev, {SIZE}x{SIZE} (computed estimate) | 1 person | 2 people | 4 people |\n|---|---|---|---|")
    for mode, row in result["gib"].items():
        print(f"| {mode} | " + " | ".join(f"{v:.1f} GiB" for v in row.values()) + " |")
    params = ", ".join(f"{k} {v / 1e9:.3f} B" for k, v in result["parts_params"].items())
    print(f"\nparameters: {params}; identity K/V cache per person: {result['identity_per_person_mib']:.1f} MiB; "
          f"T5 on the GPU while prompts are encoded (offload modes move it there alone): {result['t5_encode_gib']:.1f} GiB")


if __name__ == "__main__":
    main()
