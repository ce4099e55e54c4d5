"""The badcase library: failures found by the evaluation metrics, one JSONL line per failure.

A line: ``{"id", "failure": leakage|swap|count|age, "subjects": [indices], "attributes": [...],
"prompt", "image", "round"}``. Failures per subject come from the cast judges (leakage: wearing
another person's prompt colour; age: drawn as an adult when a child was asked for; count: a person
missing or extra) and from the matching (swap: a reference at another's left-to-right place).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

from idglow.prompts.scene import SceneDescription
from idglow.utils.io import open_append_log


def detect_failures(record: dict, score: dict) -> dict[int, set[str]]:
    """Failing kinds per subject index of one generated image.

    Args:
        score: the image's line of ``scores.jsonl`` from ``idglow eval --backend synth``
            (:func:`idglow.eval.suite.identity_scores` plus the cast judges' per-subject fields).
    """
    failures: dict[int, set[str]] = defaultdict(set)
    for slot in score["leaked_slots"]:
        failures[slot].add("leakage")
    for slot in score["swapped_slots"]:
        failures[slot].add("swap")
    if not score["count_ok"]:
        for slot in score["unmatched_slots"] or range(score["size"]):
            failures[slot].add("count")
    if record["task"] == "age":
        for slot in score["adult_slots"]:
            failures[slot].add("age")
    return dict(failures)


def library_entries(record: dict, failures: dict[int, set[str]], image: str, round_index: int) -> list[dict]:
    """One library line per failure kind of an image."""
    scene = SceneDescription.from_record(record)
    by_kind: dict[str, list[int]] = defaultdict(list)
    for slot, kinds in sorted(failures.items()):
        for kind in kinds:
            by_kind[kind].append(slot)
    return [{"id": record["id"], "failure": kind, "subjects": slots,
             "attributes": [dataclasses.asdict(scene.subjects[s]) for s in slots if s < len(scene.subjects)],
             "prompt": record["prompt"], "image": image, "round": round_index} for kind, slots in sorted(by_kind.items())]


def append_library(path: Path, entries: list[dict]) -> None:
    """Append entries to the JSONL library (created if absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_append_log(path) as f:
        for entry in entries:
            f.write(json.dumps(entry) + "\n")


def read_library(path: Path) -> list[dict]:
    """Every entry of a library; a malformed line is an error naming the file and line (a torn last line is skipped)."""
    entries, text = [], Path(path).read_text()
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines) and not text.endswith("\n"):
                break  # a last line torn by a kill mid-append: that entry was never finished
            raise ValueError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(entry, dict) or "failure" not in entry or "prompt" not in entry:
            raise ValueError(f"{path}:{number}: a badcase needs fields 'failure' and 'prompt'")
        entries.append(entry)
    return entries


def few_shot_guidance(entries: list[dict], limit: int = 6) -> str:
    """The library's latest cases as text for a VLM: which prompt failed how, for whom."""
    lines = [f"- {e['failure']} of people {e['subjects']} with prompt: {e['prompt']!r}" for e in entries[-limit:]]
    return "\n".join(lines)
