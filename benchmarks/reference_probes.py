"""What the identity branch is given: which identity factors its frozen reference embedding carries (issue 19).

The shipped model conditions on the cast's frozen ``encoder`` embedding of each reference crop. If that embedding
does not carry a factor (skin tone, hair colour, ...), no training of the branch can bind it. Linear probes
(:mod:`idglow.eval.probes`) are fitted on embeddings of true-render faces of *training* identities and read on the
reference crops of held-out benchmark records, for the ``encoder`` (what the branch reads) and for the evaluation
``judge`` (what FaceSim reads), side by side.

    python benchmarks/reference_probes.py --cast data/cast [--limit 100] [--json benchmarks/results/reference_probes.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from identity_cap import BENCHMARKS, probe_training_faces, skin_by_tone

EMBEDDERS = ("encoder", "judge")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cast", required=True, help="cast folder (idglow synth build) with benchmarks and SFT manifests")
    p.add_argument("--judges", default="assets/judges", help="the cast's judges: encoder (conditioning) and judge (scoring)")
    p.add_argument("--limit", type=int, default=100, help="records per benchmark (evenly spread over group sizes)")
    p.add_argument("--probe-faces", type=int, default=4000, help="training-identity faces the probes are fitted on")
    p.add_argument("--json", default="benchmarks/results/reference_probes.json")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


@torch.no_grad()
def reference_features(manifest: Path, limit: int, embedder) -> tuple[torch.Tensor, list[int]]:
    """Embeddings [M, D] of every reference crop of ``limit`` records, and whose each is [M]."""
    from idglow.eval.run_eval import _records
    from idglow.faces.references import frozen_embeddings

    records, refs = _records(manifest, limit)
    crops = torch.cat(list(refs))
    ids = [i for r in records for i in r["expected"]["identities"]]
    if len(ids) != len(crops):
        raise ValueError(f"{manifest}: {len(crops)} reference crops for {len(ids)} identities")
    return frozen_embeddings(embedder, crops), ids


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from idglow.cast.factors import sample_identity
    from idglow.cast.judge_training import load_judges
    from idglow.eval.probes import FactorProbes

    start = time.perf_counter()
    judges = load_judges(args.judges)
    seed = json.loads((Path(args.cast) / "build.json").read_text())["config"]["world"]["seed"]
    table, tones = {}, {}
    for name in EMBEDDERS:
        feats, ids = probe_training_faces(Path(args.cast), judges[name], args.probe_faces)
        probes = FactorProbes(feats, [sample_identity(seed, i) for i in ids])
        for bench in BENCHMARKS:
            refs, who = reference_features(Path(args.cast) / f"{bench}.jsonl", args.limit, judges[name])
            people = [sample_identity(seed, i) for i in who]
            table[f"{bench}/{name}"] = {"references": len(who), **probes.accuracy(refs, people)}
            tones[f"{bench}/{name}"] = skin_by_tone(probes, refs, people)
    result = {"command": "python " + " ".join(map(shlex.quote, sys.argv)), "records_per_benchmark": args.limit,
              "training_faces": args.probe_faces, "accuracy": table, "skin_by_tone": tones,
              "seconds": round(time.perf_counter() - start, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    from idglow.eval.probes import FACTORS

    cols = list(table)
    print("| factor | majority class | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
    for factor in FACTORS:
        print(f"| {factor} | {table[cols[0]][factor]['chance']:.2f} | "
              + " | ".join(f"{table[c][factor]['accuracy']:.2f}" for c in cols) + " |")
    print("\n| skin tone (0 = lightest): exact / mean shift | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for t in tones[cols[0]]:
        print(f"| {t} | " + " | ".join(f"{tones[c][t]['exact']:.2f} / {tones[c][t]['mean_shift']:+.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
