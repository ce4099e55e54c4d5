"""Issue 19, exploratory: check_results.md from check_judges.sh: the lever's group gain over its baseline as the judge
reads it and as two embedders that nothing trained against read it (raw FaceSim, paired over the same 100 chosen
records, noise seed 0, one training seed each). Re-run: python check_tables.py"""

import json
from pathlib import Path

from idglow.eval.pooling import paired_difference, read_scores

HERE = Path(__file__).parent
SCORERS = {  # who scores: (baseline folder, lever folder, what it is)
    "judge": (HERE.parent / "idloss-high" / "baseline-group", HERE / "lever-group",
              "the evaluation judge (plain, flattened head)"),
    "plain": (HERE / "check-plain-baseline", HERE / "check-plain-lever", "a second plain embedder, seed 99"),
    "resnet": (HERE / "check-resnet-baseline", HERE / "check-resnet-lever", "a second resnet embedder (pooled), seed 99"),
}


def main() -> None:
    lines = ["The ensemble lever's synth-group faces against its baseline's (`check_judges.sh`), scored by the judge and "
             "by two embedders trained on training identities that neither the loss nor the evaluation uses; raw "
             "FaceSim, 100 chosen records, noise seed 0, **one training seed each**; 95% bootstrap interval paired over "
             "records. Written by `check_tables.py`.\n",
             "| scorer | baseline | lever | lever minus baseline | relative |", "|---|---|---|---|---|"]
    for name, (baseline, lever, what) in SCORERS.items():
        if not (lever / "synth-group.scores.jsonl").is_file():
            lines.append(f"| {what} | not scored yet | | | |")
            continue
        raw = {who: json.loads((folder / "synth-group.json").read_text())["facesim"]
               for who, folder in (("baseline", baseline), ("lever", lever))}
        diff = paired_difference([read_scores(lever, "synth-group")], [read_scores(baseline, "synth-group")],
                                 "facesim_norm", 1.0)  # mu_real 1: raw FaceSim
        lines.append(f"| {what} | {raw['baseline']:.3f} | {raw['lever']:.3f} | "
                     "{:+.3f} [{:+.3f}, {:+.3f}] | {:+.0%} |".format(diff["difference"], *diff["interval"],
                                                                   raw["lever"] / raw["baseline"] - 1))
    (HERE / "check_results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
