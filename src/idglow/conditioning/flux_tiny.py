"""A tiny FLUX.1-layout folder with random weights: the test stand-in for FLUX.1-dev.

``save_tiny_flux_folder(path)`` writes exactly the layout of the FLUX.1-dev repository (``FluxPipeline``'s
``save_pretrained``): transformer, VAE, CLIP and T5 text encoders, their tokenizers and the scheduler,
each a few thousand parameters. Everything that loads FLUX.1-dev loads it by the same code path, so tests
(and ``idglow flux tiny-folder`` for a dry run) exercise that path on a CPU. Its tokenizers are
character-level: no vocabulary file needs downloading.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

CHARS = string.ascii_lowercase + string.digits + ",.'-:"


def _tokenizers():
    from transformers import CLIPTokenizer, T5Tokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in CHARS:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    clip = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    t5 = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -1.0) for c in "\u2581" + CHARS],
                     extra_ids=0, model_max_length=512)
    return clip, t5


def tiny_flux_pipeline(seed: int = 0, width: int = 32):
    """A ``FluxPipeline`` of FLUX.1-dev's structure (guidance-distilled, 16-channel VAE latents packed 2x2, CLIP
    pooled + T5 states) at toy size: transformer width ``width``, a 2x-downsampling VAE with 4 latent channels."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    clip_tok, t5_tok = _tokenizers()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=2, num_single_layers=1,
                                         attention_head_dim=width // 2, num_attention_heads=2, joint_attention_dim=width,
                                         pooled_projection_dim=width, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=4, norm_num_groups=4, scaling_factor=0.3611, shift_factor=0.1159)
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(clip_tok), hidden_size=width, intermediate_size=2 * width,
                                        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                                        projection_dim=width, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=width, d_kv=width // 2, d_ff=2 * width, num_layers=2,
                                 num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0))
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=clip, tokenizer=clip_tok,
                        text_encoder_2=t5, tokenizer_2=t5_tok, transformer=transformer)


def save_tiny_flux_folder(path: str | Path, seed: int = 0) -> Path:
    """Write :func:`tiny_flux_pipeline` to ``path`` in diffusers format (safetensors); returns ``path``."""
    path = Path(path)
    tiny_flux_pipeline(seed).save_pretrained(path, safe_serialization=True)
    return path
