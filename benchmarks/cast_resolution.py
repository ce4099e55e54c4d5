"""Why the cast renders at 128x64: face sizes, face overlaps and render speed per candidate resolution.

For each resolution and group size 1-4, renders random groups (adults and children) and reports the
median face-box width and height in pixels, the share of scenes where two faces overlap, and
single-process render throughput. Faces must stay >= 16 px (the smallest crop the identity encoder
and judges take) and must not overlap, for every group size.

    python benchmarks/cast_resolution.py [--scenes 200] [--sizes 64x64,96x64,128x64,128x128]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from idglow.cast.scenes import identities, sample_group


def overlaps(boxes: list[list[float]]) -> bool:
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
                return True
    return False


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=200, help="scenes per resolution and group size")
    p.add_argument("--sizes", default="64x64,96x64,128x64,128x128")
    args = p.parse_args()
    print("| W x H | people | face width px (median) | face height px (median) | scenes with overlapping faces | scenes/s |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        for n in range(1, 5):
            rng = np.random.default_rng(n)
            widths, heights, overlapping = [], [], 0
            start = time.perf_counter()
            for s in range(args.scenes):
                people = identities(0, rng.choice(3000, size=n, replace=False))
                scene = sample_group(rng, people, "child" if s % 2 else "adult", w, h)
                widths += [b[2] - b[0] for b in scene.boxes]
                heights += [b[3] - b[1] for b in scene.boxes]
                overlapping += overlaps(scene.boxes)
            rate = args.scenes / (time.perf_counter() - start)
            print(f"| {w} x {h} | {n} | {np.median(widths):.1f} | {np.median(heights):.1f} | "
                  f"{overlapping / args.scenes:.1%} | {rate:.0f} |")


if __name__ == "__main__":
    main()
