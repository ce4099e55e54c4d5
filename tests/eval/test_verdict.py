"""Claim verdicts, and benchmarks/claims.py reporting from kept evaluations (no training)."""

import json
from pathlib import Path

from conftest import run_script

from idglow.eval.verdict import Check, describe, holds, verdict

ROOT = Path(__file__).parents[2]


def test_a_check_holds_only_when_its_interval_clears_zero_on_the_claimed_side():
    up, down = Check("synth-group", "facesim_norm", "constant", True), Check("synth-group", "copy_paste", "constant", False)
    assert holds(up, {"difference": 0.05, "interval": [0.01, 0.09]})
    assert not holds(up, {"difference": 0.05, "interval": [-0.01, 0.09]})  # the interval reaches zero
    assert not holds(down, {"difference": 0.05, "interval": [0.01, 0.09]})  # beyond doubt, on the wrong side
    assert holds(down, {"difference": -0.05, "interval": [-0.09, -0.01]})
    assert holds(down, {"difference": -0.5, "per_seed": [-0.2, -0.8]}) and not holds(down, {"difference": -0.5, "per_seed": [0.1, -1.1]})
    assert holds(up, None) is None


def test_verdict_and_description():
    assert verdict([True, True]) == "reproduced" and verdict([True, False]) == "partly"
    assert verdict([False, False]) == "not reproduced" and verdict([True, None]) == "not measured" and verdict([]) == "not measured"
    check = Check("synth-group", "facesim_norm", "constant", True)
    assert describe(check, {"difference": 0.031, "interval": [0.012, 0.05]}) == "FaceSim/mu ↑ vs constant: +0.031 [+0.012, +0.050] ✓"
    assert describe(check, None) == "FaceSim/mu vs constant: not measured"


def _kept(folder: Path, facesims: list[float], frechet: float, copy_paste: float, leaked: int = 0,
          benches=(("synth-group", "group"), ("synth-age", "age"))) -> None:
    folder.mkdir(parents=True)
    for bench, task in benches:
        rows = [{"id": f"{bench.split('.')[0]}-{i}", "facesim": f, "count_ok": 1.0, "size": 2, "task": task, "matched": 2,
                 "own_colour": 2 - leaked, "leaked": leaked, "child": 1.0, "adult": 0.0, "swaps": 0, "copy_paste": copy_paste, "identified": 1, "gallery": 50,
                 "group_score": f}
                for i, f in enumerate(facesims)]
        (folder / f"{bench}.scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / f"{bench}.json").write_text(json.dumps({"mu_real": 0.8, "frechet_judge": frechet}))


def test_claims_script_reports_verdicts_from_kept_evaluations_into_the_readme(tmp_path):
    """Linear decay beats both alternatives on FaceSim by 0.1 on every record and on Fréchet in both seeds, but
    copies the references more: two of the three checks per alternative hold, so the claim is 'partly' reproduced."""
    base = [0.2, 0.5, 0.3, 0.6, 0.4]
    for seed in (0, 1):
        for model, shift, frechet, copy in (("paper", 0.1, 5.0, 0.05), ("constant", 0.0, 6.0, 0.01), ("reversed", 0.0, 7.0, 0.0)):
            _kept(tmp_path / "keep" / f"sft-{model}-s{seed}-600steps-limit5", [f + shift for f in base], frechet + seed, copy)
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\n<!-- claims-table:start -->\nold\n<!-- claims-table:end -->\n\ntail\n")
    out = run_script(ROOT / "benchmarks" / "claims.py", "--claims", "group", "--limit", "5",
                     "--keep", str(tmp_path / "keep"), "--out", str(tmp_path / "out"), "--only-kept",
                     "--readme", str(readme), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = readme.read_text()
    assert "old" not in text and text.startswith("# Title") and text.endswith("tail\n")
    row = next(line for line in text.splitlines() if line.startswith("| (i) group gate"))
    assert "FaceSim/mu ↑ vs constant: +0.125 [+0.125, +0.125] ✓" in row  # 0.1 / mu_real 0.8 on every record
    assert "Fréchet ↓ vs reversed: -2.000 (per seed -2.00, -2.00) ✓" in row and "copy-paste ↓ vs constant: +0.040" in row
    assert "**partly**" in row
    assert "| (ii) age gate" in text and "not run" in text  # a claim not asked for keeps its row
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["verdicts"]["group"]["verdict"] == "partly" and (tmp_path / "out" / "group_pareto.png").is_file()


def test_claims_script_without_kept_evaluations_says_not_measured(tmp_path):
    out = run_script(ROOT / "benchmarks" / "claims.py", "--claims", "group", "--only-kept",
                     "--keep", str(tmp_path / "keep"), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert "**not measured**" in out.stdout
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    out = run_script(ROOT / "benchmarks" / "claims.py", "--only-kept", "--readme", str(readme),
                     "--keep", str(tmp_path / "keep"), "--out", str(tmp_path / "out"))
    assert out.returncode != 0 and "has no <!-- claims-table:start -->" in out.stderr


def test_claims_script_reports_age_frontier_and_dpo_win_rates(tmp_path):
    """Every DPO model scores 0.05 above SFT on every record of both benchmarks and seeds: it wins every record, and
    each of its six checks (three losses x two benchmarks) holds. The late window scores 0.1 above the paper's on
    every record: the sweep's paired table says so."""
    base = [0.2, 0.5, 0.3, 0.6]
    models = {"paper": 0.0, "constant": 0.0, "reversed": 0.0, "window-early": 0.0, "window-late": 0.1, "window-wide": 0.0}
    for seed in (0, 1):
        for model, shift in models.items():
            _kept(tmp_path / "keep" / f"sft-{model}-s{seed}-600steps-limit4", [f + shift for f in base], 5.0, 0.0)
        for loss in ("sigmoid", "weighted", "margin"):
            _kept(tmp_path / "keep" / f"dpo-{loss}-s{seed}-600steps-dpo200steps-pairs200-limit4", [f + 0.05 for f in base], 5.0, 0.0)
    out = run_script(ROOT / "benchmarks" / "claims.py", "--claims", "age", "dpo", "--limit", "4",
                     "--keep", str(tmp_path / "keep"), "--out", str(tmp_path / "out"), "--only-kept", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    verdicts = json.loads((tmp_path / "out" / "results.json").read_text())["verdicts"]
    assert verdicts["dpo"]["verdict"] == "reproduced" and len(verdicts["dpo"]["checks"]) == 6
    assert verdicts["age"]["verdict"] == "not reproduced"  # every age variant is the same model here: no check holds
    assert "DPO weighted: win rate 1.000 [1.000, 1.000] over 16 records (16 wins, 0 ties, 0 losses)" in out.stdout
    assert (tmp_path / "out" / "age_frontier.png").is_file()
    results = (tmp_path / "out" / "results.md").read_text()
    assert ("| window 0.5-0.9 (window-late) | +0.125 [+0.125, +0.125] | +0.000 [+0.000, +0.000] | +0.000 [+0.000, +0.000] "
            "| +0.00 (per seed +0.00, +0.00) |") in results


def test_claims_script_reports_the_caption_claim_its_colour_binding_and_the_phrasing_check(tmp_path):
    """Coarse captions leak one of two people's colours on every record, per-subject ones none, and the refined ones
    leak again on plain test prompts but not on refined ones: the checks against coarse hold, the refined row's does
    not (partly), and the phrasing table shows the refined prompts' paired gain. The age claim, run beside it with
    only one window-sweep variant kept, shows the rows kept so far."""
    base = [0.2, 0.5, 0.3, 0.6]
    for seed in (0, 1):
        for model, leaked in (("captions-coarse", 1), ("paper", 0), ("captions-refined", 1)):  # paper = per-subject
            _kept(tmp_path / "keep" / f"sft-{model}-s{seed}-600steps-limit4", base, 5.0, 0.0, leaked=leaked)
        _kept(tmp_path / "keep" / f"sft-captions-refined-s{seed}-600steps-limit4-refined-prompts", base, 5.0, 0.0,
              benches=(("synth-group.refined", "group"),))
        for model in ("constant", "reversed", "window-early"):  # a window sweep kept in part, as across sittings
            _kept(tmp_path / "keep" / f"sft-{model}-s{seed}-600steps-limit4", base, 5.0, 0.0)
    out = run_script(ROOT / "benchmarks" / "claims.py", "--claims", "prompts", "age", "--limit", "4",
                     "--keep", str(tmp_path / "keep"), "--out", str(tmp_path / "out"), "--only-kept", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| (iv)"))
    assert "leakage ↓ vs captions-coarse: -0.500 [-0.500, -0.500] ✓" in row and "colour acc ↑ vs captions-coarse: +0.500" in row
    assert "captions-refined, synth-group: leakage ↓ vs captions-per-subject: +0.500" in row and "**partly**" in row
    assert "| coarse captions | 8 + 8 | 0.500 / 0.500 | 0.500 / 0.500 | 0.000 / 0.000 | 0.500 / 0.500 | 0.500 / 0.500 |" in out.stdout
    assert "Refined minus plain test prompts, paired 95% interval: leakage -0.500 [-0.500, -0.500]" in out.stdout
    assert "| window 0.1-0.5 (window-early) | 2 |" in out.stdout and "window-late" not in out.stdout  # the rows kept so far
    assert (tmp_path / "out" / "age_frontier.png").is_file()



def test_sampler_confirm_against_another_model_reports_paired_differences(tmp_path):
    """benchmarks/sampler_confirm.py --against: the shipped model's kept evaluations against a copy whose every face
    scores 0.08 higher reads +0.08 / mu with a zero-width paired interval; a missing comparison fails before sampling,
    and evaluations made under another sampler than the model now recommends are refused, named, not reused."""
    kept = ROOT / "benchmarks" / "results" / "sampler_confirm"
    run, out = tmp_path / "model", tmp_path / "out"
    run.mkdir()
    for name in ("sampler.json", "config.json"):
        (run / name).write_text((ROOT / "assets" / "idglow" / name).read_text())
    for folder in sorted(kept.glob("synth-*-seed*")):
        bench = folder.name.rsplit("-seed", 1)[0]
        (out / folder.name).mkdir(parents=True)
        (out / folder.name / f"{bench}.json").write_text((folder / f"{bench}.json").read_text())
        lines = [json.loads(line) for line in (folder / f"{bench}.scores.jsonl").read_text().splitlines()]
        (out / folder.name / f"{bench}.scores.jsonl").write_text("".join(json.dumps({**s, "facesim": s["facesim"] + 0.08}) + "\n" for s in lines))
    script = (ROOT / "benchmarks" / "sampler_confirm.py", "--run", run, "--out", out)
    done = run_script(*script, "--against", kept)
    assert done.returncode == 0, done.stderr
    results = json.loads((out / "results.json").read_text())
    for bench in ("synth-group", "synth-age"):
        mu = json.loads((kept / f"{bench}-seed0" / f"{bench}.json").read_text())["mu_real"]
        d = results[bench]["against"]["facesim_norm"]
        assert abs(d["difference"] - 0.08 / mu) < 1e-9 and abs(d["interval"][0] - d["interval"][1]) < 1e-9
        assert results[bench]["against"]["frechet_judge"]["difference"] == 0
    assert "| synth-age | child_rate | +0.000 [+0.000, +0.000] |" in (out / "results.md").read_text()
    done = run_script(*script, "--against", tmp_path / "nowhere")
    assert done.returncode == 2 and "--against: no finished evaluation in" in done.stderr
    sampler = json.loads((run / "sampler.json").read_text())
    sampler["group"]["id_guidance"] = 1.25  # re-exported under another rule: the kept group folders are not its
    (run / "sampler.json").write_text(json.dumps(sampler))
    done = run_script(*script)
    assert done.returncode != 0 and "synth-group-seed0: scored with guidance 1, schedule []" in done.stderr
    assert "but now asked for guidance 1.25" in done.stderr
