"""Issue 19: identity guidance in a limited sigma interval on the shipped model (criteria.md, chain.sh).

    python tables.py pick   # step 1: the repo's sampler rule over the chosen-record scores -> pick.txt
    python tables.py        # results.md: the chosen-record table, the pick, and its unseen records, paired

Chosen-record scores live in chosen/<name>/, unseen ones in unseen/<name>-seed<s>/ (both copied there by chain.sh).
"""

import json
import sys
from pathlib import Path

from idglow.eval.pooling import difference_text, estimate_text, folder_difference, pooled_summary, read_scores
from idglow.runs.sampler import recommend

HERE = Path(__file__).parent
RESULTS = HERE.parent
BENCH = "synth-group"
SEEDS = (0, 1000)
SHIPPED_KEYS = {"synth-group": "shipped sampler: guidance 1 at every step (the trained sampler)",
                "synth-group, id_guidance 1.25": "guidance 1.25 at every step"}
AGAINST = [("the shipped group sampler (guidance 1)", "sampler_confirm/synth-group"),
           ("the shipped weights at guidance 1.25 at every step", "dpo-scale/scale1.5/sampler_confirm/synth-group")]
KEYS = ("facesim_norm", "identification", "count_accuracy", "leakage_rate")


def chosen_scores() -> dict[str, dict]:
    """``{label: sft-eval summary}`` of every group setting scored on the chosen records."""
    provenance = json.loads((RESULTS.parent.parent / "assets/idglow/provenance.json").read_text())["scores"]
    scores = {label: provenance[key] for key, label in SHIPPED_KEYS.items()}
    for folder in sorted((HERE / "chosen").glob("g*")):
        scores[folder.name] = json.loads((folder / f"{BENCH}.json").read_text())
    return scores


def setting(result: dict) -> str:
    """``2:0.7:1`` for a result with an interval (what chain.sh reads), ``none`` without."""
    interval = result.get("id_guidance_interval")
    return "none" if not interval else "{:g}:{:g}:{:g}".format(result["id_guidance"], *interval)


def pick(scores: dict[str, dict]) -> tuple[str, dict]:
    chosen = recommend(scores, {})["group"]
    return chosen["chosen_from"], scores[chosen["chosen_from"]]


def chosen_table(scores: dict[str, dict], picked: str) -> list[str]:
    lines = ["## Step 1: chosen records (`--limit 100`, noise seed 0)\n",
             "| setting | guidance | interval | " + " | ".join(KEYS) + " | frechet_judge |",
             "|---|---|---|" + "---|" * (len(KEYS) + 1)]
    for name, r in scores.items():
        interval = r.get("id_guidance_interval")
        label = f"**{name}** (picked)" if name == picked else name
        lines.append(f"| {label} | {r['id_guidance']:g} | " + ("{:g}-{:g}".format(*interval) if interval else "every step")
                     + " | " + " | ".join(estimate_text(r, k) for k in KEYS) + f" | {r['frechet_judge']:.2f} |")
    return lines + [""]


def unseen_table(name: str) -> list[str]:
    mine = [HERE / "unseen" / f"{name}-seed{s}" for s in SEEDS]
    if not all((f / f"{BENCH}.scores.jsonl").is_file() for f in mine):
        return [f"Step 2: {name} on the unseen records: not scored yet\n"]
    mu = json.loads((mine[0] / f"{BENCH}.json").read_text())["mu_real"]
    pooled = pooled_summary([read_scores(f, BENCH) for f in mine], mu)
    lines = [f"## Step 2: {name} on the unseen records (`--limit 100 --complement`, noise seeds 0 and 1000 pooled)\n",
             "| | " + " | ".join(KEYS) + " | frechet_judge |", "|---|" + "---|" * (len(KEYS) + 1),
             "| this setting | " + " | ".join(estimate_text(pooled, k) for k in KEYS) + " | – |"]
    verdict = {}
    for label, other in AGAINST:
        theirs = [RESULTS / f"{other}-seed{s}" for s in SEEDS]
        diffs = {k: folder_difference(mine, theirs, BENCH, k) for k in (*KEYS, "frechet_judge")}
        lines.append(f"| minus {label}, paired | " + " | ".join(difference_text(diffs[k]) for k in diffs) + " |")
        verdict.setdefault("facesim", diffs["facesim_norm"]["interval"][0] > 0)
        verdict.setdefault("frechet", diffs["frechet_judge"]["difference"] <= 1.0)
    verdict["count"] = pooled["intervals"]["count_accuracy"][0] >= 0.9
    held = all(verdict.values())
    lines += ["", "Criteria (criteria.md), against the shipped group sampler: FaceSim/mu difference's lower end > 0: "
              f"{'held' if verdict['facesim'] else 'failed'}; Fréchet difference <= +1: "
              f"{'held' if verdict['frechet'] else 'failed'}; count accuracy's lower end >= 0.9: "
              f"{'held' if verdict['count'] else 'failed'}. **{'Ship it' if held else 'Not shipped'}.**", ""]
    return lines


def main() -> None:
    scores = chosen_scores()
    picked, result = pick(scores)
    if sys.argv[1:] == ["pick"]:
        (HERE / "pick.txt").write_text(setting(result) + "\n")
        print(f"picked {picked}: {setting(result)}")
        return
    lines = ["Identity guidance in a limited sigma interval, the shipped weights (`assets/idglow`), synth-group; one "
             "training seed; 95% bootstrap intervals over records, paired where two settings are compared; judge "
             "Fréchet differences: the mean of the seeds'. Criteria fixed before scoring: `criteria.md`. Written by "
             "`tables.py`.\n", *chosen_table(scores, picked)]
    if setting(result) != "none":
        lines += unseen_table(picked)
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
