"""Diagnosis after stage 1 was read (not part of `criteria.md`): why does the close base's count accuracy from noise
fall to 0.46? For the same 100 synth-group records of groups of 1-2 people and the same noise seeds as
`identity_cap.py` at sigma 1, the number of faces each cast's detector finds against the number the prompt asks for
(under / exact / over), both base models; and contact sheets of the close base's first 8 miscounted images and of its
first 8 images, with the detector's boxes in red.

    python benchmarks/results/close-cast/count_check.py      # about 4 minutes here

`count_check.json` and `count_check.png` were made on stage 1's close base (3,539 steps: `--close-base
runs/synth-base-close`, or `assets/base-close` as of commit 07f2d98); `assets/base-close` is now stage 1b's base
(criteria-stage1b.md), read with `--out count_check-long`.
"""

import argparse
import json
import runpy
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CASES = {"default": ("data/cast", "assets/base", "assets/judges"),
         "close": ("data/cast-close", "assets/base-close", "assets/judges-close")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--close-base", default=CASES["close"][1],
                        help="the close-up cast's base model (a model folder or a run)")
    parser.add_argument("--out", default="count_check", help="names of the .json and .png written beside this script")
    return parser.parse_args()


@torch.no_grad()
def main() -> None:
    from idglow.cast.crops import to_uint8
    from idglow.cast.judge_training import load_judges

    args = parse_args()
    cases = {**CASES, "close": (CASES["close"][0], args.close_base, CASES["close"][2])}
    cap = runpy.run_path(str(ROOT / "benchmarks" / "identity_cap.py"))
    result, sheet = {}, []
    for name, (cast, base, judges) in cases.items():
        manifest = ROOT / cast / "synth-group.jsonl"
        records, refs = cap["chosen_records"](manifest, 100, 2)
        targets = cap["_targets"](manifest, records)
        images = cap["Sampler"](str(ROOT / base), None, None)(records, refs, targets, 1.0, 20)
        detector = load_judges(ROOT / judges)["detector"]
        boxes = [detector.detect(image[None])[0][:, :4] for image in images]  # one detection pass per image
        found = [len(b) for b in boxes]
        asked = [r["expected"]["count"] for r in records]
        tally = Counter("under" if f < a else "over" if f > a else "exact" for f, a in zip(found, asked))
        result[name] = {"records": len(records), **{k: tally.get(k, 0) for k in ("under", "exact", "over")},
                        "found_by_asked": {str(a): Counter(f for f, x in zip(found, asked) if x == a)
                                           for a in sorted(set(asked))}}
        print(name, json.dumps(result[name]), flush=True)
        if name == "close":
            drawn = [with_boxes(to_uint8(image), b) for image, b in zip(images, boxes)]
            boxed, sheet = drawn[:8], [d for d, f, a in zip(drawn, found, asked) if f != a][:8]
    result["close_base"] = args.close_base
    (HERE / f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    if sheet:
        Image.fromarray(np.concatenate(sheet, axis=1)).save(HERE / f"{args.out}.png")
    Image.fromarray(np.concatenate(boxed, axis=1)).save(HERE / f"{args.out}-first8.png")


def with_boxes(image: np.ndarray, boxes: torch.Tensor) -> np.ndarray:
    """An HxWx3 uint8 image with face boxes ([N, 4] as x0, y0, x1, y1 pixels) drawn in red."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for box in boxes.tolist():
        draw.rectangle(box, outline=(255, 0, 0))
    return np.asarray(picture)


if __name__ == "__main__":
    sys.exit(main())
