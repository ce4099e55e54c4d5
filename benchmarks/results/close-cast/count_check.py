"""Diagnosis after stage 1 was read (not part of `criteria.md`): why does the close base's count accuracy from noise
fall to 0.46? For the same 100 synth-group records of groups of 1-2 people and the same noise seeds as
`identity_cap.py` at sigma 1, the number of faces each cast's detector finds against the number the prompt asks for
(under / exact / over), both base models; and a contact sheet of the close base's first 8 miscounted images with the
detector's boxes in red.

    python benchmarks/results/close-cast/count_check.py      # about 4 minutes here
"""

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


@torch.no_grad()
def main() -> None:
    from idglow.cast.crops import to_uint8
    from idglow.cast.judge_training import load_judges

    cap = runpy.run_path(str(ROOT / "benchmarks" / "identity_cap.py"))
    result, sheet = {}, []
    for name, (cast, base, judges) in CASES.items():
        manifest = ROOT / cast / "synth-group.jsonl"
        records, refs = cap["chosen_records"](manifest, 100, 2)
        targets = cap["_targets"](manifest, records)
        images = cap["Sampler"](str(ROOT / base), None, None)(records, refs, targets, 1.0, 20)
        detector = load_judges(ROOT / judges)["detector"]
        found = [len(detector.detect(image[None])[0]) for image in images]
        asked = [r["expected"]["count"] for r in records]
        tally = Counter("under" if f < a else "over" if f > a else "exact" for f, a in zip(found, asked))
        result[name] = {"records": len(records), **{k: tally.get(k, 0) for k in ("under", "exact", "over")},
                        "found_by_asked": {str(a): Counter(f for f, x in zip(found, asked) if x == a)
                                           for a in sorted(set(asked))}}
        print(name, json.dumps(result[name]), flush=True)
        if name == "close":
            for image, f, a in zip(images, found, asked):
                if f != a and len(sheet) < 8:
                    picture = Image.fromarray(to_uint8(image))
                    draw = ImageDraw.Draw(picture)
                    for box in detector.detect(image[None])[0][:, :4].tolist():
                        draw.rectangle(box, outline=(255, 0, 0))
                    sheet.append(np.asarray(picture))
    (HERE / "count_check.json").write_text(json.dumps(result, indent=2) + "\n")
    if sheet:
        Image.fromarray(np.concatenate(sheet, axis=1)).save(HERE / "count_check.png")


if __name__ == "__main__":
    sys.exit(main())
