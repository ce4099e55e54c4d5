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


@dataclasses.dataclass(frozen=True)
class Lessons:
    """What a badcase library teaches for rewriting *training* captions: the clothing colours that leaked onto
    another person, and the failure kinds frequent enough to stress in every caption with several people."""

    leaked_clothing: frozenset[str]
    kinds: frozenset[str]
    images: int

    @classmethod
    def from_library(cls, entries: list[dict], images: int, min_share: float = 0.1) -> Lessons:
        """Lessons from ``entries`` found on ``images`` generated images: a kind counts when at least ``min_share`` of
        the images show it (rare failures are noise); leakage is taught per colour, whatever its share."""
        if images < 1:
            raise ValueError("images: the library must come from at least one generated image")
        per_kind: dict[str, set[str]] = defaultdict(set)
        for entry in entries:
            per_kind[entry["failure"]].add(entry["id"])
        leaked = {a["clothing"] for e in entries if e["failure"] == "leakage" for a in e.get("attributes", []) if a.get("clothing")}
        kinds = {kind for kind, ids in per_kind.items() if kind != "leakage" and len(ids) / images >= min_share}
        return cls(frozenset(leaked), frozenset(kinds), images)

    def failures(self, scene: SceneDescription) -> dict[int, set[str]]:
        """The failures to write a scene's caption against (for :func:`idglow.prompts.rules.refine`): leakage for
        each person wearing a colour that leaked; the frequent kinds for everyone in a scene of several people (age
        only where a child is asked for)."""
        if len(scene.subjects) < 2:
            return {}
        out: dict[int, set[str]] = defaultdict(set)
        for i, subject in enumerate(scene.subjects):
            if subject.clothing in self.leaked_clothing:
                out[i].add("leakage")
            out[i].update(k for k in self.kinds if k != "age" or scene.task == "age")
        return {i: kinds for i, kinds in out.items() if kinds}
