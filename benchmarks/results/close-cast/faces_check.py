"""Do the close judges read eyes worse because they saw fewer faces? (`criteria-faces.md`, written before this ran)

One more arm of `crop_check.py`: the close-framing judge at 32 px trained on 20,000 scenes (about as many faces as
the default judge's 12,000 scenes of 1-4 people), read on the same held-out scenes and probes, printed beside
`crop_check.json`'s arms.

    python benchmarks/results/close-cast/faces_check.py   # writes faces_check.json beside this file
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from crop_check import JudgeTrainingConfig, decision, print_table, read_arm  # noqa: E402

ARM, SCENES = "close@32, 20k scenes", 20000


def main() -> None:
    arms = json.loads((HERE / "crop_check.json").read_text())["arms"]
    cfg = dataclasses.replace(JudgeTrainingConfig(), train_scenes=SCENES)
    arm = read_arm(128, 2, 32, cfg, {})
    print(ARM, json.dumps(arm), flush=True)
    arms[ARM] = arm
    print_table(arms)
    verdict = decision(arms, ARM, "The number of faces", "")
    print("\n" + verdict)
    (HERE / "faces_check.json").write_text(json.dumps({"arm": ARM, "result": arm, "decision": verdict}, indent=2) + "\n")


if __name__ == "__main__":
    main()
