"""Pooling per-record scores over training seeds."""

import json

import pytest

from idglow.eval.pooling import independent_difference, paired_difference, pooled_summary, read_scores


def _score(facesim: float, count_ok: float = 1.0, task: str = "group", id: str = "r", leaked: int = 0,
           child: float = 1.0, size: int = 2) -> dict:
    return {"id": id, "facesim": facesim, "count_ok": count_ok, "size": size, "task": task, "matched": 2, "own_colour": 2 - min(leaked, 2),
            "leaked": leaked, "child": child, "adult": 1.0 - child}


def test_pooling_two_seeds_averages_them_and_reports_their_spread():
    a = [_score(v) for v in (0.2, 0.3, 0.4, 0.3)]
    b = [_score(v, count_ok=0.0) for v in (0.5, 0.6, 0.7, 0.6)]
    pooled = pooled_summary([a, b], mu_real=0.5)
    assert pooled["seeds"] == 2 and pooled["images"] == 8
    assert pooled["facesim_norm"] == pytest.approx((0.3 + 0.6) / 2 / 0.5)
    assert pooled["per_seed"]["facesim_norm"] == pytest.approx([0.6, 1.2])
    assert pooled["spread"]["facesim_norm"] == pytest.approx(0.6) and pooled["spread"]["count_accuracy"] == 1.0
    low, high = pooled["intervals"]["facesim_norm"]
    assert low < pooled["facesim_norm"] < high  # resampled over the 8 pooled records
    same = pooled_summary([a, a], mu_real=0.5)
    assert same["spread"]["facesim_norm"] == 0 and same["facesim_norm"] == pytest.approx(0.6)


def test_pooling_refuses_a_seed_without_records_and_names_a_missing_scores_file(tmp_path):
    with pytest.raises(ValueError, match="every training seed needs"):
        pooled_summary([[_score(0.3)], []], mu_real=0.5)
    with pytest.raises(FileNotFoundError, match="synth-group.scores.jsonl: no per-record scores"):
        read_scores(tmp_path, "synth-group")
    (tmp_path / "synth-group.scores.jsonl").write_text(json.dumps(_score(0.3)) + "\n")
    assert read_scores(tmp_path, "synth-group")[0]["facesim"] == 0.3


def _seeds(values: list[list[tuple]], task: str = "group") -> list[list[dict]]:
    return [[_score(f, task=task, id=f"r{i}", leaked=leak, child=child, size=size)
             for i, (f, leak, child, size) in enumerate(seed)] for seed in values]


def test_paired_difference_is_the_difference_of_the_pooled_summaries():
    a = _seeds([[(0.5, 1, 1.0, 2), (0.2, 0, 0.0, 3), (0.4, 2, 1.0, 4)], [(0.6, 0, 1.0, 2), (0.1, 1, 0.5, 3), (0.3, 0, 0.0, 4)]], "age")
    b = _seeds([[(0.3, 0, 0.0, 2), (0.25, 1, 1.0, 3), (0.1, 0, 0.0, 4)], [(0.2, 2, 1.0, 2), (0.4, 0, 0.0, 3), (0.2, 1, 1.0, 4)]], "age")
    pa, pb = pooled_summary(a, 0.8), pooled_summary(b, 0.8)
    for key in ("facesim_norm", "leakage_rate", "colour_accuracy", "child_rate", "mini_adult_rate", "count_accuracy"):
        result = paired_difference(a, b, key, 0.8)
        assert result["difference"] == pytest.approx(pa[key] - pb[key]), key
        low, high = result["interval"]
        assert low <= result["difference"] <= high and result["records"] == 6
    low, high = pa["intervals"]["colour_accuracy"]  # own colour / matched subjects, resampled over records
    assert low <= pa["colour_accuracy"] <= high and low < high


def test_paired_difference_removes_what_both_models_share():
    """B is A lowered by 0.1 on every record: records vary widely, the difference not at all, so its interval is a
    point, where the two models' own intervals are wide and overlap."""
    values = [0.9, 0.1, 0.6, 0.3, 0.8, 0.2, 0.5, 0.7]
    a = _seeds([[(v, 0, 1.0, 2) for v in values], [(v / 2, 0, 1.0, 2) for v in values]])
    b = _seeds([[(v - 0.1, 0, 1.0, 2) for v in values], [(v / 2 - 0.1, 0, 1.0, 2) for v in values]])
    result = paired_difference(a, b, "facesim_norm", 0.5)
    assert result["interval"] == pytest.approx([0.2, 0.2]) and result["difference"] == pytest.approx(0.2)
    low_a, high_a = pooled_summary(a, 0.5)["intervals"]["facesim_norm"]
    assert high_a - low_a > 0.3
    assert paired_difference(a, b, "swap_rate", 0.5) is None  # no record has swaps


def test_paired_difference_refuses_unpaired_records_and_unknown_metrics():
    a, b = _seeds([[(0.5, 0, 1.0, 2)]]), [[_score(0.3, id="other")]]
    with pytest.raises(ValueError, match="seed 0: record r0 was scored for one model only"):
        paired_difference(a, b, "facesim_norm", 0.5)
    with pytest.raises(ValueError, match="key: expected one of"):
        paired_difference(a, a, "fid", 0.5)
    with pytest.raises(ValueError, match="the same training seeds"):
        paired_difference(a, a + a, "facesim_norm", 0.5)


def test_independent_difference_matches_the_summaries_and_the_normal_interval():
    """Two models on different records, each over its own mu_real: the difference of their summaries, and an interval
    that (with many records) matches the normal one, 1.96 sqrt(var_a / n_a + var_b / n_b) either side."""
    import numpy as np

    from idglow.eval.cast_bench import summarise

    rng = np.random.default_rng(1)
    a = [_score(float(v), id=f"a{i}") for i, v in enumerate(rng.uniform(0.2, 0.8, 400))]
    b = [_score(float(v), count_ok=float(i % 3 == 0), id=f"b{i}") for i, v in enumerate(rng.uniform(0.1, 0.5, 300))]
    result = independent_difference(a, b, "facesim_norm", 0.8, 0.4)
    assert result["difference"] == pytest.approx(summarise(a, 0.8)["facesim_norm"] - summarise(b, 0.4)["facesim_norm"])
    assert result["records"] == [400, 300]
    fa, fb = np.array([s["facesim"] for s in a]) / 0.8, np.array([s["facesim"] for s in b]) / 0.4
    half = 1.96 * np.sqrt(fa.var() / len(fa) + fb.var() / len(fb))
    low, high = result["interval"]
    assert (high - low) / 2 == pytest.approx(half, rel=0.1) and low < result["difference"] < high
    count = independent_difference(a, b, "count_accuracy", 0.8, 0.4)
    assert count["difference"] == pytest.approx(1 - 100 / 300)
    # unlike the paired interval, what the records share is not taken out: B = A - 0.1 gives a wide interval
    shifted = [{**s, "facesim": s["facesim"] - 0.1} for s in a]
    low, high = independent_difference(a, shifted, "facesim_norm", 0.5, 0.5)["interval"]
    assert low < 0.2 < high and high - low > 0.05
    assert independent_difference(a, b, "swap_rate", 0.8, 0.4) is None  # no record has swaps
    with pytest.raises(ValueError, match="key: expected one of"):
        independent_difference(a, b, "fid", 0.8, 0.4)


def test_keep_evaluation_copies_summaries_and_scores_and_nothing_else(tmp_path):
    from idglow.eval.pooling import evaluated, keep_evaluation

    source = tmp_path / "eval"
    source.mkdir()
    for name in ("synth-group.json", "synth-group.scores.jsonl", "synth-group.png"):
        (source / name).write_text(name)
    assert not evaluated(tmp_path / "kept", ["synth-group"])
    kept = keep_evaluation(source, tmp_path / "kept", ["synth-group"])
    assert evaluated(kept, ["synth-group"]) and sorted(p.name for p in kept.iterdir()) == ["synth-group.json", "synth-group.scores.jsonl"]
    assert not evaluated(kept, ["synth-group", "synth-age"])


def test_colour_binding_splits_matched_people_by_where_their_colour_comes_from():
    from idglow.eval.cast_bench import colour_binding

    scores = [{"size": 2, "matched": 2, "own_colour": 1, "leaked": 1}, {"size": 4, "matched": 3, "own_colour": 1, "leaked": 1},
              {"size": 1, "matched": 1, "own_colour": 1, "leaked": 0}]  # a single person cannot leak: left out
    split = colour_binding(scores)
    assert split["people"] == 5 and split["own"] == pytest.approx(0.4) and split["leaked"] == pytest.approx(0.4)
    assert split["neither"] == pytest.approx(0.2) and split["binding"] == pytest.approx(0.5)
    assert split["chance"] == pytest.approx((2 / 2 + 3 / 4) / 5)  # a random deal: 1/2 for two people, 1/4 for four
    assert colour_binding(scores[2:]) is None


def test_estimate_text_gives_the_interval_when_there_is_one():
    from idglow.eval.pooling import estimate_text

    summary = {"facesim_norm": 0.6641, "count_accuracy": 0.94, "intervals": {"facesim_norm": [0.6443, 0.6838]}}
    assert estimate_text(summary, "facesim_norm") == "0.664 [0.644, 0.684]"
    assert estimate_text(summary, "count_accuracy") == "0.940"
    assert estimate_text(summary, "child_rate") == "–" and estimate_text(None, "facesim_norm") == "–"


def test_lever_table_pairs_the_lever_with_its_baseline_and_reads_the_reference_effect(tmp_path):
    """The lever's row minus the baseline's is the paired difference of their records; the references' effect is the
    last diagnostic step's held-out loss with them minus without them."""
    from idglow.eval.cast_bench import summarise
    from idglow.eval.lever_tables import lever_table, reference_effect, reference_effect_table

    for name, values, frechet in (("base", (0.2, 0.4, 0.3), 3.0), ("lever", (0.3, 0.5, 0.5), 2.5)):
        folder = tmp_path / name
        folder.mkdir()
        scores = [_score(v, id=f"r{i}") for i, v in enumerate(values)]
        (folder / "synth-group.scores.jsonl").write_text("".join(json.dumps(s) + "\n" for s in scores))
        summary = summarise(scores, 0.5) | {"mu_real": 0.5, "frechet_judge": frechet}
        (folder / "synth-group.json").write_text(json.dumps(summary))
    lines, diffs = lever_table("synth-group", ("facesim_norm",), "groups", tmp_path / "base", tmp_path / "lever")
    assert diffs["facesim_norm"]["difference"] == pytest.approx((1.3 - 0.9) / 3 / 0.5)
    assert diffs["frechet_judge"]["difference"] == pytest.approx(-0.5)
    assert lines[0] == "### groups\n" and lines[-2].startswith("| lever minus baseline | +0.267 [")
    # against another lever: its rows and the difference carry its name
    named, _ = lever_table("synth-group", ("facesim_norm",), "groups", tmp_path / "base", tmp_path / "lever",
                           "ensemble")
    assert named[3].startswith("| ensemble | 0.600") and named[-2].startswith("| lever minus ensemble | +0.267 [")
    diagnostics = tmp_path / "diagnostics.jsonl"
    rows = [{"step": 5, "heldout_true_sigma_0.05": 0.3, "heldout_none_sigma_0.05": 0.1},
            {"step": 10, "heldout_true_sigma_0.05": 0.31, "heldout_none_sigma_0.05": 0.3}]
    diagnostics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    effect = reference_effect(diagnostics, ["0.05"])
    assert effect["step"] == 10 and effect["0.05"] == pytest.approx(0.01)
    assert reference_effect_table({"lever": effect}, ["0.05"])[-1] == "| lever (10) | +10.00 |"


def test_probe_table_pools_the_light_tones_with_a_wilson_interval():
    """The light-tone skin column pools tones 0-2 by faces (exact share, mean shift), its interval is Wilson's
    (checked against the closed form at p = 1/2), and each factor's probe accuracy is printed to two places."""
    from idglow.eval.lever_tables import PROBED_FACTORS, light_tone_skin, probe_table, wilson_interval

    lo, hi = wilson_interval(50, 100)
    half = 1.96 * (0.25 / 100 + 1.96 ** 2 / (4 * 100 ** 2)) ** 0.5 / (1 + 1.96 ** 2 / 100)  # centre stays 1/2
    assert lo == pytest.approx(0.5 - half) and hi == pytest.approx(0.5 + half)
    tones = {"0": {"faces": 10, "exact": 0.5, "mean_shift": 2.0}, "1": {"faces": 30, "exact": 0.1, "mean_shift": 1.0},
             "2": {"faces": 0, "exact": 0.0, "mean_shift": 0.0}, "3": {"faces": 99, "exact": 1.0, "mean_shift": 0.0}}
    cap = {"probes": {"skin_by_tone": {"g/run": tones},
                      "accuracy": {"g/run": {f: {"accuracy": 0.5} for f in PROBED_FACTORS} | {"skin": {"accuracy": 0.126}}}}}
    light = light_tone_skin(cap, "g/run")
    assert light["faces"] == 40 and light["exact"] == pytest.approx(8 / 40) and light["shift"] == pytest.approx(50 / 40)
    assert light["interval"] == pytest.approx(wilson_interval(8, 40))
    lines, rows = probe_table("probes", {"model": (cap, "g/run")})
    assert rows["model"] == light and lines[-1].startswith("| model | 0.13 | 0.50 |")
    assert lines[-1].endswith("| 0.200 [{:.3f}, {:.3f}] / +1.25 (40 faces) |".format(*light["interval"]))


def test_texture_lever_checks_apply_the_written_bars():
    """The texture levers' criteria: light-tone skin +0.10 and less dark, FaceSim and the check embedder within 0.03,
    count accuracy and child rate within 0.02; each bar is inclusive and fails just past it."""
    from idglow.eval.lever_tables import texture_lever_checks

    def found(light_gain=0.10, shift=-0.1, facesim=-0.03, check=-0.03, count=-0.02, child=-0.02):
        return {"light": {"baseline": {"exact": 0.4, "shift": 1.0}, "lever": {"exact": 0.4 + light_gain, "shift": 1.0 + shift}},
                "synth-group": {"facesim_norm": {"difference": facesim}, "count_accuracy": {"difference": count}},
                "synth-age": {"child_rate": {"difference": child}}, "check": {"difference": check}}

    assert all(texture_lever_checks(found()).values())
    for change, failed in (({"light_gain": 0.09}, "light-tone"), ({"shift": 0.0}, "light-tone"),
                           ({"facesim": -0.031}, "FaceSim/mu"), ({"check": -0.031}, "check embedder"),
                           ({"count": -0.021}, "count accuracy"), ({"child": -0.021}, "child rate")):
        checks = texture_lever_checks(found(**change))
        assert [name for name, ok in checks.items() if not ok] == [n for n in checks if failed in n]
