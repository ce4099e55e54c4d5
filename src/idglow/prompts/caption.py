"""``idglow prompts caption``: per-subject prompts for every record of a training manifest, cached.

Each finished caption is appended to a JSONL cache (``{"id", "key", "prompt"}``) as soon as it
exists, so an interrupted run loses nothing: re-running reads the cache and continues. ``key`` names
the backend (and model), so switching backends does not reuse stale captions. The captioned manifest
is written beside the input (paths in a manifest are relative to its folder), atomically, at the end.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tqdm.auto import tqdm

from idglow.data.manifest import load_manifest
from idglow.prompts import rules
from idglow.prompts.badcases import Lessons, few_shot_guidance, read_library
from idglow.prompts.scene import SceneDescription
from idglow.utils.io import atomic_write, open_append_log, read_append_log


STYLES = ("per-subject", "coarse", "refined")


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


def read_lessons(folder: str | Path, min_share: float = 0.1) -> tuple[Lessons, list[dict], str]:
    """The lessons of a badcase folder (``badcases.jsonl`` and the ``summary.json`` that counts its images, as
    ``idglow prompts badcases`` and ``prompts refine`` write them), its entries, and a digest naming the library."""
    folder = Path(folder)
    library, summary = folder / "badcases.jsonl", folder / "summary.json"
    for path in (library, summary):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (a badcase folder of `idglow prompts badcases`)")
    images = json.loads(summary.read_text()).get("images")
    if not isinstance(images, int) or images < 1:
        raise ValueError(f"{summary}: images: expected the positive number of judged images, got {images!r}")
    entries = read_library(library)
    digest = hashlib.sha256(library.read_bytes() + f"{images}:{min_share}".encode()).hexdigest()[:12]
    return Lessons.from_library(entries, images, min_share), entries, digest


def _write(style: str, scenes: list[SceneDescription], lessons: Lessons | None) -> list[str]:
    if style == "coarse":
        return [rules.coarse(s) for s in scenes]
    if style == "refined":  # a scene the lessons say nothing about keeps its per-subject caption
        return [rules.refine(s, failures) if (failures := lessons.failures(s)) else rules.synthesize(s) for s in scenes]
    return [rules.synthesize(s) for s in scenes]


def caption_manifest(manifest: str | Path, out: str | Path | None = None, synthesizer=None, cache: str | Path | None = None,
                     batch: int = 16, progress: bool = True, style: str = "per-subject",
                     badcases: str | Path | None = None) -> dict:
    """Caption every record of an SFT or benchmark manifest; returns counts.

    Args:
        synthesizer: None for ``rules``, or a :class:`idglow.prompts.vlm.VLMPromptSynthesizer`
            (each record's reference images go with its request).
        out: the captioned manifest (default: ``<manifest>.captioned.jsonl`` beside it; it must stay in
            the manifest's folder so relative paths still resolve).
        cache: the JSONL cache (default: ``<out>.cache``).
        style: ``per-subject`` (one clause per person binding position to attributes), ``coarse`` (count and place
            only, what photo datasets give; rules only), or ``refined`` (per-subject, rewritten against what the
            badcase library of ``badcases`` teaches: with ``rules``, the colours that leaked stressed as the person's
            only colour and the frequent failures - swap, count, age - written out; with a VLM, the library's cases as
            few-shot guidance): the three rows of the prompt claim.
        badcases: the badcase folder (``idglow prompts badcases``) that ``refined`` needs.
    """
    if style not in STYLES:
        raise ValueError(f"style: expected one of {', '.join(STYLES)}, got {style!r}")
    if style == "coarse" and synthesizer is not None:
        raise ValueError("style: coarse captions come from the rules backend (a VLM writes per-subject prompts)")
    if (style == "refined") != (badcases is not None):
        raise ValueError("badcases: the refined style needs a badcase folder, and only it uses one")
    lessons, entries, digest = read_lessons(badcases) if badcases is not None else (None, [], "")
    manifest = Path(manifest)
    records = load_manifest(manifest, _kind(manifest))
    out = Path(out) if out else manifest.with_suffix(".captioned.jsonl")
    if out.resolve().parent != manifest.resolve().parent:
        raise ValueError(f"out: {out} must be in the manifest's folder {manifest.parent} (its paths are relative to it)")
    cache = Path(cache) if cache else out.with_suffix(out.suffix + ".cache")
    # The key names backend, style and library, so a changed library or style never reuses stale captions.
    key = ("rules" if synthesizer is None else f"openai:{synthesizer.options.model}") + {
        "per-subject": "", "coarse": ":coarse", "refined": f":refined:{digest}"}[style]
    done = read_cache(cache, key)
    todo = [r for r in records if _id(r) not in done]
    with open_append_log(cache) as f, tqdm(total=len(records), initial=len(records) - len(todo), desc="caption",
                                     disable=not progress) as bar:
        for start in range(0, len(todo), batch):
            chunk = todo[start : start + batch]
            scenes = [SceneDescription.from_record(r) for r in chunk]
            if synthesizer is None:
                prompts = _write(style, scenes, lessons)
            else:
                refs = [[manifest.parent / s["ref"] for s in r["subjects"]] if "subjects" in r else
                        [manifest.parent / p for p in r["refs"]] for r in chunk]
                prompts = synthesizer.synthesize_many(scenes, refs, guidance=few_shot_guidance(entries) if entries else "")
            for record, prompt in zip(chunk, prompts):
                f.write(json.dumps({"id": _id(record), "key": key, "prompt": prompt}) + "\n")
                done[_id(record)] = prompt
            f.flush()
            bar.update(len(chunk))
    lines = "".join(json.dumps({**{k: v for k, v in r.items() if k != "_line"}, "prompt": done[_id(r)]}) + "\n"
                    for r in records)
    atomic_write(out, lambda p: p.write_text(lines))
    return {"records": len(records), "captioned": len(todo), "from_cache": len(records) - len(todo), "out": str(out)}
