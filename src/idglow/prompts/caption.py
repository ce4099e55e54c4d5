"""``idglow prompts caption``: per-subject prompts for every record of a training manifest, cached.

Each finished caption is appended to a JSONL cache (``{"id", "key", "prompt"}``) as soon as it
exists, so an interrupted run loses nothing: re-running reads the cache and continues. ``key`` names
the backend (and model), so switching backends does not reuse stale captions. The captioned manifest
is written beside the input (paths in a manifest are relative to its folder), atomically, at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm

from idglow.data.manifest import load_manifest
from idglow.prompts import rules
from idglow.prompts.scene import SceneDescription
from idglow.utils.io import atomic_write, open_append_log, read_append_log


STYLES = ("per-subject", "coarse")


def _id(record: dict) -> str:
    """A record's cache key: its id, or its line number (SFT records may have no id)."""
    return str(record.get("id") or f"line-{record['_line']}")


def _kind(manifest: Path) -> str:
    """``sft`` when the first record has ``subjects``, else ``benchmark``."""
    with manifest.open() as f:
        first = f.readline()
    try:
        return "sft" if "subjects" in json.loads(first) else "benchmark"
    except json.JSONDecodeError:
        raise ValueError(f"{manifest}:1: not JSON") from None


def read_cache(path: Path, key: str) -> dict[str, str]:
    """Cached prompts of ``key`` by record id; a torn last line (killed mid-write) is ignored."""
    return {entry["id"]: entry["prompt"] for entry in read_append_log(path) if entry.get("key") == key}


def caption_manifest(manifest: str | Path, out: str | Path | None = None, synthesizer=None, cache: str | Path | None = None,
                     batch: int = 16, progress: bool = True, style: str = "per-subject") -> dict:
    """Caption every record of an SFT or benchmark manifest; returns counts.

    Args:
        synthesizer: None for ``rules``, or a :class:`idglow.prompts.vlm.VLMPromptSynthesizer`
            (each record's reference images go with its request).
        out: the captioned manifest (default: ``<manifest>.captioned.jsonl`` beside it; it must stay in
            the manifest's folder so relative paths still resolve).
        cache: the JSONL cache (default: ``<out>.cache``).
        style: ``per-subject`` (one clause per person binding position to attributes) or ``coarse`` (count and place
            only, what photo datasets give; rules only): the two sides of the prompt claim.
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    if style == "coarse" and synthesizer is not None:
        raise ValueError("style: coarse captions come from the rules backend (a VLM writes per-subject prompts)")
    manifest = Path(manifest)
    records = load_manifest(manifest, _kind(manifest))
    out = Path(out) if out else manifest.with_suffix(".captioned.jsonl")
    if out.resolve().parent != manifest.resolve().parent:
        raise ValueError(f"out: {out} must be in the manifest's folder {manifest.parent} (its paths are relative to it)")
    cache = Path(cache) if cache else out.with_suffix(out.suffix + ".cache")
    key = ("rules" if style == "per-subject" else "rules:coarse") if synthesizer is None else f"openai:{synthesizer.options.model}"
    done = read_cache(cache, key)
    todo = [r for r in records if _id(r) not in done]
    with open_append_log(cache) as f, tqdm(total=len(records), initial=len(records) - len(todo), desc="caption",
                                     disable=not progress) as bar:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            scenes = [SceneDescription.from_record(r) for r in chunk]
            if synthesizer is None:
                write = rules.synthesize if style == "per-subject" else rules.coarse
                prompts = [write(s) for s in scenes]
            else:
                refs = [[manifest.parent / s["ref"] for s in r["subjects"]] if "subjects" in r else
                        [manifest.parent / p for p in r["refs"]] for r in chunk]
                prompts = synthesizer.synthesize_many(scenes, refs)
            for record, prompt in zip(chunk, prompts):
                f.write(json.dumps({"id": _id(record), "key": key, "prompt": prompt}) + "\n")
                done[_id(record)] = prompt
            f.flush()
            bar.update(len(chunk))
    lines = "".join(json.dumps({**{k: v for k, v in r.items() if k != "_line"}, "prompt": done[_id(r)]}) + "\n"
                    for r in records)
    atomic_write(out, lambda p: p.write_text(lines))
    return {"records": len(records), "captioned": len(todo), "from_cache": len(records) - len(todo), "out": str(out)}
