"""Step time and peak GPU memory of full-size FLUX training steps with the identity branch (random weights).

The model is ``configs/flux-dev-sft.yaml``'s (FLUX.1-dev's transformer, 11.9 B parameters, plus the
identity branch and LoRA), built with random weights directly on the GPU: nothing is downloaded, so
the figures hold for the real checkpoint's shapes. Frozen weights in bf16; trained parameters (identity
branch, LoRA) in fp32 (diffusers' ``cast_training_params``) under bf16 autocast; AdamW.

Cases, each timed over ``--repeats`` steps after ``--warmup`` (median seconds, peak allocated memory):

- ``sft``: one image, N references, 512 text tokens; forward, flow-matching loss, backward, AdamW step;
  at each of ``--sizes`` x ``--refs``, with and without gradient checkpointing;
- ``sft-bare``: the same step without references (the identity branch skipped): its cost is the difference;
- ``dpo``: one preference pair: reference forward (LoRA off, no grad) and policy forward/backward on
  winner and loser (identity branch frozen, DPO LoRA trained);
- ``sample`` / ``sample-bare``: one no-grad forward with the identity K/V cached, and without references.

A case that runs out of memory is recorded as ``oom``; cases left when ``--budget`` seconds have passed
are recorded as ``skipped``. Results are written after every case (``--json``). Cases run in a child process;
one that dies (a CUDA error leaves the context unusable) is recorded as ``error`` and a fresh child goes on
with the next case.

    python benchmarks/flux_step.py --json flux_step.json            # on a GPU (scripts/gpu_check.sh)
    python benchmarks/flux_step.py --preset tiny --device cpu       # the same code, tiny, as a dry run
    python benchmarks/flux_step.py --report benchmarks/results/flux_step-h200.json   # the README's table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from diffusers.training_utils import cast_training_params

from idglow.flow import add_noise, flow_matching_loss, velocity_target
from idglow.flow.dpo import dpo_terms
from idglow.models import IdGlowTransformer, ModelConfig
from idglow.models.lora import adapters_disabled
from idglow.models.packing import image_ids, text_ids
from idglow.utils.config import _deep_merge, _read_yaml, from_dict, parse_overrides

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs/flux-dev-sft.yaml"), help="YAML whose `model:` is measured")
    p.add_argument("--preset", help="override model.preset (tiny: a CPU dry run of the same code)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model key, e.g. identity.rotate_queries=false (repeatable)")
    p.add_argument("--sizes", default="512,1024", help="image sides in pixels (latent side = size / 8)")
    p.add_argument("--refs", default="1,4", help="reference counts N of the SFT cases")
    p.add_argument("--checkpointing", choices=["both", "on", "off"], default="both")
    p.add_argument("--dpo-size", type=int, default=512, help="image side of the DPO cases (0 = no DPO cases)")
    p.add_argument("--text-tokens", type=int, default=512, help="T5 tokens (FLUX.1-dev: 512)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=420.0, help="seconds; later cases are skipped")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cudnn-attention", choices=["on", "off"], default="off",
                   help="let SDPA use cuDNN's attention (off: flash / memory-efficient kernels only)")
    p.add_argument("--json", help="write the results here (after every case)")
    p.add_argument("--report", metavar="JSON", help="print the Markdown table of a results file and exit")
    p.add_argument("--first-case", type=int, default=-1, help=argparse.SUPPRESS)  # child processes only
    return p.parse_args()


def build_model(args: argparse.Namespace) -> IdGlowTransformer:
    """The configured model, built on the device in bf16 with its trained parts in fp32."""
    data = _read_yaml(Path(args.config)).get("model", {})
    if args.preset:
        data = {**data, "preset": args.preset}
    overrides = [part for item in args.set for part in ("--" + item.split("=", 1)[0], item.split("=", 1)[1])]
    cfg = from_dict(ModelConfig, _deep_merge(data, parse_overrides(overrides)))
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # 12 B parameters: never materialise them in fp32
    try:
        with torch.device(args.device):
            model = IdGlowTransformer(cfg)
    finally:
        torch.set_default_dtype(default)
    model.requires_grad_(False)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name or name.startswith("identity."))
    cast_training_params(model, dtype=torch.float32)
    return model.train()


class Inputs:
    """Random inputs of one image size and reference count."""

    def __init__(self, model: IdGlowTransformer, size: int, refs: int, batch: int, text_tokens: int, device: str):
        fc, ic = model.flux.config, model.config.identity
        latent = size // 8
        g = torch.Generator(device).manual_seed(size + refs)
        s = (latent // 2) ** 2
        self.latents = torch.randn(batch, s, fc.in_channels, device=device, generator=g)
        self.noise = torch.randn(batch, s, fc.in_channels, device=device, generator=g)
        self.sigma = torch.rand(batch, device=device, generator=g)
        self.states = torch.randn(batch, text_tokens, fc.joint_attention_dim, device=device, generator=g)
        self.pooled = torch.randn(batch, fc.pooled_projection_dim, device=device, generator=g)
        self.img_ids, self.txt_ids = image_ids(latent, latent, device), text_ids(text_tokens, device)
        self.refs = torch.randn(batch, refs, ic.embedding_dim, device=device, generator=g) if refs else None
        self.guidance = torch.ones(batch, device=device) if fc.guidance_embeds else None

    def velocity(self, model: IdGlowTransformer, noisy: torch.Tensor, sigma: torch.Tensor, refs: bool = True):
        with torch.autocast(noisy.device.type, dtype=torch.bfloat16):
            return model(noisy, sigma, self.states, self.pooled, self.img_ids, self.txt_ids, task="group",
                         guidance=self.guidance, refs=self.refs if refs else None)


def sft_step(model, optimizer, x: Inputs, refs: bool = True) -> None:
    noisy = add_noise(x.latents, x.noise, x.sigma)
    loss = flow_matching_loss(x.velocity(model, noisy, x.sigma, refs), velocity_target(x.latents, x.noise), x.sigma)
    loss.mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def dpo_step(model, optimizer, x: Inputs) -> None:
    """One pair: rows 0 and 1 of ``x`` are winner and loser, sharing noise and sigma."""
    noise, sigma = x.noise[:1].expand(2, -1, -1), x.sigma[:1].expand(2)
    noisy, target = add_noise(x.latents, noise, sigma), velocity_target(x.latents, noise)
    with torch.no_grad(), adapters_disabled(model.flux):
        reference = flow_matching_loss(x.velocity(model, noisy, sigma), target, sigma)
    policy = flow_matching_loss(x.velocity(model, noisy, sigma), target, sigma)
    terms = dpo_terms(policy[:1], policy[1:], reference[:1], reference[1:], 1000.0, "sigmoid",
                      torch.ones(1, device=noise.device), torch.zeros(1, device=noise.device))
    terms["loss"].mean().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@torch.no_grad()
def sample_step(model, x: Inputs, refs: bool = True) -> None:
    identity = None
    if refs:
        with torch.autocast(x.latents.device.type, dtype=torch.bfloat16):
            identity = model.cache_identity(model.encode_identity(x.refs))
    with torch.autocast(x.latents.device.type, dtype=torch.bfloat16):
        model(x.noise, x.sigma, x.states, x.pooled, x.img_ids, x.txt_ids, identity=identity, task="group",
              guidance=x.guidance)


def measure(step, device: str, warmup: int, repeats: int) -> dict:
    """Median seconds of ``step`` and the peak memory over all its runs."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if not device.startswith("cuda"):
        return {"seconds": statistics.median(times), "peak_gib": None, "reserved_gib": None}
    return {"seconds": statistics.median(times), "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def cases(args: argparse.Namespace) -> list[dict]:
    """The planned cases, most important first (so a tight budget drops the least informative)."""
    sizes = [int(s) for s in args.sizes.split(",")]
    refs = [int(n) for n in args.refs.split(",")]
    ckpt = {"both": [True, False], "on": [True], "off": [False]}[args.checkpointing]
    out = [dict(kind="sft-bare", size=sizes[0], refs=0, checkpointing=ckpt[0])]
    out += [dict(kind="sft", size=s, refs=n, checkpointing=c) for c in ckpt for s in sizes for n in refs]
    out += [dict(kind="sft-bare", size=sizes[-1], refs=0, checkpointing=ckpt[0])]
    if args.dpo_size:
        out += [dict(kind="dpo", size=args.dpo_size, refs=max(refs), checkpointing=c) for c in ckpt]
    out += [dict(kind=k, size=sizes[-1], refs=max(refs) if k == "sample" else 0, checkpointing=False)
            for k in ("sample", "sample-bare")]
    return out


def run_case(model, optimizer, case: dict, args: argparse.Namespace) -> dict:
    if case["checkpointing"]:
        model.flux.enable_gradient_checkpointing()
    else:
        model.flux.disable_gradient_checkpointing()
    batch = 2 if case["kind"] == "dpo" else 1
    x = Inputs(model, case["size"], max(case["refs"], 1), batch, args.text_tokens, args.device)
    step = {
        "sft": lambda: sft_step(model, optimizer, x),
        "sft-bare": lambda: sft_step(model, optimizer, x, refs=False),
        "dpo": lambda: dpo_step(model, optimizer, x),
        "sample": lambda: sample_step(model, x),
        "sample-bare": lambda: sample_step(model, x, refs=False),
    }[case["kind"]]
    return measure(step, args.device, args.warmup, args.repeats)


def child(args: argparse.Namespace, start: float) -> None:
    """Run cases from ``--first-case`` on, appending each result to ``--json``."""
    torch.backends.cuda.enable_cudnn_sdp(args.cudnn_attention == "on")
    model = build_model(args)
    counts = {part: sum(p.numel() for p in params) for part, params in model.trainable_parameter_groups().items()}
    counts["backbone"] = sum(p.numel() for n, p in model.flux.named_parameters() if "lora_" not in n)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    report = json.loads(Path(args.json).read_text())
    report.update(parameters=counts, build_seconds=time.perf_counter() - start, preset=model.config.preset,
                  weights_gib=torch.cuda.memory_allocated() / 2**30 if args.device.startswith("cuda") else None)
    for case in cases(args)[args.first_case:]:
        if time.time() - report["started"] > args.budget:
            result = {"status": "skipped"}
        else:
            try:
                result = {"status": "ok", **run_case(model, optimizer, case, args)}
            except torch.OutOfMemoryError:
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                result = {"status": "oom"}
        report["results"].append({**case, **result})
        print(json.dumps(report["results"][-1]), flush=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


def report_table(path: str) -> str:
    """The Markdown table of a results file: one row per case, step time and peak memory."""
    report = json.loads(Path(path).read_text())
    names = {"sft": "SFT step", "sft-bare": "SFT step, no references (branch skipped)", "dpo": "DPO step (1 pair)",
             "sample": "sampling step (K/V cached)", "sample-bare": "sampling step, no references"}
    p = report["parameters"]
    lines = [f"{report['device']}, torch {report['torch']}; backbone {p['backbone'] / 1e9:.2f} B parameters (bf16, "
             f"{report['weights_gib']:.1f} GiB with the rest), identity branch {p['identity'] / 1e6:.0f} M and LoRA "
             f"{p['lora'] / 1e6:.1f} M (fp32, trained); {report['text_tokens']} text tokens; batch 1.", "",
             "| case | image | N refs | gradient checkpointing | step (s) | peak memory (GiB) |", "|---|---|---|---|---|---|"]
    for r in report["results"]:
        ckpt = ("on" if r["checkpointing"] else "off") if r["kind"] in ("sft", "sft-bare", "dpo") else "–"
        timing = f"{r['seconds']:.3f} | {r['peak_gib']:.1f}" if r["status"] == "ok" else f"{r['status']} | –"
        lines.append(f"| {names[r['kind']]} | {r['size']}² | {r['refs']} | {ckpt} | {timing} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.report:
        return print(report_table(args.report))
    if args.first_case >= 0:
        return child(args, time.perf_counter())
    args.json = args.json or "flux_step.json"
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    report = {"device": device_name, "torch": torch.__version__, "config": args.config, "set": args.set,
              "text_tokens": args.text_tokens,
              "started": time.time(), "results": []}
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    planned = cases(args)
    while (done := len(json.loads(Path(args.json).read_text())["results"])) < len(planned):
        argv = [a for a in sys.argv[1:] if not a.startswith("--first-case")]
        argv = argv + (["--json", args.json] if "--json" not in argv else [])
        proc = subprocess.run([sys.executable, __file__, *argv, f"--first-case={done}"])
        report = json.loads(Path(args.json).read_text())
        if proc.returncode and len(report["results"]) == done:
            report["results"].append({**planned[done], "status": "error", "returncode": proc.returncode})
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
            print(json.dumps(report["results"][-1]), flush=True)


if __name__ == "__main__":
    main()
