"""What reproduces: the paper's claims, each at equal budget with several training seeds (issue 22).

Claims measured here (``--claims``):

- ``group`` (i): the group gate: linear decay (the paper) vs constant vs decay reversed (identity late), the identity
  loss following the gate in every variant: FaceSim/mu against naturalness (Fréchet distance of judge features to
  the true renders, count accuracy, copy-paste), with a Pareto plot.
- ``age`` (ii): the age gate: the mid-noise window (the paper) vs constant vs linear decay, and the window moved and
  widened: child rate, mini-adult rate and FaceSim/mu (the stability-plasticity frontier).
- ``dpo`` (iii): Flow-DPO (sigmoid, weighted, margin) on each seed's paper-recipe SFT run vs that SFT run.
- ``prompts`` (iv): SFT on coarse training captions (count and place, what photo datasets give) vs the same scenes
  with per-subject captions written by ``idglow prompts caption`` from their annotations: leakage, swap, count
  accuracy and colour accuracy (each person in their own prompt colour) at test, and where each person's colour
  comes from (own, another's, neither; the binding beside a random deal's). When the per-subject captions equal the cast's own (the rules backend writes the cast's caption
  form), the paper-recipe runs are that row and are not trained twice. Third row: the per-subject captions rewritten
  against the badcase library of the paper-recipe run (first seed) on ``--badcase-items`` *training* scenes
  (``idglow prompts badcases``, then ``prompts caption --style refined``); no benchmark record enters the captions.

The group and age gates are separate schedules, so one SFT run per seed serves a group variant and an age variant
(``SFT_RUNS``). Every SFT run is ``configs/sft-lora.yaml`` for ``--sft-steps`` steps (a budget in steps, the same on
any machine) with ``--seed``; every cell is scored by ``idglow train sft-eval`` on ``--limit`` records of each
held-out benchmark. Per-record scores of all seeds are pooled (``idglow.eval.pooling``): 95% bootstrap intervals over
the pooled records, beside each seed's value and the seed-to-seed spread. Resumable: training resumes from its
checkpoints and finished evaluations are reused, so re-running the same command continues where it stopped. Each
finished evaluation (its summary and per-record scores, a few hundred kB) is also copied to ``--keep``, a folder that is
committed: a fresh checkout, with no ``runs/``, reuses it instead of training that run again. Each SFT run is trained
and then evaluated before the next starts, so a sitting of a few hours keeps whole runs.

    python benchmarks/claims.py [--claims group age dpo] [--seeds 0 1] [--sft-steps 600] [--limit 100] [--out runs/claims]

Writes ``OUT/results.json``, ``OUT/results.md`` (the tables), ``OUT/group_pareto.png`` and ``OUT/age_frontier.png``. Each claim's verdict
(``CLAIMS``, ``idglow.eval.verdict``) comes from paired bootstrap intervals of the paper variant's advantage over each
alternative; ``--readme README.md`` writes that table into the README's claims-table block, and ``--only-kept``
builds it from the kept evaluations alone (seconds, nothing trained).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from idglow.eval.pooling import evaluated, folder_difference, keep_evaluation
from idglow.eval.verdict import Check, describe, holds, verdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).parents[1]
BENCHMARKS = ("synth-group", "synth-age")
GATE = "--model.identity.gate"
# SFT run name -> (group schedule, age schedule, config overrides)
SFT_RUNS = {
    "paper": ("linear decay", "window 0.3-0.7", []),
    "constant": ("constant", "constant", [f"{GATE}.group.kind", "constant", f"{GATE}.age.kind", "constant"]),
    "reversed": ("decay reversed", "linear decay", [f"{GATE}.group.increasing", "true", f"{GATE}.age.kind", "linear_decay"]),
    "window-early": ("linear decay", "window 0.1-0.5", [f"{GATE}.age.sigma_lo", "0.1", f"{GATE}.age.sigma_hi", "0.5"]),
    "window-late": ("linear decay", "window 0.5-0.9", [f"{GATE}.age.sigma_lo", "0.5", f"{GATE}.age.sigma_hi", "0.9"]),
    "window-wide": ("linear decay", "window 0.15-0.85", [f"{GATE}.age.sigma_lo", "0.15", f"{GATE}.age.sigma_hi", "0.85"]),
}
CAST = Path("data/cast")
TRAIN_MANIFESTS = ("sft-group-train", "sft-age-train")  # configs/synth-sft.yaml's data.manifests
CAPTION_STYLES = ("coarse", "per-subject", "refined")
BADCASE_MANIFEST = CAST / "sft-group-train.jsonl"  # training scenes the badcase library is mined on
# synth-group with its prompts rewritten by the refined captions' lessons: tells the phrasing apart from the lesson
REFINED_BENCHMARK = CAST / "synth-group.refined.jsonl"


def captioned(style: str) -> list[Path]:
    """The training manifests with ``style`` captions (beside the cast's: their paths are relative to it)."""
    return [CAST / f"{name}.{style}.jsonl" for name in TRAIN_MANIFESTS]


for _style in CAPTION_STYLES:
    SFT_RUNS[f"captions-{_style}"] = ("linear decay", "window 0.3-0.7",
                                      ["--data.manifests", "[" + ", ".join(map(str, captioned(_style))) + "]"])
CLAIM_RUNS = {"group": ["paper", "constant", "reversed"],
              "age": ["paper", "constant", "reversed", "window-early", "window-late", "window-wide"],
              "dpo": ["paper"],
              "prompts": ["captions-coarse", "captions-per-subject", "captions-refined"]}
DPO_LOSSES = ("sigmoid", "weighted", "margin")
# claim -> (title, what the paper says, the model the claim is about, the checks that make it true)
CLAIMS = {
    "group": ("(i) group gate: linear decay",
              "identity strong early and fading late binds identity and keeps groups natural, better than constant "
              "injection or the reverse",
              "paper", [Check("synth-group", metric, alt, higher) for alt in ("constant", "reversed")
                        for metric, higher in (("facesim_norm", True), ("frechet_judge", False), ("copy_paste", False))]),
    "age": ("(ii) age gate: mid-noise window",
            "a window over the middle noise levels lets a child's face form before identity is applied: more children "
            "and fewer mini-adults than constant injection or linear decay",
            "paper", [Check("synth-age", metric, alt, higher) for alt in ("constant", "reversed")
                      for metric, higher in (("child_rate", True), ("mini_adult_rate", False))]),
    "dpo": ("(iii) group-level Flow-DPO",
            "preference optimisation on group-level, fine-grained pairs after SFT raises the group-level score (identity, "
            "harmony, artifacts of the weakest person) on people never seen in training",
            "dpo-sigmoid", [Check(bench, "group_score", "paper", True, model=f"dpo-{loss}") for loss in DPO_LOSSES
                            for bench in BENCHMARKS]),
    "prompts": ("(iv) per-subject training captions",
                "captions that bind each person to their attributes (VLM-synthesized) resolve the attribute leakage "
                "and ambiguity that coarse captions leave",
                "captions-per-subject", [Check("synth-group", metric, "captions-coarse", higher) for metric, higher in
                                         (("leakage_rate", False), ("swap_rate", False), ("count_accuracy", True),
                                          ("colour_accuracy", True))]
                + [Check("synth-group", "leakage_rate", "captions-per-subject", False, model="captions-refined")]),
}
COLUMNS = {
    "synth-group": [("facesim_norm", "FaceSim/mu"), ("count_accuracy", "count acc"), ("frechet_judge", "Fréchet"),
                    ("copy_paste", "copy-paste"), ("identification", "identified"), ("leakage_rate", "leakage"),
                    ("group_score", "group score")],
    "synth-age": [("facesim_norm", "FaceSim/mu"), ("child_rate", "child rate"), ("mini_adult_rate", "mini-adult rate"),
                  ("count_accuracy", "count acc"), ("frechet_judge", "Fréchet"), ("group_score", "group score")],
}
PROMPT_COLUMNS = [("leakage_rate", "leakage"), ("swap_rate", "swap"), ("count_accuracy", "count acc"),
                  ("facesim_norm", "FaceSim/mu"), ("colour_accuracy", "colour acc")]


def run(*argv: str) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run([sys.executable, "-m", "idglow", *argv], check=True, cwd=ROOT)


def train_sft(name: str, seed: int, args) -> Path:
    out = Path(args.out) / f"sft-{name}-s{seed}"
    if not (out / "final" / "identity_branch.safetensors").is_file() or _steps(out) < args.sft_steps:
        run("train", "sft", "--config", "configs/sft-lora.yaml", "--out", str(out), "--seed", str(seed),
            "--optim.steps", str(args.sft_steps), "--optim.max_minutes", "0", "--diagnostics.every", "0",
            "--log.progress", "false", *SFT_RUNS[name][2])
    return out


def train_dpo(sft: Path, loss: str, seed: int, args) -> Path:
    pairs = sft / "pairs"
    if not (pairs / "pairs.jsonl").is_file():
        run("pairs", "build", "--run", str(sft), "--items", str(args.pairs_items), "--candidates", "4", "--out", str(pairs))
    out = Path(args.out) / f"dpo-{loss}-s{seed}"
    if not (out / "final" / "lora.safetensors").is_file():
        run("train", "dpo", "--config", "configs/synth-dpo.yaml", "--sft", str(sft), "--out", str(out), "--seed", str(seed),
            "--data.manifests", f"[{pairs / 'pairs.jsonl'}]", "--dpo.loss", loss, "--optim.steps", str(args.dpo_steps),
            "--optim.max_minutes", "0", "--log.progress", "false")
    return out


def badcase_library(args) -> Path:
    """The kept badcase folder the refined captions are written against."""
    return Path(args.keep) / f"badcases-paper-s{args.seeds[0]}-{args.sft_steps}steps-{args.badcase_items}scenes"


def refined_captions(args) -> None:
    """Training captions rewritten against the badcases of the paper-recipe run (first seed) on training scenes:
    the library is mined once (``idglow prompts badcases``), kept beside the evaluations, and reused."""
    keep = badcase_library(args)
    if not all((keep / f).is_file() for f in ("badcases.jsonl", "summary.json")):
        mined = Path(args.out) / "badcases"
        run("prompts", "badcases", "--run", str(train_sft("paper", args.seeds[0], args)), "--manifest", str(BADCASE_MANIFEST),
            "--limit", str(args.badcase_items), "--out", str(mined))
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("badcases.jsonl", "summary.json"):
            shutil.copyfile(mined / name, keep / name)
    for original, refined in zip([CAST / f"{m}.jsonl" for m in TRAIN_MANIFESTS], captioned("refined")):
        if not refined.is_file():
            run("prompts", "caption", "--manifest", str(original), "--out", str(refined), "--style", "refined",
                "--badcases", str(keep))


def write_captions() -> bool:
    """Coarse training captions from the cast's manifests, then per-subject ones written from the coarse manifests'
    annotations (``idglow prompts caption``, cached). Returns whether the per-subject captions equal the cast's."""
    for original, plain, per_subject in zip([CAST / f"{m}.jsonl" for m in TRAIN_MANIFESTS], captioned("coarse"),
                                            captioned("per-subject")):
        if not plain.is_file():
            run("prompts", "caption", "--manifest", str(original), "--out", str(plain), "--style", "coarse")
        if not per_subject.is_file():
            run("prompts", "caption", "--manifest", str(plain), "--out", str(per_subject), "--style", "per-subject")
    prompts = lambda path: [json.loads(line)["prompt"] for line in path.read_text().splitlines()]  # noqa: E731
    return all(prompts(CAST / f"{m}.jsonl") == prompts(p) for m, p in zip(TRAIN_MANIFESTS, captioned("per-subject")))


def _steps(run_dir: Path) -> int:
    log = run_dir / "log.jsonl"
    lines = log.read_text().splitlines() if log.is_file() else []
    return json.loads(lines[-1]).get("step", 0) if lines else 0


def _evaluated(folder: Path) -> bool:
    return evaluated(folder, BENCHMARKS)


def kept(run_dir: Path, args) -> Path:
    """Where ``run_dir``'s finished evaluation is kept (committed), keyed by run name, SFT budget and record limit."""
    budget = f"{args.sft_steps}steps" + (f"-dpo{args.dpo_steps}steps-pairs{args.pairs_items}" if run_dir.name.startswith("dpo") else "")
    return Path(args.keep) / f"{run_dir.name}-{budget}-limit{args.limit}"


def evaluate(run_dir: Path, args) -> Path:
    """``run_dir`` scored on both held-out benchmarks; the evaluation is copied to ``kept`` once it finishes."""
    out, keep = run_dir / f"claims-eval-{args.limit}", kept(run_dir, args)
    if _evaluated(keep):
        return keep
    if not _evaluated(out):
        run("train", "sft-eval", "--run", str(run_dir), "--limit", str(args.limit), "--out", str(out))
    return keep_evaluation(out, keep, BENCHMARKS)


def run_dir(model: str, seed: int, args) -> Path:
    """The run folder of ``model`` (an SFT variant of ``SFT_RUNS`` or ``dpo-<loss>``) at training seed ``seed``."""
    return Path(args.out) / (f"{model}-s{seed}" if model.startswith("dpo-") else f"sft-{model}-s{seed}")


def evaluation(model: str, seed: int, args) -> Path | None:
    """``model``'s evaluation at ``seed``: the kept one, else trained and evaluated now (None with ``--only-kept``)."""
    folder = run_dir(model, seed, args)
    if _evaluated(kept(folder, args)):
        return kept(folder, args)
    if args.only_kept:
        return None
    if model.startswith("dpo-"):
        return evaluate(train_dpo(train_sft("paper", seed, args), model.removeprefix("dpo-"), seed, args), args)
    if model == "captions-refined":
        refined_captions(args)
    return evaluate(train_sft(model, seed, args), args)


def refined_prompts_evaluation(seed: int, args) -> Path | None:
    """The refined-caption model of ``seed`` scored on synth-group with the benchmark's prompts rewritten by the same
    lessons (``prompts caption --style refined``, the same records, references and noise): whether it lacks the
    lesson or only meets a phrasing it was not trained on. Kept like the others; None with ``--only-kept``."""
    folder, name = run_dir("captions-refined", seed, args), REFINED_BENCHMARK.stem
    keep = kept(folder, args)
    keep = keep.with_name(keep.name + "-refined-prompts")
    if evaluated(keep, [name]):
        return keep
    if args.only_kept:
        return None
    if not REFINED_BENCHMARK.is_file():
        run("prompts", "caption", "--manifest", str(CAST / "synth-group.jsonl"), "--out", str(REFINED_BENCHMARK),
            "--style", "refined", "--badcases", str(badcase_library(args)))
        # the same records and true renders, so the same ceiling
        shutil.copyfile(CAST / "synth-group.mu_real.json", REFINED_BENCHMARK.with_suffix(".mu_real.json"))
    out = folder / f"claims-eval-{args.limit}-refined-prompts"
    if not evaluated(out, [name]):
        run("train", "sft-eval", "--run", str(folder), "--benchmark", str(REFINED_BENCHMARK), "--limit", str(args.limit),
            "--out", str(out))
    return keep_evaluation(out, keep, [name])


def phrasing_table(evals: dict[str, list[Path]], refined_prompts: list[Path]) -> str:
    """The refined-caption model on the plain benchmark prompts and on the refined ones, beside the per-subject
    model on the plain prompts: pooled over seeds, with the paired difference of the refined model's two prompt forms."""
    from idglow.eval.pooling import paired_difference, pooled_summary, read_scores

    plain = [read_scores(f, "synth-group") for f in evals["captions-refined"]]
    rows = {"per-subject captions, plain test prompts": [read_scores(f, "synth-group") for f in evals["captions-per-subject"]],
            "refined captions, plain test prompts": plain,
            "refined captions, refined test prompts": [read_scores(f, REFINED_BENCHMARK.stem) for f in refined_prompts]}
    mu = json.loads((evals["captions-refined"][0] / "synth-group.json").read_text())["mu_real"]
    keys = [("leakage_rate", "leakage"), ("swap_rate", "swap"), ("count_accuracy", "count acc"), ("colour_accuracy", "colour acc")]
    lines = ["| model, test prompts | " + " | ".join(n for _, n in keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {name} | " + " | ".join(cell(pooled_summary(s, mu), k) for k, _ in keys) + " |" for name, s in rows.items()]
    diffs = [(n, paired_difference(rows["refined captions, refined test prompts"], plain, k, mu)) for k, n in keys]
    return ("Refined captions: the lesson or the phrasing? The refined model on synth-group with plain and with refined "
            "test prompts (the same lessons, records, references and noise):\n\n" + "\n".join(lines)
            + "\n\nRefined minus plain test prompts, paired 95% interval: "
            + "; ".join(f"{n} {d['difference']:+.3f} [{d['interval'][0]:+.3f}, {d['interval'][1]:+.3f}]" for n, d in diffs if d))


def pool(folders: list[Path]) -> dict[str, dict]:
    """Each benchmark's pooled summary over the seeds' evaluation folders, Fréchet averaged over seeds (a set-level
    distance: no per-record values to pool), with the colour binding of every seed (``colour_binding``)."""
    from idglow.eval.cast_bench import colour_binding
    from idglow.eval.pooling import pooled_summary, read_scores

    result = {}
    for bench in BENCHMARKS:
        metrics = [json.loads((f / f"{bench}.json").read_text()) for f in folders]
        scores = [read_scores(f, bench) for f in folders]
        pooled = pooled_summary(scores, metrics[0]["mu_real"])
        pooled["colour_binding"] = [colour_binding(s) for s in scores]
        frechet = [m["frechet_judge"] for m in metrics]
        pooled["frechet_judge"], pooled["per_seed"]["frechet_judge"] = sum(frechet) / len(frechet), frechet
        pooled["spread"]["frechet_judge"] = max(frechet) - min(frechet)
        result[bench] = pooled
    return result


def cell(summary: dict, key: str) -> str:
    value = summary.get(key)
    if value is None:
        return "–"
    low_high = summary.get("intervals", {}).get(key)
    spread = summary.get("spread", {}).get(key)
    text = f"{value:.3f}" + (f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else "")
    return text + (f" ±{spread / 2:.3f}" if spread is not None else "")


def table(rows: dict[str, dict], bench: str, label: str) -> str:
    head = f"| {label} | seeds | " + " | ".join(name for _, name in COLUMNS[bench]) + " |"
    lines = [head, "|---|---|" + "---|" * len(COLUMNS[bench])]
    for name, result in rows.items():
        summary = result[bench]
        lines.append(f"| {name} | {summary['seeds']} | " + " | ".join(cell(summary, k) for k, _ in COLUMNS[bench]) + " |")
    return "\n".join(lines)


def win_rates(evals: dict[str, list[Path]], baseline: str = "paper") -> dict[str, dict]:
    """Each DPO model's win rate over ``baseline`` on the group-level score, per record of both benchmarks and every
    seed (ties half; :func:`idglow.eval.preference.win_rate`, bootstrap interval over the pooled records)."""
    from idglow.eval.pooling import read_scores
    from idglow.eval.preference import win_rate

    def keyed(folders: list[Path]) -> dict[str, float]:
        return {f"{k}/{bench}/{s['id']}": s["group_score"] for k, folder in enumerate(folders) for bench in BENCHMARKS
                for s in read_scores(folder, bench) if s.get("group_score") is not None}

    return {model: win_rate(keyed(evals[model]), keyed(evals[baseline])) for model in evals if model.startswith("dpo-")}


def pareto_plot(rows: dict[str, dict], path: Path, bench: str, x_key: str, x_label: str) -> None:
    """FaceSim/mu (identity) of ``bench`` against ``x_key`` (Fréchet for groups: naturalness, lower is better; child
    rate for age: the stability-plasticity frontier), one point per variant with both intervals where they exist and
    each seed as a small grey dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, result in rows.items():
        g = result[bench]
        y, x = g["facesim_norm"], g[x_key]
        low, high = g["intervals"]["facesim_norm"]
        x_low, x_high = g["intervals"].get(x_key, (x, x))
        ax.errorbar(x, y, yerr=[[y - low], [high - y]], xerr=[[x - x_low], [x_high - x]], marker="o", capsize=3, label=name)
        ax.scatter(g["per_seed"][x_key], g["per_seed"]["facesim_norm"], s=8, color="grey")
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"{bench} FaceSim / mu_real")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def claim_models(claims: list[str], alias: dict[str, str]) -> list[str]:
    """The models the claims compare, each once, SFT variants first (in ``SFT_RUNS`` order), then DPO."""
    sft = sorted({alias.get(n, n) for c in claims for n in CLAIM_RUNS[c]}, key=list(SFT_RUNS).index)
    return sft + ([f"dpo-{loss}" for loss in DPO_LOSSES] if "dpo" in claims else [])


def difference(check: Check, model: str, evals: dict[str, list[Path]]) -> dict | None:
    """``check.metric`` of ``model`` minus ``check.against``'s, pooled over seeds: a paired bootstrap interval, or
    per-seed differences for Fréchet (a set-level distance, no per-record values)."""
    mine, theirs = evals.get(model), evals.get(check.against)
    if not mine or not theirs:
        return None
    return folder_difference(mine, theirs, check.benchmark, check.metric)


def reproduces(claims: list[str], evals: dict[str, list[Path]], args) -> tuple[str, dict]:
    """The "What reproduces" table (markdown) and its data: one row per claim of ``CLAIMS``, with its checks, each
    check's difference and interval, the verdict and the command that regenerates the row."""
    lines = ["| claim | the paper | measured: the paper's variant minus each alternative, 95% paired bootstrap interval "
             "(✓ = beyond doubt on the claimed side) | verdict | command |", "|---|---|---|---|---|"]
    data = {}
    for key, (title, statement, model, checks) in CLAIMS.items():
        command = (f"`python benchmarks/claims.py --claims {key} --seeds {' '.join(map(str, args.seeds))} "
                   f"--sft-steps {args.sft_steps} --limit {args.limit}`")
        if key not in claims:
            lines.append(f"| {title} | {statement} | not run | not measured | {command} |")
            continue
        found = [(check, difference(check, check.model or model, evals)) for check in checks]
        result = verdict([holds(c, d) for c, d in found])
        measured = "<br>".join((f"{c.model}, {c.benchmark}: " if c.model else "") + describe(c, d) for c, d in found)
        if all(d is None for _, d in found):
            needed = {m for c in checks for m in (c.model or model, c.against)}
            measured = f"not measured yet: {sum(m in evals for m in needed)} of {len(needed)} models evaluated at every seed"
        lines.append(f"| {title} | {statement} | {measured} | **{result}** | {command} |")
        data[key] = {"verdict": result, "checks": [{**dataclasses.asdict(c), "model": c.model or model, "difference": d}
                                                    for c, d in found]}
    return "\n".join(lines), data


def write_readme(path: Path, table: str, note: str) -> None:
    """Replace the text between the README's claims-table markers with ``note`` and ``table``."""
    text = path.read_text()
    start, end = "<!-- claims-table:start -->", "<!-- claims-table:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"--readme: {path} has no {start} ... {end} block to replace")
    head, rest = text.split(start, 1)
    path.write_text(head + start + "\n" + note + "\n\n" + table + "\n" + end + rest.split(end, 1)[1])


def binding_table(rows: dict[str, dict]) -> str:
    """Where the clothing colour of each matched person in synth-group scenes of 2+ people comes from, per training
    seed (``idglow.eval.cast_bench.colour_binding``): own, another subject's, neither; binding = own / (own + leaked),
    beside the binding of a random deal of the prompt's colours."""
    keys = ("own", "leaked", "neither", "binding", "chance")
    lines = ["Colour of each matched person in scenes of 2+ people, per training seed (binding = own / (own + "
             "another's); chance = a random deal of the prompt's colours):", "",
             "| training captions | people | own colour | another's (leakage) | neither | binding | chance |",
             "|---|---|---|---|---|---|---|"]
    for name, result in rows.items():
        splits = [s for s in result["synth-group"].get("colour_binding", []) if s]
        lines.append(f"| {name} | {' + '.join(str(s['people']) for s in splits)} | "
                     + " | ".join(" / ".join(f"{s[k]:.3f}" for s in splits) for k in keys) + " |")
    return "\n".join(lines)


def sweep_table(evals: dict[str, list[Path]]) -> str:
    """Each age gate evaluated so far minus the paper's window on synth-age, records paired and pooled over the seeds
    (95% paired bootstrap intervals; Fréchet, a set-level distance: the mean and each seed's difference)."""
    from idglow.eval.pooling import difference_text, folder_difference

    keys = [("facesim_norm", "FaceSim/mu"), ("child_rate", "child rate"), ("mini_adult_rate", "mini-adult rate"),
            ("frechet_judge", "Fréchet")]
    text = lambda d: difference_text(d, mean_digits=2)  # noqa: E731

    lines = ["| age gate, minus the paper's window | " + " | ".join(n for _, n in keys) + " |", "|---|" + "---|" * len(keys)]
    lines += [f"| {SFT_RUNS[n][1]} ({n}) | " + " | ".join(text(folder_difference(evals[n], evals["paper"], "synth-age", k))
                                                       for k, _ in keys) + " |"
              for n in CLAIM_RUNS["age"] if n != "paper" and n in evals]
    return "\n".join(lines)


def sections(claims: list[str], results: dict[str, dict], evals: dict[str, list[Path]] | None = None) -> list[str]:
    """Each measured claim's table of its variants (every column with its interval and spread); with ``evals`` (the
    evaluation folders), the age sweep's paired differences from the paper's window too."""
    out = []
    have = lambda names: all(n in results for n in names)  # noqa: E731
    if "group" in claims and have(CLAIM_RUNS["group"]):
        rows = {f"{SFT_RUNS[n][0]} ({n})": results[n] for n in CLAIM_RUNS["group"]}
        out.append("(i) group gate\n\n" + table(rows, "synth-group", "group gate"))
    if "age" in claims and have(CLAIM_RUNS["age"][:3]):  # the window sweep's rows join as they are evaluated
        rows = {f"{SFT_RUNS[n][1]} ({n})": results[n] for n in CLAIM_RUNS["age"] if n in results}
        sweep = f"\n\n{sweep_table(evals)}" if evals and "paper" in evals else ""
        out.append("(ii) age gate\n\n" + table(rows, "synth-age", "age gate") + sweep)
    dpo = ["paper"] + [f"dpo-{loss}" for loss in DPO_LOSSES]
    if "dpo" in claims and have(dpo):
        rows = {(f"DPO {n.removeprefix('dpo-')}" if n.startswith("dpo-") else "SFT (paper recipe)"): results[n] for n in dpo}
        wins = "\n".join(f"- DPO {n.removeprefix('dpo-')}: win rate {w['win_rate']:.3f} [{w['low']:.3f}, {w['high']:.3f}] over "
                         f"{w['records']} records ({w['wins']} wins, {w['ties']} ties, {w['losses']} losses)"
                         for n, w in results.get("win_rates", {}).items())
        out.append("(iii) DPO\n\n" + "\n\n".join(f"{b}:\n\n" + table(rows, b, "model") for b in BENCHMARKS)
                   + "\n\nWin rate on the group-level score against the SFT run of the same seed, both benchmarks pooled:\n\n" + wins)
    if "prompts" in claims and have(CLAIM_RUNS["prompts"][:2]):  # the refined row joins once it is evaluated
        names = {"captions-coarse": "coarse captions", "captions-per-subject": "per-subject captions",
                 "captions-refined": "per-subject, refined against badcases"}
        rows = {label: results[n] for n, label in names.items() if n in results}
        lines = ["| training captions | seeds | " + " | ".join(n for _, n in PROMPT_COLUMNS) + " |",
                 "|---|---|" + "---|" * len(PROMPT_COLUMNS)]
        lines += [f"| {name} | {r['synth-group']['seeds']} | " + " | ".join(cell(r["synth-group"], k) for k, _ in PROMPT_COLUMNS)
                  + " |" for name, r in rows.items()]
        out.append("(iv) training captions, on synth-group\n\n" + "\n".join(lines) + "\n\n" + binding_table(rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", nargs="+", choices=sorted(CLAIM_RUNS), default=["group", "age", "dpo"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="training seeds (at least two; default 0 1)")
    parser.add_argument("--sft-steps", type=int, default=600, help="SFT budget of every variant in steps (default: 600)")
    parser.add_argument("--dpo-steps", type=int, default=200, help="DPO budget in steps (default: 200, configs/synth-dpo.yaml)")
    parser.add_argument("--pairs-items", type=int, default=200, help="training scenes per DPO pair build (default: 200)")
    parser.add_argument("--limit", type=int, default=100, help="records of each benchmark, evenly spread (default: 100)")
    parser.add_argument("--badcase-items", type=int, default=100,
                        help="prompts: training scenes the badcase library is mined on (default: 100)")
    parser.add_argument("--out", default="runs/claims", help="runs and results (default: runs/claims)")
    parser.add_argument("--keep", default="benchmarks/results/claims",
                        help="committed copies of finished evaluations, reused before training (default: benchmarks/results/claims)")
    parser.add_argument("--only-kept", action="store_true",
                        help="train and evaluate nothing: report from the kept evaluations (seconds); a claim missing one is 'not measured'")
    parser.add_argument("--readme", type=Path, help="also write the What-reproduces table into this README's claims-table block")
    args = parser.parse_args()
    if len(set(args.seeds)) < 2:
        parser.error("--seeds: at least two different training seeds (intervals and spread need them)")
    os.chdir(ROOT)
    # The rules backend writes exactly the cast's captions: the per-subject row is then the paper-recipe runs.
    same_captions = "prompts" in args.claims and (args.only_kept or write_captions())
    alias = {"captions-per-subject": "paper"} if same_captions else {}
    evals = {}
    for model in claim_models(args.claims, alias):
        folders = [evaluation(model, seed, args) for seed in args.seeds]
        if all(folders):
            evals[model] = folders
    evals.update({n: evals[a] for n, a in alias.items() if a in evals})
    results = {n: pool(folders) for n, folders in evals.items()}
    phrasing = None
    if "prompts" in args.claims and "captions-refined" in evals and "captions-per-subject" in evals:
        refined_prompts = [refined_prompts_evaluation(seed, args) for seed in args.seeds]
        phrasing = phrasing_table(evals, refined_prompts) if all(refined_prompts) else None
    if "dpo" in args.claims and all(m in evals for m in ["paper"] + [f"dpo-{loss}" for loss in DPO_LOSSES]):
        results["win_rates"] = win_rates(evals)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if all(n in results for n in CLAIM_RUNS["group"]) and "group" in args.claims:
        pareto_plot({f"{SFT_RUNS[n][0]} ({n})": results[n] for n in CLAIM_RUNS["group"]}, out / "group_pareto.png",
                    "synth-group", "frechet_judge", "Fréchet distance to true renders (judge features; lower = more natural)")
    if all(n in results for n in CLAIM_RUNS["age"][:3]) and "age" in args.claims:
        pareto_plot({f"{SFT_RUNS[n][1]} ({n})": results[n] for n in CLAIM_RUNS["age"] if n in results}, out / "age_frontier.png",
                    "synth-age", "child_rate", "child rate (the child's structure kept)")
    verdicts_table, verdicts = reproduces(args.claims, evals, args)
    settings = {"seeds": args.seeds, "sft_steps": args.sft_steps, "dpo_steps": args.dpo_steps, "limit": args.limit,
                "pairs_items": args.pairs_items}
    (out / "results.json").write_text(json.dumps({"settings": settings, "verdicts": verdicts, "results": results}, indent=2) + "\n")
    note = (f"{len(args.seeds)} training seeds per row ({', '.join(map(str, args.seeds))}), SFT {args.sft_steps} steps, "
            f"{args.limit} records per benchmark per seed, pooled over the seeds.")
    text = (note + " Cells: value [95% bootstrap interval over the pooled records] ±half the seed-to-seed range.\n\n"
            + "What reproduces\n\n" + verdicts_table + "\n\n" + "\n\n".join(sections(args.claims, results, evals))
            + (f"\n\n{phrasing}" if phrasing else "") + "\n")
    (out / "results.md").write_text(text)
    if args.readme:
        write_readme(args.readme, verdicts_table, note)
    print(text)


if __name__ == "__main__":
    main()
