"""The app's reference gallery: face crops of people the model never saw in training, with a name each.

A gallery folder holds ``gallery.json`` (``[{"file", "name", "identity"}]``) and the crops beside it; the shipped model
carries one (``assets/idglow/gallery``, written by ``idglow train export --gallery``). A cast folder works too: its
benchmark's references, one crop per held-out identity.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from idglow.data.manifest import load_manifest

GALLERY = "gallery.json"


@dataclasses.dataclass(frozen=True)
class GalleryEntry:
    """One person: ``file`` (a face crop), ``name`` (shown and used in labels), ``identity`` (the cast's id, or -1)."""

    file: Path
    name: str
    identity: int = -1


def gallery_from_cast(cast: str | Path, size: int = 12, benchmark: str = "synth-group.jsonl") -> list[GalleryEntry]:
    """Up to ``size`` people from a cast benchmark (held-out identities): each identity's first reference crop."""
    manifest = Path(cast) / benchmark
    entries, seen = [], set()
    for record in load_manifest(manifest, "benchmark"):
        for ref, identity in zip(record["refs"], record.get("expected", {}).get("identities", [])):
            if identity not in seen and len(entries) < size:
                seen.add(identity)
                entries.append(GalleryEntry(manifest.parent / ref, f"person {len(entries) + 1}", int(identity)))
    if not entries:
        raise ValueError(f"{manifest}: no records with expected.identities to build a gallery from")
    return entries


def write_gallery(entries: list[GalleryEntry], out: str | Path) -> Path:
    """Copy the crops to ``out`` and write ``out/gallery.json``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, entry in enumerate(entries):
        name = f"{k:02d}{entry.file.suffix}"
        shutil.copyfile(entry.file, out / name)
        rows.append({"file": name, "name": entry.name, "identity": entry.identity})
    (out / GALLERY).write_text(json.dumps(rows, indent=2) + "\n")
    return out


def load_gallery(folder: str | Path) -> list[GalleryEntry]:
    """A gallery folder (``gallery.json``) or a cast folder (its benchmark's references).

    Raises:
        FileNotFoundError / ValueError naming the folder, the file or the field.
    """
    folder = Path(folder)
    if (folder / GALLERY).is_file():
        try:
            rows = json.loads((folder / GALLERY).read_text())
            entries = [GalleryEntry(folder / row["file"], str(row["name"]), int(row.get("identity", -1))) for row in rows]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{folder / GALLERY}: not a gallery list of {{file, name}} ({type(err).__name__}: {err})") from None
        missing = [e.file for e in entries if not e.file.is_file()]
        if missing:
            raise FileNotFoundError(f"{folder / GALLERY}: {missing[0]} does not exist")
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"{folder / GALLERY}: names must be unique")
        return entries
    if (folder / "synth-group.jsonl").is_file():
        return gallery_from_cast(folder)
    raise FileNotFoundError(f"{folder}: neither a gallery ({GALLERY}) nor a cast folder (synth-group.jsonl)")
