"""Does the judges' 32 px crop cost the close-up cast its eyes? (`criteria-crop.md`, written before this ran)

Trains the FaceSim judge (arch ``plain``, the judge's seed, ``idglow synth train-judges``'s recipe) on three arms:
default framing at 32 px crops, close framing at 32 px, close framing at 64 px; reads each on held-out identities
(verification AUC, linear factor probes on adult faces) and prints the decision.

    python benchmarks/results/close-cast/crop_check.py   # writes crop_check.json beside this file
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from idglow.cast.config import WorldConfig
from idglow.cast.judge_training import JudgeTrainingConfig, _judge_pools, evaluate_embedder, train_embedder
from idglow.cast.scenes import identities
from idglow.eval.probes import FactorProbes

HERE = Path(__file__).parent
ARMS = {"default@32": (64, 4, 32), "close@32": (128, 2, 32), "close@64": (128, 2, 64)}  # height, max_people, crop
EYES = ("eye_spacing", "eye_colour", "eye_size", "mouth_width")
PROBE_FACES = 4000


def adults(pool) -> torch.Tensor:
    """Indices of faces that are adults in face and body (the cap's synth-group probe reads adults)."""
    return torch.nonzero((pool.child_face == 0) & (pool.child_body == 0)).flatten()


def read_arm(height: int, max_people: int, crop: int, cfg: JudgeTrainingConfig, pools: dict) -> dict:
    """Train the judge on one arm's training pool and read it on the held-out pool."""
    world = WorldConfig(height=height, max_people=max_people)
    if (height, max_people) not in pools:  # the two close arms share their scenes
        pools[(height, max_people)] = _judge_pools(world.seed, world.width, height, world.ids("train"),
                                                   world.ids("heldout"), cfg, max_people)
    train, held = pools[(height, max_people)]
    start = time.perf_counter()
    judge = train_embedder(train.crops(size=crop), train.identity, "plain", cfg.seed + 23, cfg)
    seconds = time.perf_counter() - start
    true = held.child_face == held.child_body  # as train_all's report: mini-adults are not a true render
    crops = held.crops(size=crop)
    result = {"train_seconds": round(seconds, 1), **evaluate_embedder(judge, crops[true], held.identity[true],
                                                                      held.child_face[true])}
    with torch.no_grad():
        fit = adults(train)[:PROBE_FACES]
        probes = FactorProbes(judge(train.crops(fit, size=crop)), identities(world.seed, train.identity[fit]))
        read = adults(held)
        accuracy = probes.accuracy(judge(crops[read]), identities(world.seed, held.identity[read]))
    result["probe_faces"], result["held_out_adult_faces"] = len(fit), len(read)
    result["probes"] = {name: round(v["accuracy"], 4) for name, v in accuracy.items()}
    return result


def decision(arms: dict, arm: str = "close@64", cause: str = "The crop", bar_name: str = "close@64 ") -> str:
    """The pre-registered rule: ``arm`` reads eye spacing >= close@32 + 0.05 and >= default@32 - 0.02."""
    eyes = {name: a["probes"]["eye_spacing"] for name, a in arms.items()}
    holds = eyes[arm] >= eyes["close@32"] + 0.05 and eyes[arm] >= eyes["default@32"] - 0.02
    return (f"eye spacing: default@32 {eyes['default@32']:.3f}, close@32 {eyes['close@32']:.3f}, {arm} "
            f"{eyes[arm]:.3f}. {cause} is {'a' if holds else 'not the'} cause "
            f"(bar: {bar_name}>= {eyes['close@32'] + 0.05:.3f} and >= {eyes['default@32'] - 0.02:.3f}).")


def print_table(arms: dict) -> None:
    """Markdown: AUC and the eye-level and coarse factor probes, one column per arm."""
    print("\n| factor | " + " | ".join(arms) + " |\n|---|" + "---|" * len(arms))
    for factor in ("auc", *EYES, "skin", "hair_style", "face_aspect"):
        cells = [arms[a][factor] if factor == "auc" else arms[a]["probes"][factor] for a in arms]
        print(f"| {factor} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


def main() -> None:
    torch.manual_seed(0)
    cfg, pools, arms = JudgeTrainingConfig(), {}, {}
    for name, (height, max_people, crop) in ARMS.items():
        arms[name] = read_arm(height, max_people, crop, cfg, pools)
        print(name, json.dumps(arms[name]), flush=True)
    print_table(arms)
    verdict = decision(arms)
    print("\n" + verdict)
    (HERE / "crop_check.json").write_text(json.dumps({"arms": arms, "decision": verdict}, indent=2) + "\n")


if __name__ == "__main__":
    main()
