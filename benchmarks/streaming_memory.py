"""Memory of an SFT training set held in memory vs streamed from shards (``data.stream``), at 1x and 10x the data.

Packs the first N scenes of the cast's SFT training manifests into webdataset shards (N = ``--scenes`` and 10x that),
then, each in its own process, loads the set and reads one epoch of batches (``scene_batch``, what SFT reads per step)
in memory (:class:`SubjectScenes`) or streamed (:class:`StreamingScenes`). Reports the growth of the process's peak
RSS over its RSS after imports, and the seconds the epoch took.

    python benchmarks/streaming_memory.py [--cast data/cast] [--scenes 800] [--out benchmarks/results/streaming_memory]

Writes ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(mode: str, shards: list[str], batch: int) -> dict:
    """One epoch of ``scene_batch`` over ``shards``, in memory or streamed; RSS growth in MiB and seconds."""
    import torch

    from idglow.data.images import EpochOrder
    from idglow.data.streaming import StreamingScenes
    from idglow.data.subjects import SubjectScenes

    before = _rss_mib()
    start = time.perf_counter()
    data = StreamingScenes(shards) if mode == "stream" else SubjectScenes(shards, progress=False)
    order = EpochOrder(len(data), batch, seed=0)
    for _ in range(len(data) // batch):
        scenes = data.scene_batch(order.next())
        assert torch.isfinite(scenes["images"]).all()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "scenes": len(data), "rss_growth_mib": round(peak - before, 1),
            "seconds": round(time.perf_counter() - start, 1)}


def pack(cast: Path, scenes: int, out: Path) -> list[str]:
    """Shards of the first ``scenes`` records of the cast's group and age SFT manifests (half each)."""
    from idglow.data.shards import write_shards

    patterns = []
    for name in ("sft-group-train", "sft-age-train"):
        lines = (cast / f"{name}.jsonl").read_text().splitlines()[: scenes // 2]
        subset = cast / f".streaming-bench-{name}-{scenes}.jsonl"  # next to the images its records name
        subset.write_text("\n".join(lines) + "\n")
        try:
            written = write_shards(subset, out / str(scenes), per_shard=1000)
        finally:
            subset.unlink()
        patterns.append(str(out / str(scenes) / f"{subset.stem}-{{000000..{len(written) - 1:06d}}}.tar"))
    return patterns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cast", default="data/cast", help="the cast (idglow synth build --out data/cast)")
    parser.add_argument("--scenes", type=int, default=800, help="scenes of the 1x set (the 10x set has ten times more)")
    parser.add_argument("--batch", type=int, default=16, help="scenes per batch")
    parser.add_argument("--out", default="benchmarks/results/streaming_memory")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # child: MODE BATCH SHARDS...
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[2:], int(args.measure[1]))))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # the shards: 10x the data, not kept
        for scenes in (args.scenes, 10 * args.scenes):
            shards = pack(Path(args.cast), scenes, Path(tmp))
            for mode in ("memory", "stream"):
                child = subprocess.run([sys.executable, __file__, "--measure", mode, str(args.batch), *shards],
                                       capture_output=True, text=True, check=True)
                rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| scenes | held in memory: RSS growth (MiB) | seconds | streamed: RSS growth (MiB) | seconds |",
             "|---:|---:|---:|---:|---:|"]
    for memory, stream in zip(rows[::2], rows[1::2]):
        lines.append(f"| {memory['scenes']} | {memory['rss_growth_mib']} | {memory['seconds']} | "
                     f"{stream['rss_growth_mib']} | {stream['seconds']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n\nOne epoch of `scene_batch` (batch "
                                    f"{args.batch}); `python benchmarks/streaming_memory.py --scenes {args.scenes}`.\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
