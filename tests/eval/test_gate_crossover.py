"""benchmarks/gate_crossover.py: the 2x2 of trained gate x sampling gate, from kept evaluations (no sampling)."""

import json
from pathlib import Path

from conftest import run_script

ROOT = Path(__file__).parents[2]
BASE = [0.2, 0.5, 0.3, 0.6]


def _kept(folder: Path, shift: float, frechet: float) -> None:
    folder.mkdir(parents=True)
    for bench, task in (("synth-group", "group"), ("synth-age", "age")):
        rows = [{"id": f"{bench}-{i}", "facesim": f + shift, "count_ok": 1.0, "size": 2, "task": task, "matched": 2, "own_colour": 2, "swaps": 0,
                 "leaked": 0, "child": 1.0, "adult": 0.0, "copy_paste": 0.0} for i, f in enumerate(BASE)]
        (folder / f"{bench}.scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (folder / f"{bench}.json").write_text(json.dumps({"mu_real": 0.8, "frechet_judge": frechet}))


def test_crossover_splits_a_difference_into_training_and_sampling_effects(tmp_path):
    """Trained with the paper's gates adds 0.1 FaceSim, sampled with them adds 0.04 and lowers Fréchet by 1: each
    effect reads the same at either level of the other factor, and no run is sampled (every cell is kept)."""
    for seed in (0, 1):
        for trained in ("paper", "constant"):
            for sampled in ("paper", "constant"):
                shift = 0.1 * (trained == "paper") + 0.04 * (sampled == "paper")
                frechet = 6.0 - (sampled == "paper") + seed
                name = f"sft-{trained}-s{seed}"
                folder = (tmp_path / "claims" / f"{name}-600steps-limit4" if trained == sampled
                          else tmp_path / "out" / f"{name}-sampled-{sampled}-limit4")
                _kept(folder, shift, frechet)
    out = run_script(ROOT / "benchmarks" / "gate_crossover.py", "--claims", str(tmp_path / "claims"),
                     "--runs", str(tmp_path / "no-runs"), "--out", str(tmp_path / "out"), "--limit", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    effects = json.loads((tmp_path / "out" / "results.json").read_text())["effects"]["synth-group"]
    for gate in ("paper", "constant"):
        training = effects[f"training (paper - constant), sampled {gate}"]
        sampling = effects[f"sampling (paper - constant), trained {gate}"]
        assert abs(training["facesim_norm"]["difference"] - 0.125) < 1e-9  # 0.1 / mu_real 0.8 on every record
        assert max(abs(v - 0.125) for v in training["facesim_norm"]["interval"]) < 1e-9  # a shift on every record
        assert abs(sampling["facesim_norm"]["difference"] - 0.05) < 1e-9
        assert sampling["frechet_judge"]["per_seed"] == [-1.0, -1.0] and training["frechet_judge"]["per_seed"] == [0.0, 0.0]
    assert "| training (paper - constant) | sampled paper | +0.125 [+0.125, +0.125]" in (tmp_path / "out" / "results.md").read_text()


def test_crossover_without_the_claims_runs_names_what_is_missing(tmp_path):
    out = run_script(ROOT / "benchmarks" / "gate_crossover.py", "--claims", str(tmp_path / "claims"),
                     "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode != 0 and "sft-paper-s0-600steps-limit100: no kept claims evaluation" in out.stderr
