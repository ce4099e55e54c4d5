"""``report.html`` of ``idglow demo``: references -> outputs, the metrics and ablation tables, plots, failures.

Images are linked relative to the report (they stay in the demo folder); a small script counts the
images that loaded and writes the count into ``#image-check``, which the headless-browser check reads.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from idglow.data.manifest import evenly_spread, load_manifest
from idglow.demo.stages import BENCHMARKS, MODELS, DemoContext
from idglow.utils.io import atomic_write

STYLE = """body{font-family:system-ui,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} .lead{color:#555} table{border-collapse:collapse;margin:1em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap} th:first-child,td:first-child{text-align:left}
img.px{image-rendering:pixelated;height:96px} img.ref{image-rendering:pixelated;height:48px;margin-right:2px}
.row{display:flex;gap:10px;align-items:flex-end;margin:.6em 0;flex-wrap:wrap} .cap{font-size:.8em;color:#555}
figure{margin:0} img.face{image-rendering:pixelated;height:64px;width:64px} table.faces td{text-align:center}
td.miss{color:#a00} .prompt{font-size:.85em;color:#333;max-width:1100px} code{background:#f4f4f4;padding:0 .2em}"""

CHECK = """<script>window.addEventListener('load',()=>{const imgs=[...document.images];
const ok=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;const el=document.getElementById('image-check');
el.dataset.total=imgs.length;el.dataset.loaded=ok;el.textContent=ok+' of '+imgs.length+' images loaded';});</script>"""

METRICS = [("group_score", "group-level score", "{:.3f}"), ("facesim_norm", "FaceSim / mu_real", "{:.3f}"),
           ("identification", "identified", "{:.3f}"),
           ("id_conf", "ID-Conf", "{:.3f}"), ("count_accuracy", "count accuracy", "{:.3f}"),
           ("artifact_score", "artifact (lower better)", "{:.3f}"), ("frechet_judge", "Fréchet (lower better)", "{:.2f}"),
           ("leakage_rate", "leakage (lower better)", "{:.3f}"), ("child_rate", "child rate", "{:.3f}")]


def _img(ctx: DemoContext, path: Path, cls: str = "px", alt: str = "") -> str:
    rel = Path(path).resolve().relative_to(ctx.out.resolve())
    return f'<img class="{cls}" src="{html.escape(str(rel))}" alt="{html.escape(alt)}">'


def _fmt(value, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, (int, float)) else "—"


def _scores(ctx: DemoContext, folder: str, bench: str) -> dict[str, dict]:
    """Per-record ``idglow eval`` scores of one model on one benchmark, by record id."""
    path = ctx.out / "eval" / folder / bench / "eval" / "scores.jsonl"
    return {s["id"]: s for s in map(json.loads, path.read_text().splitlines())}


def _face_crop(ctx: DemoContext, image: Path, box: list[float], name: str, size: int = 64) -> Path:
    """The matched face of a generated image, cut at its detected box (a little wider) and upscaled for the eye."""
    from PIL import Image

    x0, y0, x1, y1 = box
    pad = 0.15 * max(x1 - x0, y1 - y0)
    with Image.open(image) as picture:
        crop = picture.convert("RGB").crop((round(x0 - pad), round(y0 - pad), round(x1 + pad), round(y1 + pad)))
    path = ctx.out / "eval" / "faces" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: crop.resize((size, size), Image.NEAREST).save(p, format="PNG"))
    return path


def _face_pairs(ctx: DemoContext, bench: str, record: dict, scores: dict[str, dict[str, dict]]) -> str:
    """One row per reference: its face, then the face each model drew for it (Hungarian-matched), with the
    judge similarity and whether that face is identified as this person among all of the benchmark's people."""
    manifest = ctx.cast / f"{bench}.jsonl"
    head = "<tr><th>reference</th>" + "".join(f"<th>{html.escape(label)}</th>" for label in MODELS) + "</tr>"
    rows = []
    for k, ref in enumerate(record["refs"]):
        cells = [f"<td>{_img(ctx, manifest.parent / ref, 'face', f'reference {k + 1}')}</td>"]
        for label, (folder, _, _) in MODELS.items():
            score = scores[folder].get(record["id"])
            box = score and score.get("matched_boxes", [None] * (k + 1))[k]
            if not box:
                cells.append("<td class='miss'>no face</td>")
                continue
            crop = _face_crop(ctx, ctx.out / "eval" / folder / bench / f"{record['id']}.png", box, f"{folder}-{record['id']}-{k}")
            mark = "identified" if k in score.get("identified_slots", []) else "not identified"
            cells.append(f"<td>{_img(ctx, crop, 'face', label)}<div class='cap'>{score['facesim_per_ref'][k]:.2f} · "
                         f"{mark}</div></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='faces'>{head}{''.join(rows)}</table>"


def _examples(ctx: DemoContext, bench: str) -> str:
    """Rows of: reference faces -> the same record from every model (same seed), then face by face."""
    manifest = ctx.cast / f"{bench}.jsonl"
    evaluated = json.loads((ctx.out / "eval" / "sft" / bench / "eval" / "group_scores.json").read_text())
    records = [r for r in load_manifest(manifest, "benchmark") if r["id"] in evaluated and len(r["refs"]) >= 2]
    scores = {folder: _scores(ctx, folder, bench) for folder, _, _ in MODELS.values()}
    parts = []
    for record in evenly_spread(records, ctx.preset.examples):
        refs = "".join(_img(ctx, manifest.parent / r, "ref", "reference") for r in record["refs"])
        cells = [f'<figure>{refs}<figcaption class="cap">references</figcaption></figure>']
        for label, (folder, _, _) in MODELS.items():
            image = ctx.out / "eval" / folder / bench / f"{record['id']}.png"
            cells.append(f'<figure>{_img(ctx, image, alt=label)}<figcaption class="cap">{html.escape(label)}</figcaption></figure>')
        parts.append(f'<p class="prompt">{html.escape(record["prompt"])}</p><div class="row">{"".join(cells)}</div>'
                     f'{_face_pairs(ctx, bench, record, scores)}')
    return "\n".join(parts)


ABLATION = [("synth-group", "facesim_norm", "group FaceSim/mu"), ("synth-group", "identification", "group identified"),
            ("synth-group", "count_accuracy", "group count acc"),
            ("synth-group", "leakage_rate", "group leakage"), ("synth-group", "frechet_judge", "group Fréchet"),
            ("synth-age", "facesim_norm", "age FaceSim/mu"), ("synth-age", "identification", "age identified"),
            ("synth-age", "child_rate", "age child rate"),
            ("synth-age", "mini_adult_rate", "age mini-adult rate"), ("synth-age", "frechet_judge", "age Fréchet")]


def _ablation_table(results: dict) -> str:
    """One row per model, the key column of each task: what each added part changes."""
    head = "<tr><th>model</th>" + "".join(f"<th>{html.escape(title)}</th>" for _, _, title in ABLATION) + "</tr>"
    rows = [f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{_fmt(by_bench[b].get(k), '{:.3f}')}</td>"
                                                          for b, k, _ in ABLATION) + "</tr>"
            for label, by_bench in results["models"].items()]
    return f"<table>{head}{''.join(rows)}</table>"


def _metrics_table(results: dict, bench: str, models: tuple[str, ...] = ("SFT", "DPO")) -> str:
    head = "<tr><th>model</th>" + "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in METRICS) + "</tr>"
    rows = []
    for label in models:
        m = results["models"][label][bench]
        rows.append(f"<tr><td>{html.escape(label)}</td>" + "".join(f"<td>{_fmt(m.get(k), f)}</td>" for k, _, f in METRICS) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _failures(ctx: DemoContext, limit: int = 6) -> str:
    """Badcases of the refine round: the round-0 image, what failed, the rewritten prompt, the round-1 image."""
    library = ctx.out / "refine" / "badcases.jsonl"
    rewritten = {json.loads(line)["id"]: json.loads(line) for line in (ctx.out / "refine" / "refined_prompts.jsonl").read_text().splitlines()}
    seen, parts = set(), []
    for entry in map(json.loads, library.read_text().splitlines()):
        if entry["id"] in seen or entry["id"] not in rewritten or len(seen) >= limit:
            continue
        seen.add(entry["id"])
        before = ctx.out / "refine" / "round0" / f"{entry['id']}.png"
        after = ctx.out / "refine" / "round1" / f"{entry['id']}.png"
        failures = "; ".join(f"subject {k}: {', '.join(v)}" for k, v in rewritten[entry["id"]]["failures"].items())
        parts.append(f'<p class="prompt"><b>{html.escape(failures)}</b><br>before: {html.escape(entry["prompt"])}<br>'
                     f'after: {html.escape(rewritten[entry["id"]]["prompt"])}</p><div class="row">'
                     f'<figure>{_img(ctx, before, alt="round 0")}<figcaption class="cap">round 0</figcaption></figure>'
                     f'<figure>{_img(ctx, after, alt="round 1")}<figcaption class="cap">round 1 (rewritten prompt)</figcaption></figure></div>')
    return "\n".join(parts) or "<p>No failures were found in this round.</p>"


def _schedule_plot(ctx: DemoContext) -> Path:
    from idglow.eval.plots import plot_gate
    from idglow.identity.gate import DynamicsAwareGate
    from idglow.recipes.sft import SFTConfig
    from idglow.utils.config import from_dict

    cfg = from_dict(SFTConfig, json.loads((ctx.run("sft") / "config.json").read_text()))
    return plot_gate(DynamicsAwareGate(cfg.model.identity.gate), ctx.out / "eval" / "schedules.png")


def write_report(ctx: DemoContext, stages: list[dict], seconds: float) -> Path:
    """Write ``out/report.html`` from the finished stages' outputs."""
    results = json.loads((ctx.out / "eval" / "results.json").read_text())
    win = results["win_rate"]
    stage_rows = "".join(f"<tr><td>{html.escape(s['name'])}</td><td>{s['seconds']:.0f} s</td><td style='text-align:left'>"
                         f"{html.escape(s['summary'])}</td></tr>" for s in stages)
    tables = "".join(f"<h3>{bench}</h3>{_metrics_table(results, bench)}" for bench in BENCHMARKS)
    body = f"""<h1>IdGlow demo</h1>
<p class="lead">Preset <code>{ctx.preset.name}</code>: the synthetic cast, stage-1 SFT from the shipped base model,
group-level DPO, one prompt-refine round, and both held-out benchmarks ({ctx.preset.eval_limit} records each, identities
never seen in training, {ctx.preset.sample_steps} Euler steps, the same seeds for every model). Total {seconds / 60:.1f} minutes.
<span id="image-check">images not checked (scripts off)</span></p>
<h2>Group photos (synth-group)</h2>{_examples(ctx, "synth-group")}
<h2>Adults rendered as children (synth-age)</h2>{_examples(ctx, "synth-age")}
<h2>Metrics: DPO against SFT</h2>
<p>Group-level score (the DPO pairs' ranking, here with the evaluation judge and mu_real), both benchmarks pooled,
ties half: DPO wins <b>{win['win_rate']:.3f}</b> of the records (95% bootstrap interval {win['low']:.3f}-{win['high']:.3f};
{win['wins']} wins, {win['ties']} ties, {win['losses']} losses over {win['records']} records).</p>{tables}
<h2>Ablation: what each part adds</h2>
<p>Identity off is the shipped base model (identity guidance 0 gives exactly its velocity); SFT adds the identity
branch and LoRA; guidance 2 samples the SFT weights with <code>v_none + 2 (v_id - v_none)</code>; DPO adds the
preference adapter on the SFT model.</p>{_ablation_table(results)}
<figure>{_img(ctx, ctx.out / "eval" / "compare" / "pareto.png", "plot", "Pareto plot")}<figcaption class="cap">FaceSim against
quality, every model and benchmark</figcaption></figure>
<figure>{_img(ctx, ctx.out / "eval" / "compare" / "by_size.png", "plot", "FaceSim by group size")}</figure>
<h2>Gate schedules</h2><figure>{_img(ctx, _schedule_plot(ctx), "plot", "gate schedules")}</figure>
<h2>Failures from the badcase library</h2>{_failures(ctx)}
<h2>Stages</h2><table><tr><th>stage</th><th>time</th><th>summary</th></tr>{stage_rows}</table>"""
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>IdGlow demo</title><style>{STYLE}</style></head><body>{body}{CHECK}</body></html>"
    path = ctx.out / "report.html"
    atomic_write(path, lambda p: p.write_text(page))
    return path
