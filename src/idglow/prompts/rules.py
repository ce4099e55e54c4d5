"""The ``rules`` prompt synthesizer: deterministic and offline, from structured descriptions.

It writes the caption form the cast's models were trained on — count, place, then one clause per
person left to right binding position to attributes — and, for a refinement, rewrites it against
recorded failures: explicit binding of every attribute to its position, the failing people's clauses
first, and emphasis on the failing attribute.
"""

from __future__ import annotations

from idglow.prompts.scene import SceneDescription, SubjectDescription

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
FAILURES = ("leakage", "swap", "count", "age")


def _noun(scene: SceneDescription, plural: bool) -> str:
    child = scene.task == "age" or all(s.age == "child" for s in scene.subjects)
    return ("children" if plural else "child") if child else ("people" if plural else "person")


def _clause(subject: SubjectDescription, noun: str, emphasis: tuple[str, ...] = ()) -> str:
    words = [f"the {noun} {subject.position}".replace("  ", " ").strip()]
    traits = []
    if subject.clothing:
        traits.append(f"wears {subject.clothing}" + (f" and only {subject.clothing}" if "leakage" in emphasis else ""))
    if subject.hair:
        traits.append(f"has {subject.hair} hair")
    if subject.expression:
        traits.append(f"is {subject.expression}")
    if subject.age not in ("adult", "child", ""):
        traits.append(f"is {subject.age}")
    if "age" in emphasis and _noun_is_child(noun):
        traits.append("with a young child's face")
    return " ".join(words + [", ".join(traits)]) if traits else words[0]


def _noun_is_child(noun: str) -> bool:
    return noun in ("child", "children")


def synthesize(scene: SceneDescription) -> str:
    """The per-subject prompt of a scene (the cast's caption form)."""
    n = len(scene.subjects)
    if n == 0:
        raise ValueError("subjects: a scene needs at least one person")
    singular, plural = _noun(scene, False), _noun(scene, True)
    place = f" {scene.setting}" if scene.setting else ""
    light = f", {scene.lighting}" if scene.lighting else ""
    if n == 1:
        s = scene.subjects[0]
        wearing = f" wearing {s.clothing}" if s.clothing else ""
        return f"a photo of one {singular}{wearing}{place}{light}"
    clauses = ", ".join(_clause(s, singular) for s in scene.subjects)
    return f"a group photo of {NUMBERS.get(n, str(n))} {plural}{place}{light}: {clauses}"


def coarse(scene: SceneDescription) -> str:
    """The caption a photo dataset gives: count and place, no person bound to anything ("a group photo of three people
    in a park"): the baseline that per-subject captions are measured against (benchmarks/claims.py, claim iv)."""
    n = len(scene.subjects)
    if n == 0:
        raise ValueError("subjects: a scene needs at least one person")
    place = f" {scene.setting}" if scene.setting else ""
    light = f", {scene.lighting}" if scene.lighting else ""
    if n == 1:
        return f"a photo of one {_noun(scene, False)}{place}{light}"
    return f"a group photo of {NUMBERS.get(n, str(n))} {_noun(scene, True)}{place}{light}"


def refine(scene: SceneDescription, failures: dict[int, set[str]], reorder: bool = False) -> str:
    """A rewrite of :func:`synthesize` against failures per subject index (``leakage``, ``swap``,
    ``count``, ``age``): their failing attributes stressed, the head count made explicit, and (with
    ``reorder``) the failing people's clauses first. Reordering is off by default: on the cast it
    raised leakage (0.451 -> 0.525 on 100 synth-group images) where keeping the order did not
    (README, "Prompts")."""
    unknown = {f for fs in failures.values() for f in fs} - set(FAILURES)
    if unknown:
        raise ValueError(f"failures: unknown kind(s) {sorted(unknown)}; expected {FAILURES}")
    n = len(scene.subjects)
    if n == 1 or not failures:
        base = synthesize(scene)
        return base + (", exactly one person" if any("count" in f for f in failures.values()) else "")
    singular, plural = _noun(scene, False), _noun(scene, True)
    order = sorted(range(n), key=lambda i: (reorder and i not in failures, i))  # failing people first if reordering
    clauses = ", ".join(_clause(scene.subjects[i], singular, tuple(failures.get(i, ()))) for i in order)
    place = f" {scene.setting}" if scene.setting else ""
    head = f"a group photo of exactly {NUMBERS.get(n, str(n))} {plural}{place}"
    if any("swap" in f for f in failures.values()):
        head += ", from left to right"
    return f"{head}: {clauses}"
