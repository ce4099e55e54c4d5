"""Structured descriptions of the people in a scene: what a prompt must bind to each person."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class SubjectDescription:
    """One person. ``position`` places them left to right (e.g. "on the left"); empty fields are unknown."""

    position: str
    age: str = "adult"  # apparent or target age: "adult" | "child" | free text ("about six years old")
    clothing: str = ""
    hair: str = ""
    expression: str = ""


@dataclasses.dataclass
class SceneDescription:
    """People left to right, and the scene around them."""

    subjects: list[SubjectDescription]
    setting: str = ""  # e.g. "in a park"
    lighting: str = ""
    task: str = "group"

    @classmethod
    def from_record(cls, record: dict) -> SceneDescription:
        """From a benchmark record (``expected.positions``/``clothing``/``age``) or an SFT record (``subjects[].attributes``)."""
        if "subjects" in record:
            attrs = [s.get("attributes", {}) for s in record["subjects"]]
            subjects = [SubjectDescription(position=a.get("position", ""), age=a.get("age", "adult"), clothing=a.get("clothing", ""),
                                           hair=a.get("hair", ""), expression=a.get("expression", "")) for a in attrs]
            return cls(subjects, setting=record.get("setting", _setting(record["prompt"])), task=record["task"])
        expected = record.get("expected", {})
        n = len(record["refs"])
        positions = expected.get("positions") or [""] * n
        clothing = expected.get("clothing") or [""] * n
        age = expected.get("age", "adult")
        subjects = [SubjectDescription(position=p, age=age, clothing=c) for p, c in zip(positions, clothing)]
        return cls(subjects, setting=_setting(record["prompt"]), task=record["task"])


def _setting(prompt: str) -> str:
    """The cast's place phrase ("in a park", "on a beach", ...) found in a caption; empty if none."""
    from idglow.cast.scenes import PLACES

    return next((place for place in PLACES.values() if place in prompt), "")
