"""Where is the child structure decided? The age judge on the sampler's running prediction x0_hat, by sigma (issue 22).

The paper's age gate injects identity in a mid-noise window, on the argument that the coarse structure that makes a
face a child's is settled early (from the text) and the fine details of identity late. This measures it: each
synth-age record is sampled as usual, and at every Euler step the model's prediction of the clean image,
``x0_hat = x - sigma * v``, is decoded and judged like a final image (faces detected and Hungarian-matched to the
references, the age judge on each matched face). Per sigma:

- **child rate** of x0_hat (share of references drawn as a matched child face);
- **agreement**: share of references whose child/not-child label at that sigma equals the final image's. The sigma
  where agreement reaches ~0.9 is where the child structure is decided;
- **FaceSim/mu** of x0_hat (how much identity is already there).

Two samplers: the model as trained (identity branch on, its age window) and text only (identity branch off): where
the text alone settles "child", identity can come in after it without turning children into adults.

    python benchmarks/child_structure.py [--run assets/idglow] [--limit 60] [--steps 20] [--out benchmarks/results]

Writes ``OUT/child_structure.json``, ``OUT/child_structure.png`` and prints a Markdown table.
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

import numpy as np
import torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="assets/idglow", help="model or SFT/DPO run folder (default: assets/idglow)")
    p.add_argument("--manifest", default="data/cast/synth-age.jsonl", help="age benchmark (default: data/cast/synth-age.jsonl)")
    p.add_argument("--judges", default="assets/judges", help="cast judges (default: assets/judges)")
    p.add_argument("--limit", type=int, default=60, help="records, evenly spread over group sizes (default: 60)")
    p.add_argument("--steps", type=int, default=20, help="Euler steps (default: 20)")
    p.add_argument("--batch", type=int, default=12, help="records per forward pass (default: 12)")
    p.add_argument("--out", default="benchmarks/results", help="output folder (default: benchmarks/results)")
    return p.parse_args()


@torch.no_grad()
def trajectory_predictions(pipe, prompts: list[str], refs, seeds: list[int], steps: int) -> tuple[list[float], list[torch.Tensor]]:
    """Sample with the pipeline (guidance 1, the model's own gate) and return the sigma of every step and, per step,
    the decoded prediction x0_hat [B, 3, H, W] in [-1, 1]; the last entry is the final image (sigma 0)."""
    from idglow.generate.sampling import seeded_noise

    previous = [seeded_noise(seeds, pipe.rep.tokens, pipe.rep.channels).to(pipe.device)]
    sigmas, predictions = [1.0], []

    def on_step(i: int, sigma_next: float, x: torch.Tensor):
        sigma = sigmas[-1]
        velocity = (x - previous[-1]) / (sigma_next - sigma)  # the Euler step taken: x_next = x + (s_next - s) v
        predictions.append(pipe.rep.decode((previous[-1] - sigma * velocity).float()).clamp(-1, 1).cpu())
        previous.append(x)
        sigmas.append(sigma_next)

    final = pipe.sample(prompts, refs, "age", steps=steps, generator=[torch.Generator().manual_seed(s) for s in seeds],
                        id_guidance=1.0, on_step=on_step)
    return sigmas[:-1] + [0.0], predictions + [final]


def judge_trajectories(pipe, records, refs, judges, steps: int, batch: int, identity: bool) -> dict:
    """Per sigma: child rate, agreement with the final image and FaceSim of x0_hat over the records."""
    from idglow.eval.cast_bench import score_image

    child, facesim, sigmas = [], [], None
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        chunk_refs = refs[start : start + batch] if identity else None
        sigmas, predictions = trajectory_predictions(pipe, [r["prompt"] for r in chunk], chunk_refs,
                                                     list(range(start, start + len(chunk))), steps)
        for b, record in enumerate(chunk):
            per_step = [score_image(images[b], refs[start + b], record, judges) for images in predictions]
            # per reference: 1 = drawn as a matched child face at that step
            child.append([[float(slot not in s["adult_slots"] and slot not in s["unmatched_slots"])
                           for slot in range(len(record["refs"]))] for s in per_step])
            facesim.append([s["facesim"] for s in per_step])
        print(f"  {'identity' if identity else 'text only'}: {start + len(chunk)}/{len(records)} records", flush=True)
    labels = [np.array(c) for c in child]  # each [steps + 1, N_refs]
    rate = [float(np.mean(np.concatenate([l[k] for l in labels]))) for k in range(len(sigmas))]
    agree = [float(np.mean(np.concatenate([l[k] == l[-1] for l in labels]))) for k in range(len(sigmas))]
    return {"sigma": sigmas, "child_rate": rate, "agreement": agree,
            "facesim": np.mean(np.array(facesim), axis=0).tolist()}


def decided_at(result: dict, level: float = 0.9) -> float | None:
    """The highest sigma from which agreement with the final image stays at or above ``level``."""
    decided = None
    for sigma, agree in reversed(list(zip(result["sigma"], result["agreement"]))):
        if agree < level:
            break
        decided = sigma
    return decided


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, style in (("identity", "-"), ("text only", "--")):
        r = results[name]
        ax.plot(r["sigma"], r["child_rate"], style, marker="o", ms=3, label=f"{name}: child rate of x0_hat")
        ax.plot(r["sigma"], r["agreement"], style, marker="s", ms=3, label=f"{name}: agreement with the final image")
    ax.axvspan(0.3, 0.7, color="orange", alpha=0.12, label="the paper's age window (0.3-0.7)")
    ax.invert_xaxis()
    ax.set_xlabel("sigma (sampling runs right to left: 1 = noise, 0 = image)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    from idglow.cast.judge_training import load_judges
    from idglow.eval.run_eval import _records
    from idglow.generate.pipeline import IdGlowPipeline

    args = parse_args()
    started = time.time()
    records, refs = _records(Path(args.manifest), args.limit)
    judges = load_judges(args.judges)
    mu_real = json.loads(Path(args.manifest).with_suffix(".mu_real.json").read_text())["mu_real"]
    pipe = IdGlowPipeline.from_run(args.run, 64, 128)
    results = {name: judge_trajectories(pipe, records, refs, judges, args.steps, args.batch, identity)
               for name, identity in (("identity", True), ("text only", False))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["| sigma | child rate (identity) | agreement (identity) | FaceSim/mu (identity) | child rate (text only) | agreement (text only) |",
             "|---|---|---|---|---|---|"]
    a, t = results["identity"], results["text only"]
    for k, sigma in enumerate(a["sigma"]):
        lines.append(f"| {sigma:.2f}{' (final image)' if sigma == 0 else ''} | {a['child_rate'][k]:.3f} | {a['agreement'][k]:.3f} | {a['facesim'][k] / mu_real:.3f} | "
                     f"{t['child_rate'][k]:.3f} | {t['agreement'][k]:.3f} |")
    summary = {name: decided_at(r) for name, r in results.items()}
    report = {"command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]), "run": args.run,
              "records": len(records), "steps": args.steps, "seconds": round(time.time() - started, 1), "mu_real": mu_real,
              "decided_at_agreement_0.9": summary, **results}
    (out / "child_structure.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out / "child_structure.png")
    print("\n".join(lines))
    print(f"decided (agreement with the final image >= 0.9 from this sigma down): {summary}; {report['seconds']} s")


if __name__ == "__main__":
    main()
