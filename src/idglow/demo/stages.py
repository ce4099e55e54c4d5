"""The stages of ``idglow demo``, each a function of the demo context returning its one-line summary.

Every stage writes into its own folder under the demo's ``out``; the runner (:mod:`idglow.demo.runner`)
records a finished stage in ``out/<stage>/stage.json`` and skips it when the demo is re-run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from idglow.demo.presets import DemoPreset
from idglow.utils.config import load_config
from idglow.utils.defaults import BASE, JUDGES

BENCHMARKS = ("synth-group", "synth-age")
# The models the evaluation stage scores, all on the same records and seeds: (folder, run, identity guidance).
MODELS = {"identity off": ("off", "sft", 0.0), "SFT": ("sft", "sft", 1.0),
          "SFT, identity guidance 2": ("sft-g2", "sft", 2.0), "DPO": ("dpo", "dpo", 1.0)}


@dataclasses.dataclass
class DemoContext:
    """Where every stage reads and writes."""

    out: Path
    preset: DemoPreset
    base: Path = Path(BASE)
    shipped_judges: Path = Path(JUDGES)
    train_judges: bool = False       # True: train the judges with the preset's sizes instead of using the shipped ones
    progress: bool = True

    @property
    def cast(self) -> Path:
        return self.out / "cast"

    @property
    def judges(self) -> Path:
        return self.out / "judges" if self.train_judges else self.shipped_judges

    def run(self, name: str) -> Path:
        return self.out / name / "run"

    def heldout(self) -> list[Path]:
        return [self.cast / f"{n}.jsonl" for n in ("sft-group-heldout", "sft-age-heldout", *BENCHMARKS)]

    def train_manifests(self) -> list[Path]:
        return [self.cast / "sft-group-train.jsonl", self.cast / "sft-age-train.jsonl"]


def stage_cast(ctx: DemoContext) -> str:
    from idglow.cast.build import build
    from idglow.cast.config import SynthConfig

    summary = build(ctx.cast, load_config(SynthConfig, None, list(ctx.preset.cast)), progress=ctx.progress)
    counts = summary.get("counts", summary)
    return f"rendered {', '.join(f'{k} {v}' for k, v in counts.items() if isinstance(v, int))} into {ctx.cast}"


def stage_judges(ctx: DemoContext) -> str:
    from idglow.cast.config import SynthConfig
    from idglow.cast.judge_training import load_judges, train_all
    from idglow.eval.mu_real import write_mu_real

    if ctx.train_judges:
        cfg = load_config(SynthConfig, None, list(ctx.preset.judges))
        w = cfg.world
        report = train_all(ctx.judges, w.seed, w.width, w.height, w.ids("train"), w.ids("heldout"), cfg.judges,
                           max_people=w.max_people)
        what = (f"trained: detector recall {report['detector']['recall']:.3f}, judge AUC {report['judge']['auc']:.4f}, "
                f"age accuracy {report['classifiers']['age_accuracy']:.3f}")
    else:
        what = f"shipped {ctx.judges} (trained by `idglow synth train-judges`; --train-judges trains them here)"
    mu = write_mu_real(ctx.cast, load_judges(ctx.judges))
    return what + "; mu_real " + ", ".join(f"{k} {v['mu_real']:.3f}" for k, v in mu.items())


def stage_sft(ctx: DemoContext) -> str:
    from idglow.recipes.sft import SFTConfig
    from idglow.sft.trainer import SFTTrainer

    manifests = f"[{','.join(map(str, ctx.train_manifests()))}]"
    heldout = f"[{ctx.cast / 'sft-group-heldout.jsonl'},{ctx.cast / 'sft-age-heldout.jsonl'}]"
    cfg = load_config(SFTConfig, None, [
        "--out", str(ctx.run("sft")), "--base", str(ctx.base), "--data.manifests", manifests,
        "--diagnostics.manifests", heldout, "--diagnostics.every", "0", "--diagnostics.items", str(ctx.preset.diagnostic_items),
        "--identity_loss.judges", str(ctx.judges), "--model.identity.encoder", "embedding", "--model.lora.rank", "8",
        "--optim.lr", "3e-3", "--optim.lora_lr", "5e-4", "--optim.schedule", "constant", "--optim.warmup_steps", "20",
        "--optim.max_minutes", "0", "--optim.steps", str(ctx.preset.sft_steps),
        "--optim.batch_size", str(ctx.preset.sft_batch),
        "--log.sample_every", "0", "--log.num_samples", str(2 * ctx.preset.examples),
        "--log.sample_steps", str(ctx.preset.sample_steps), "--log.tensorboard", "false", "--log.progress", str(ctx.progress).lower()])
    record = SFTTrainer(cfg).run()
    return f"{record['step']} steps of the LoRA recipe, identity similarity {record.get('id_sim', float('nan')):.3f}"


def stage_pairs(ctx: DemoContext) -> str:
    from idglow.eval.group_score import PairScoring
    from idglow.pairs.build import PairsOptions, build_pairs

    p = ctx.preset
    options = PairsOptions(candidates=p.pairs_candidates, items=p.pairs_items, steps=p.sample_steps)
    summary = build_pairs(ctx.run("sft"), ctx.train_manifests(), ctx.out / "pairs", options, PairScoring(),
                          heldout=ctx.heldout(), judges=ctx.judges, progress=ctx.progress)
    return f"{summary['pairs']} pairs from {summary['scenes']} scenes x {p.pairs_candidates} candidates, mean gap {summary['mean_gap']:.3f}"


def stage_dpo(ctx: DemoContext) -> str:
    from idglow.dpo.trainer import DPOTrainer
    from idglow.recipes.dpo import DPOConfig

    pairs = ctx.out / "pairs" / "pairs.jsonl"
    count = len(pairs.read_text().splitlines())
    cfg = load_config(DPOConfig, None, [
        "--sft", str(ctx.run("sft")), "--out", str(ctx.run("dpo")), "--data.manifests", f"[{pairs}]",
        "--optim.steps", str(ctx.preset.dpo_steps), "--optim.batch_size", str(min(8, count)),
        "--log.tensorboard", "false", "--log.progress", str(ctx.progress).lower(), "--log.sample_steps", str(ctx.preset.sample_steps),
        "--log.num_samples", str(2 * ctx.preset.examples)])
    record = DPOTrainer(cfg).run()
    return (f"{record['step']} steps, loss {record['loss']:.3f}, implicit accuracy {record['implicit_acc']:.2f}, "
            f"reward margin {record['reward_margin']:.2f}")


def stage_refine(ctx: DemoContext) -> str:
    from idglow.prompts.refine_loop import refine

    summary = refine(ctx.run("sft"), ctx.cast / "synth-group.jsonl", ctx.out / "refine", None, judges=str(ctx.judges),
                     limit=ctx.preset.refine_limit, steps=ctx.preset.sample_steps, progress=ctx.progress)
    before, after = summary["before"], summary["after"]
    return (f"{summary['prompts_rewritten']} prompts rewritten; leakage {before['leakage_rate']:.3f} -> {after['leakage_rate']:.3f}, "
            f"count accuracy {before['count_accuracy']:.3f} -> {after['count_accuracy']:.3f}")


def _scored(ctx: DemoContext, pipe, folder: str, run: str, guidance: float, bench: str, ids: set[str], judges) -> dict:
    """Generate ``ids`` of one benchmark with one model (seed 0 + record order) and score them."""
    from idglow.eval.preference import benchmark_group_scores
    from idglow.eval.report import evaluate_generations
    from idglow.generate.files import SamplingOptions, generate_benchmark

    manifest, where = ctx.cast / f"{bench}.jsonl", ctx.out / "eval" / folder / bench
    options = SamplingOptions(seed=0, steps=ctx.preset.sample_steps, id_guidance=guidance)
    generate_benchmark(pipe, ctx.run(run), manifest, options, where, {}, ids=ids, progress=ctx.progress)
    metrics = evaluate_generations(where, manifest, where / "eval", judges=str(ctx.judges), progress=False, ids=ids)
    groups = benchmark_group_scores(where, manifest, judges, ids=ids)
    (where / "eval" / "group_scores.json").write_text(json.dumps(groups, indent=2) + "\n")
    return {**metrics, "group_score": sum(groups.values()) / len(groups)}


def stage_eval(ctx: DemoContext) -> str:
    """Every model of :data:`MODELS` on the same records of both benchmarks; win rate of DPO over SFT."""
    from idglow.cast.judge_training import load_judges
    from idglow.data.manifest import evenly_spread, load_manifest
    from idglow.eval.preference import win_rate
    from idglow.eval.report import compare
    from idglow.generate.pipeline import IdGlowPipeline

    judges = load_judges(ctx.judges)
    ids = {bench: {r["id"] for r in evenly_spread(load_manifest(ctx.cast / f"{bench}.jsonl", "benchmark"), ctx.preset.eval_limit)}
           for bench in BENCHMARKS}
    results: dict[str, dict] = {}
    pipes = {run: IdGlowPipeline.from_run(ctx.run(run)) for run in {run for _, run, _ in MODELS.values()}}
    for label, (folder, run, guidance) in MODELS.items():
        for bench in BENCHMARKS:
            results.setdefault(label, {})[bench] = _scored(ctx, pipes[run], folder, run, guidance, bench, ids[bench], judges)

    def pooled(folder: str) -> dict[str, float]:
        scores = {}
        for bench in BENCHMARKS:
            path = ctx.out / "eval" / folder / bench / "eval" / "group_scores.json"
            scores.update({f"{bench}/{k}": v for k, v in json.loads(path.read_text()).items()})
        return scores

    win = win_rate(pooled("dpo"), pooled("sft"))
    compare([ctx.out / "eval" / folder / bench / "eval" for folder, _, _ in MODELS.values() for bench in BENCHMARKS],
            ctx.out / "eval" / "compare")
    (ctx.out / "eval" / "results.json").write_text(json.dumps({"models": results, "win_rate": win}, indent=2) + "\n")
    sft, dpo = results["SFT"]["synth-group"], results["DPO"]["synth-group"]
    return (f"synth-group FaceSim/mu SFT {sft['facesim_norm']:.3f} -> DPO {dpo['facesim_norm']:.3f}; "
            f"DPO wins {win['win_rate']:.2f} [{win['low']:.2f}, {win['high']:.2f}] of {win['records']} records against SFT")
