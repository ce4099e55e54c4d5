"""JSON Lines manifests (docs/design.md §7), validated on load with errors naming the file, line and field.

Kinds:
- ``sft``: ``{"image", "prompt", "task", "subjects": [{"ref", "box": [x0, y0, x1, y1], "attributes": {...}}]}``
- ``preference``: ``{"prompt", "task", "refs": [...], "winner", "loser", "scores": {...}, "weight", "margin"}``
- ``benchmark``: ``{"id", "prompt", "task", "refs": [...], "expected": {...}}``

Paths are relative to the manifest's folder and may not escape it. Optional keys everywhere: ``id``
and ``meta`` (free-form). Any other unknown key is an error (a typo would otherwise be silently
ignored).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from idglow.utils.defaults import TASKS  # noqa: E402  (re-exported: manifests name their task)

SAFE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,199}")


class ManifestError(ValueError):
    """A manifest record is malformed; the message names the file, line and field."""


class _Record:
    """Checks on one record; every error is prefixed with ``file:line: field``."""

    def __init__(self, data: Any, path: Path, line: int, check_files: bool):
        self.data, self.path, self.line, self.check_files = data, path, line, check_files
        self.root = path.parent.resolve()

    def fail(self, field: str, message: str) -> None:
        raise ManifestError(f"{self.path}:{self.line}: {field}: {message}")

    def keys(self, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        if not isinstance(self.data, dict):
            self.fail("record", f"expected a JSON object, got {type(self.data).__name__}")
        for key in required:
            if key not in self.data:
                self.fail(key, "missing")
        for key in self.data:
            if key not in required + optional + ("id", "meta"):
                self.fail(key, f"unknown field (expected {', '.join(required + optional)})")

    def text(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, field: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(field, f"expected a number, got {value!r}")
        if not math.isfinite(value):  # JSON readers accept NaN and Infinity; no field of ours means them
            self.fail(field, f"expected a finite number, got {value!r}")
        return float(value)

    def name(self, field: str, value: Any) -> str:
        """A name that becomes a file name under an output folder: no separators, no ``..``, no leading dot."""
        self.text(field, value)
        if not SAFE_NAME.fullmatch(value):
            self.fail(field, f"{value!r} is not a safe file name (letters, digits, '.', '_', '-'; not starting "
                             "with '.'): it names output files")
        return value

    def task(self, value: Any) -> str:
        if value not in TASKS:
            self.fail("task", f"expected one of {TASKS}, got {value!r}")
        return value

    def file(self, field: str, value: Any) -> str:
        """A path relative to the manifest folder, inside it, and (when checked) existing."""
        self.text(field, value)
        if Path(value).is_absolute():
            self.fail(field, f"path {value!r} must be relative to the manifest's folder")
        resolved = (self.root / value).resolve()
        if not resolved.is_relative_to(self.root):
            self.fail(field, f"path {value!r} escapes the manifest's folder {self.root}")
        if self.check_files and not resolved.is_file():
            self.fail(field, f"file {value!r} not found under {self.root}")
        return value

    def box(self, field: str, value: Any) -> list[float]:
        if not isinstance(value, list) or len(value) != 4:
            self.fail(field, f"expected [x0, y0, x1, y1], got {value!r}")
        x0, y0, x1, y1 = (self.number(f"{field}[{i}]", v) for i, v in enumerate(value))
        if not (x1 > x0 and y1 > y0 and x0 >= 0 and y0 >= 0):
            self.fail(field, f"expected 0 <= x0 < x1 and 0 <= y0 < y1, got {value!r}")
        return value

    def mapping(self, field: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"expected an object, got {value!r}")
        return value

    def files(self, field: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            self.fail(field, f"expected a non-empty list of paths, got {value!r}")
        return [self.file(f"{field}[{i}]", v) for i, v in enumerate(value)]


def _check_sft(r: _Record) -> None:
    r.keys(("image", "prompt", "task", "subjects"))
    d = r.data
    if "id" in d:
        r.name("id", d["id"])
    r.file("image", d["image"])
    r.text("prompt", d["prompt"])
    r.task(d["task"])
    if not isinstance(d["subjects"], list) or not d["subjects"]:
        r.fail("subjects", f"expected a non-empty list, got {d['subjects']!r}")
    for i, subject in enumerate(d["subjects"]):
        field = f"subjects[{i}]"
        if not isinstance(subject, dict):
            r.fail(field, "expected an object")
        for key in subject:
            if key not in ("ref", "box", "attributes"):
                r.fail(f"{field}.{key}", "unknown field (expected ref, box, attributes)")
        for key in ("ref", "box"):
            if key not in subject:
                r.fail(f"{field}.{key}", "missing")
        r.file(f"{field}.ref", subject["ref"])
        r.box(f"{field}.box", subject["box"])
        r.mapping(f"{field}.attributes", subject.get("attributes", {}))


def _check_preference(r: _Record) -> None:
    r.keys(("prompt", "task", "refs", "winner", "loser"), ("scores", "weight", "margin"))
    d = r.data
    r.text("prompt", d["prompt"])
    r.task(d["task"])
    r.files("refs", d["refs"])
    r.file("winner", d["winner"])
    r.file("loser", d["loser"])
    r.mapping("scores", d.get("scores", {}))
    if r.number("weight", d.get("weight", 1.0)) < 0:
        r.fail("weight", "must be >= 0")
    r.number("margin", d.get("margin", 0.0))


def _check_benchmark(r: _Record) -> None:
    r.keys(("id", "prompt", "task", "refs", "expected"))
    d = r.data
    r.name("id", d["id"])
    r.text("prompt", d["prompt"])
    r.task(d["task"])
    r.files("refs", d["refs"])
    _check_expected(r, r.mapping("expected", d["expected"]), len(d["refs"]))


def _check_expected(r: _Record, expected: dict, refs: int) -> None:
    """``count`` (every benchmark: people the image should show); the cast's per-reference lists and target."""
    count = expected.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        r.fail("expected.count", f"expected a positive integer (the people the image should show), got {count!r}")
    for key in ("identities", "clothing", "positions", "boxes"):
        if key in expected and (not isinstance(expected[key], list) or len(expected[key]) != refs):
            r.fail(f"expected.{key}", f"expected a list with one entry per reference ({refs}), got {expected[key]!r}")
    for i, box in enumerate(expected.get("boxes", [])):
        r.box(f"expected.boxes[{i}]", box)
    if "target" in expected:
        r.file("expected.target", expected["target"])


def sft_as_benchmark(record: dict, source: str | Path = "manifest") -> dict:
    """An SFT record of the cast as a benchmark record (the same prompt, references and scene as its target), so a
    trained model can be generated and judged on training scenes (``idglow prompts badcases``).

    Needs each subject's ``attributes`` ``identity``, ``position``, ``clothing`` and ``age`` (what ``idglow synth
    build`` writes); ``source`` names the file in errors.
    """
    where = f"{source}:{record.get('_line', '?')}"
    attributes = []
    for i, subject in enumerate(record["subjects"]):
        attrs = subject.get("attributes", {})
        missing = [k for k in ("identity", "position", "clothing", "age") if k not in attrs]
        if missing:
            raise ManifestError(f"{where}: subjects[{i}].attributes: missing {', '.join(missing)} (a cast record is needed)")
        attributes.append(attrs)
    expected = {"count": len(attributes), "age": attributes[0]["age"], "identities": [a["identity"] for a in attributes],
                "clothing": [a["clothing"] for a in attributes], "positions": [a["position"] for a in attributes],
                "target": record["image"], "boxes": [s["box"] for s in record["subjects"]]}
    name = record.get("id") or f"line-{record.get('_line', 0):06d}"
    return {"id": name, "prompt": record["prompt"], "task": record["task"], "refs": [s["ref"] for s in record["subjects"]],
            "expected": expected}


CHECKS: dict[str, Callable[[_Record], None]] = {"sft": _check_sft, "preference": _check_preference, "benchmark": _check_benchmark}


def load_manifest(path: str | Path, kind: str, check_files: bool = True, skip_invalid: bool = False) -> list[dict]:
    """Read and validate a manifest.

    Args:
        path: the ``.jsonl`` file.
        kind: ``sft | preference | benchmark``.
        check_files: also require every referenced file to exist.
        skip_invalid: drop malformed records with one counted warning instead of raising.

    Returns:
        the valid records, each with ``_line`` (1-based) added.

    Raises:
        ManifestError: on the first malformed record (file, line and field named), unless skipping.
    """
    if kind not in CHECKS:
        raise ValueError(f"kind: unknown manifest kind {kind!r}; choose one of {tuple(CHECKS)}")
    path = Path(path)
    lines = read_lines(path)
    records, skipped, ids = [], [], {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                data = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(f"{path}:{number}: record: invalid JSON ({err.msg} at column {err.colno})") from None
            CHECKS[kind](_Record(data, path, number, check_files))
            if kind == "benchmark" and data["id"] in ids:  # ids name the output files: a repeat would overwrite
                raise ManifestError(f"{path}:{number}: id: {data['id']!r} repeats the id of line {ids[data['id']]}")
        except ManifestError as err:
            if not skip_invalid:
                raise
            skipped.append(str(err))
            continue
        records.append({**data, "_line": number})
        if kind == "benchmark":
            ids[data["id"]] = number
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} invalid record(s); first: {skipped[0]}", stacklevel=2)
    return records


def read_lines(path: Path) -> list[str]:
    """The manifest's lines (UTF-8; a byte-order mark is allowed); unreadable or undecodable: a ManifestError."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ManifestError(f"{path}: cannot read manifest: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ManifestError(f"{path}:{line}: record: not UTF-8 text (byte 0x{raw[err.start]:02x})") from None
    return text.splitlines()


def evenly_spread(records: list[dict], limit: int | None) -> list[dict]:
    """``limit`` records spread evenly over the list (all of them when ``limit`` is None or larger).

    Benchmarks are ordered by group size, so the first N records would all be single people.
    """
    if limit is None or limit >= len(records):
        return records
    step = (len(records) - 1) / max(limit - 1, 1)
    return [records[round(i * step)] for i in range(limit)]
