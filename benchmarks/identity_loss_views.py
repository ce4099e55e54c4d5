"""Cost of the identity loss, and of its jittered, blurred views, in one SFT training step (issue 19).

One SFT trainer (the demo's recipe: identity branch + LoRA rank 8 on the shipped base, batch 16, via
``cpu_speed.demo_sft_trainer``) and one fixed batch, timed in three variants interleaved round by round, each round
with the same noise, so drift hits every variant alike:

- ``flow only``: ``identity_loss.weight 0`` (the faces of x0_hat are still embedded, without gradient, for the log);
- ``plain``: weight 0.3 on the exact face crop (the default);
- ``views``: weight 0.3, the mean over ``--views`` crops jittered by +-8% in centre and size, blurred (sigma 1).

A step is forward, loss, backward and the AdamW update. Reported: median seconds and the ratio to ``flow only``.

With ``--separation MANIFEST...`` it instead measures what each setting of the loss sees on true renders: the mean
similarity of each subject's face in up to 128 scenes to its own reference and to another scene's subject (the
loss's targets are blurred alike), for the exact crop and 4 jittered views, sharp and blurred.

    python benchmarks/identity_loss_views.py [--rounds 7] [--views 4] [--json out.json]
    python benchmarks/identity_loss_views.py --separation data/cast/sft-age-heldout.jsonl data/cast/sft-group-heldout.jsonl

Run it on a quiet machine: two threads, nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from cpu_speed import demo_sft_trainer


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7, help="timed steps of every variant; median reported")
    p.add_argument("--views", type=int, default=4, help="crops per face in the `views` variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--separation", nargs="+", metavar="MANIFEST", help="SFT manifests of true renders: measure "
                   "own- and other-reference similarity per setting instead of timing")
    return p.parse_args()


def variants(views: int) -> dict[str, dict]:
    """Identity-loss settings of each timed variant."""
    plain = {"weight": 0.3, "views": 1, "view_shift": 0.0, "view_scale": 0.0, "blur": 0.0}
    return {"flow only": {**plain, "weight": 0.0}, "plain": plain,
            "views": {**plain, "views": views, "view_shift": 0.08, "view_scale": 0.08, "blur": 1.0}}


def separation(manifests: list[str], views: int) -> list[dict]:
    """Own- and other-reference similarity of true renders' faces under each setting of the loss."""
    from idglow.cast.judge_training import load_judges
    from idglow.data.subjects import SubjectScenes
    from idglow.faces.identity_loss import gaussian_blur, subject_similarity
    from idglow.faces.references import frozen_embeddings
    from idglow.utils.defaults import JUDGES

    encoder, rows = load_judges(JUDGES)["encoder"], []
    for manifest in manifests:
        data = SubjectScenes([manifest], progress=False)
        scenes = data.scene_batch(torch.arange(min(128, len(data))))
        for blur in (0.0, 1.0):
            refs = frozen_embeddings(encoder, gaussian_blur(scenes["crops"], blur))
            pair = torch.stack([refs, refs.roll(1, 0)])  # own reference, another subject's
            for n, jitter in ((1, 0.0), (views, 0.08)):
                with torch.no_grad():
                    sim = subject_similarity(scenes["images"], scenes["boxes"], scenes["rows"], pair, encoder, n,
                                             jitter, jitter, blur, torch.Generator().manual_seed(0))
                rows.append({"manifest": manifest, "blur": blur, "views": n, "jitter": jitter,
                             "own": sim[0].mean().item(), "other": sim[1].mean().item(), "subjects": sim.shape[1]})
    print("| manifest | blur | views | own reference | another subject |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['manifest']} | {r['blur']} | {r['views']} | {r['own']:.3f} | {r['other']:.3f} |")
    return rows


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.separation:
        result = {"separation": separation(args.separation, args.views)}
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return
    settings = variants(args.views)
    with tempfile.TemporaryDirectory() as work:
        trainer = demo_sft_trainer(Path(work))
        batch = trainer.order.next()
        times: dict[str, list[float]] = {name: [] for name in settings}
        for r in range(args.rounds + 1):  # round 0 warms up
            for name, values in settings.items():
                for key, value in values.items():
                    setattr(trainer.cfg.identity_loss, key, value)
                torch.manual_seed(r)
                began = time.perf_counter()
                trainer._loss(batch)["loss"].mean().backward()
                trainer.optimizer.step()
                trainer.optimizer.zero_grad(set_to_none=True)
                if r:
                    times[name].append(time.perf_counter() - began)
            print(f"round {r}/{args.rounds} done", flush=True)
    flow = statistics.median(times["flow only"])
    rows = [{"variant": name, **settings[name], "median_s": statistics.median(values), "min_s": min(values),
             "max_s": max(values), "vs_flow_only": statistics.median(values) / flow, "rounds": len(values)}
            for name, values in times.items()]
    print("\n| variant | median s/step | x flow only | min-max s |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['variant']} | {row['median_s']:.3f} | {row['vs_flow_only']:.3f} | {row['min_s']:.3f}-{row['max_s']:.3f} |")
    result = {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                          "torch": torch.__version__}, "batch": len(batch), "rows": rows}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
