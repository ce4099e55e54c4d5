"""A model folder's recommended sampler: per task, the identity guidance and gate overrides that scored best on the
held-out benchmarks it was exported with (``sampler.json``, written by ``idglow train export --scores``).

A model is trained with one gate and sampled by default with guidance 1, but the best sampler differs by task (the
shipped model: group photos do best with the trained gate at guidance 1; children keep their child rate above
guidance 1 only with the paper's age window at sampling). The choice is made from measured scores by one rule,
:data:`FLOORS`: the highest FaceSim/mu among the scored settings whose naturalness metric keeps the task's floor at
the lower end of its 95% interval and whose judge Fréchet is within :data:`FRECHET_MARGIN` of the most natural of
them, and among those, settings that reach the issue's goal (:data:`GOALS`) first. ``idglow generate``,
``idglow serve`` and :class:`idglow.generate.pipeline.IdGlowPipeline` start from these settings; each can ask for the
trained ones.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

SAMPLER = "sampler.json"
TASKS = ("group", "age")
BENCHMARK_TASK = {"synth-group": "group", "synth-age": "age"}
# The floor a setting must keep to be recommended: the minimum bar of the identity issue (count accuracy on group
# photos; child rate when adults are drawn as children). Guidance raises FaceSim while it costs these.
FLOORS = {"group": ("count_accuracy", 0.9), "age": ("child_rate", 0.85)}
# How much less natural (judge Fréchet, set-level) than the task's most natural eligible setting a recommended one may
# be: the shipping criteria's limit. Guidance 1.25 on groups bought +0.006-0.007 FaceSim/mu for +1.5-1.6 Fréchet on
# the chosen and the unseen records alike (benchmarks/results/dpo-scale).
FRECHET_MARGIN = 1.0
# The identity issue's goal per task, ``metric: (at least, at most)``: a setting whose point estimates reach all of it
# (and which keeps the floor) is preferred to settings with more FaceSim that miss it. Identity above the goal buys
# less than children that look like children: guidance trades mini-adults for FaceSim, and the floor alone let the
# rule take that trade past the goal's mini-adult rate.
GOALS = {"group": {"facesim_norm": (0.7, None), "count_accuracy": (0.9, None)},
         "age": {"facesim_norm": (0.6, None), "child_rate": (0.9, None), "mini_adult_rate": (None, 0.05)}}


def floor_estimate(result: Mapping, metric: str) -> float:
    """The value of ``metric`` a setting must keep above its floor: the lower end of its 95% bootstrap interval, or
    the point estimate when the result has no interval.

    Why the lower end: the choice is made on 100 records, and the best-FaceSim setting whose point estimate just
    clears a floor is the one whose floor metric those records most likely overstate. Twice a setting chosen at child
    rate 0.872 fell to 0.816-0.830 on unseen records (benchmarks/results/longest-init-jitter).
    """
    interval = result.get("intervals", {}).get(metric)
    value = interval[0] if interval else result.get(metric)
    return float("-inf") if value is None else float(value)


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    """How to sample one task: identity guidance, ``KEY=VALUE`` gate overrides (see ``idglow generate --schedule``)
    and the sigma interval the guidance is limited to (None: every step)."""

    id_guidance: float = 1.0
    schedule: tuple[str, ...] = ()
    source: str = "the trained gate, guidance 1"
    id_guidance_interval: tuple[float, float] | None = None


TRAINED = SamplerSettings()


def schedule_overrides(trained: Mapping, used: Mapping) -> list[str]:
    """``["group.lambda_min=0.3", ...]``: where the gate config ``used`` (plain data) differs from ``trained``."""
    out = []
    for task in TASKS:
        for key, value in used.get(task, {}).items():
            if trained.get(task, {}).get(key) != value:
                out.append(f"{task}.{key}={json.dumps(value) if isinstance(value, bool) else value}")
    return out


def meets_goal(result: Mapping, task: str) -> bool:
    """Whether a result's point estimates reach every part of the task's goal (:data:`GOALS`); a missing metric misses."""
    for metric, (least, most) in GOALS[task].items():
        value = result.get(metric)
        if value is None or (least is not None and value < least) or (most is not None and value > most):
            return False
    return True


def _eligible(scores: Mapping[str, dict]) -> dict[str, list[tuple[str, dict]]]:
    """Per task, the ``(key, result)`` of the scored settings a sampler may be chosen from: sft-eval results with the
    identity branch on that keep the task's floor and are within :data:`FRECHET_MARGIN` of the most natural of those
    (a result without a Fréchet distance is not held to it)."""
    eligible: dict[str, list[tuple[str, dict]]] = {}
    for key, result in scores.items():
        task = BENCHMARK_TASK.get(Path(str(result.get("benchmark", key.split(",")[0]))).stem)
        if task is None or not result.get("identity", True) or "facesim_norm" not in result or "id_guidance" not in result:
            continue  # only results that say which sampler made them (sft-eval's) can recommend one
        if result.get("id_scale", 1.0) != 1.0:
            continue  # sampler.json does not carry an identity strength: such a setting could not be reproduced
        metric, floor = FLOORS[task]
        if metric in result and floor_estimate(result, metric) >= floor:
            eligible.setdefault(task, []).append((key, result))
    for task, found in eligible.items():
        distances = [r["frechet_judge"] for _, r in found if r.get("frechet_judge") is not None]
        if distances:
            limit = min(distances) + FRECHET_MARGIN
            eligible[task] = [(k, r) for k, r in found if r.get("frechet_judge") is None or r["frechet_judge"] <= limit]
    return eligible


def recommend(scores: Mapping[str, dict], trained_gate: Mapping) -> dict:
    """The ``sampler.json`` content: per task, among the scored settings whose floor metric keeps the task's floor
    (:data:`FLOORS`, read by :func:`floor_estimate`) and which are no more than :data:`FRECHET_MARGIN` less natural
    than the most natural of them, those that reach the task's goal (:func:`meets_goal`) if any do, and of them the
    one with the highest FaceSim/mu, with the scores it was chosen on; tasks without a qualifying score are left out.

    Args:
        scores: ``{key: result}`` as ``idglow train sft-eval`` writes them (``benchmark``, ``identity``,
            ``id_guidance``, ``facesim_norm``, the floor's metric, ``frechet_judge``, and ``schedule`` when the gate
            was overridden).
        trained_gate: the model's own gate config as plain data (overrides are read against it).
    """
    best: dict[str, tuple[tuple[bool, float], str, dict]] = {}
    for task, found in _eligible(scores).items():
        for key, result in found:
            rank = (meets_goal(result, task), result["facesim_norm"])
            if task not in best or rank > best[task][0]:
                best[task] = (rank, key, result)
    chosen = {}
    for task, ((goal, _), key, result) in best.items():
        metric = FLOORS[task][0]
        chosen[task] = {
            "id_guidance": float(result.get("id_guidance", 1.0)),
            **({"id_guidance_interval": list(result["id_guidance_interval"])} if result.get("id_guidance_interval") else {}),
            "schedule": schedule_overrides(trained_gate, result.get("schedule", trained_gate)),
            "chosen_from": key,
            "facesim_norm": result["facesim_norm"],
            "facesim_norm_interval": result.get("intervals", {}).get("facesim_norm"),
            metric: result[metric],
            f"{metric}_interval": result.get("intervals", {}).get(metric),
            "meets_goal": goal,
            **{m: result.get(m) for m in GOALS[task] if m not in ("facesim_norm", metric)},
            "frechet_judge": result.get("frechet_judge"),
            "records": result.get("images"),
            "steps": result.get("steps"),
        }
    rule = "; ".join(f"{t}: highest FaceSim/mu with {m} >= {f} at the lower end of its 95% interval and judge "
                     f"Fréchet within {FRECHET_MARGIN:g} of the most natural such setting, preferring settings whose "
                     f"estimates reach {_goal_text(t)}" for t, (m, f) in FLOORS.items())
    return {"rule": rule, "candidates": len(scores), **chosen}


def read_sampler(folder: str | Path) -> dict[str, SamplerSettings]:
    """The recommended settings of a model folder, by task; ``{}`` when it has no ``sampler.json`` (a training run).

    Raises:
        ValueError: naming the file and field when ``sampler.json`` is malformed.
    """
    path = Path(folder) / SAMPLER
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    settings = {}
    for task in TASKS:
        if task not in data:
            continue
        entry = data[task]
        guidance, schedule = entry.get("id_guidance", 1.0), entry.get("schedule", [])
        if not isinstance(guidance, (int, float)) or guidance < 0:
            raise ValueError(f"{path}: {task}.id_guidance: expected a number >= 0, got {guidance!r}")
        if not isinstance(schedule, list) or not all(isinstance(s, str) and "=" in s for s in schedule):
            raise ValueError(f"{path}: {task}.schedule: expected a list of KEY=VALUE strings, got {schedule!r}")
        interval = entry.get("id_guidance_interval")
        if interval is not None and not (isinstance(interval, list) and len(interval) == 2
                                         and all(isinstance(x, (int, float)) for x in interval)
                                         and 0 <= interval[0] <= interval[1] <= 1):
            raise ValueError(f"{path}: {task}.id_guidance_interval: expected [sigma_lo, sigma_hi] with "
                             f"0 <= sigma_lo <= sigma_hi <= 1, got {interval!r}")
        settings[task] = SamplerSettings(float(guidance), tuple(schedule),
                                         f"recommended by {path} for {task} ({entry.get('chosen_from', 'scores')})",
                                         None if interval is None else (float(interval[0]), float(interval[1])))
    return settings


def settings_for(recommended: Mapping[str, SamplerSettings], tasks: list[str] | tuple[str, ...]) -> tuple[list[float], list[str]]:
    """Per-sample guidance and the merged gate overrides for a call over ``tasks`` (one task per sample): each
    task's overrides only touch its own schedule (``group.*``, ``age.*``), so merging them is safe."""
    guidance = [recommended.get(t, TRAINED).id_guidance for t in tasks]
    schedule: list[str] = []
    for task in dict.fromkeys(tasks):
        schedule += [s for s in recommended.get(task, TRAINED).schedule if s not in schedule]
    return guidance, schedule


def intervals_for(recommended: Mapping[str, SamplerSettings], tasks: Sequence[str]) -> list[tuple[float, float]] | None:
    """Per-sample guidance intervals for a call over ``tasks`` (``(0, 1)``, every step, for a task without one), or
    None when no task limits its guidance."""
    found = [recommended.get(t, TRAINED).id_guidance_interval for t in tasks]
    if all(interval is None for interval in found):
        return None
    return [(0.0, 1.0) if interval is None else interval for interval in found]


def score_key(benchmark: str, result: dict, trained_gate: dict | None = None) -> str:
    """``synth-group`` for the default sampler; ``synth-group, id_guidance 1.5, gate group.lambda_min=0.3`` otherwise
    (the gate overrides read against ``trained_gate``), so results of one benchmark under several settings sit side by
    side in provenance.json."""
    settings = []
    if result.get("id_guidance", 1.0) != 1.0:
        settings.append(f"id_guidance {result['id_guidance']:g}")
        if result.get("id_guidance_interval"):
            settings[-1] += " at sigma {:g}-{:g}".format(*result["id_guidance_interval"])
    if result.get("id_scale", 1.0) != 1.0:
        settings.append(f"identity strength {result['id_scale']:g}")
    if not result.get("identity", True):
        settings.append("identity off")
    if "schedule" in result:
        overrides = schedule_overrides(trained_gate, result["schedule"]) if trained_gate is not None else []
        settings.append(f"gate {' '.join(overrides)}" if overrides else "gate override")
    return ", ".join([benchmark, *settings])


def read_score_folders(folders: Sequence[str | Path], trained_gate: dict | None) -> dict[str, dict]:
    """Every ``<benchmark>.json`` result of ``idglow train sft-eval`` output folders, keyed by :func:`score_key`."""
    scores = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            result = json.loads(path.read_text())
            scores[score_key(path.stem, result, trained_gate)] = result
    if folders and not scores:
        raise FileNotFoundError(f"--scores: no JSON results in {', '.join(map(str, folders))} (an `idglow train sft-eval` --out)")
    return scores


def _goal_text(task: str) -> str:
    parts = [f"{m} {'>=' if least is not None else '<='} {least if least is not None else most}"
             for m, (least, most) in GOALS[task].items()]
    return ", ".join(parts)
