"""The app's "write the prompt" button: the rules synthesizer's caption for the chosen people, in the cast's form."""

from __future__ import annotations

import random

from idglow.cast.factors import CLOTHING_NAMES
from idglow.cast.scenes import MAX_PEOPLE, PLACES, POSITIONS
from idglow.prompts.rules import synthesize
from idglow.prompts.scene import SceneDescription, SubjectDescription


def write_prompt(people: int, task: str = "group", place: str = "park", seed: int = 0) -> str:
    """A caption for ``people`` people (left to right, in the order chosen) ``PLACES[place]``, each in a different
    colour drawn with ``seed``; children for task ``age``.

    Raises:
        ValueError: no people, more than the cast's scenes hold, or an unknown place (the choices are named).
    """
    if not 1 <= people <= MAX_PEOPLE:
        raise ValueError(f"people: choose 1 to {MAX_PEOPLE} people, got {people}")
    if place not in PLACES:
        raise ValueError(f"place: expected one of {', '.join(PLACES)}, got {place!r}")
    colours = random.Random(seed).sample(CLOTHING_NAMES, people)
    age = "child" if task == "age" else "adult"
    subjects = [SubjectDescription(position=p, age=age, clothing=c) for p, c in zip(POSITIONS[people], colours)]
    return synthesize(SceneDescription(subjects, setting=PLACES[place], task=task))
