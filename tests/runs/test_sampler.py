"""A model folder's recommended sampler: chosen from held-out scores by one rule, read back with bad files named."""

import json

import pytest

from idglow.identity.config import GateConfig
from idglow.runs.sampler import SamplerSettings, read_sampler, recommend, score_key, settings_for
from idglow.utils.config import to_dict

TRAINED = to_dict(GateConfig())


def _result(benchmark, facesim, guidance=1.0, floor=None, schedule=None, identity=True):
    metric = "count_accuracy" if benchmark == "synth-group" else "child_rate"
    result = {"benchmark": f"data/cast/{benchmark}.jsonl", "facesim_norm": facesim, "id_guidance": guidance,
              "identity": identity, metric: floor, "images": 100, "intervals": {"facesim_norm": [facesim - 0.03, facesim + 0.03]}}
    if schedule is not None:
        result["schedule"] = schedule
    return result


def test_recommend_takes_the_best_facesim_that_keeps_each_tasks_floor():
    floored = json.loads(json.dumps(TRAINED))
    floored["group"]["lambda_min"] = 0.3
    scores = {
        "synth-group": _result("synth-group", 0.45, floor=0.97),
        "synth-group, id_guidance 1.5, gate override": _result("synth-group", 0.59, 1.5, 0.94, floored),
        "synth-group, id_guidance 2.5": _result("synth-group", 0.62, 2.5, 0.83),  # best FaceSim, but miscounts
        "synth-group, identity off": _result("synth-group", 0.9, floor=1.0, identity=False),
        "synth-age": _result("synth-age", 0.46, floor=0.89),
        "synth-age, id_guidance 1.25": _result("synth-age", 0.53, 1.25, 0.856),
        "synth-age, id_guidance 1.5": _result("synth-age", 0.58, 1.5, 0.844),  # below the child-rate floor
        "metrics": {"benchmark": "data/cast/synth-group.jsonl", "facesim_norm": 0.99, "count_accuracy": 1.0},  # no sampler
    }
    chosen = recommend(scores, TRAINED)
    assert chosen["group"]["id_guidance"] == 1.5 and chosen["group"]["schedule"] == ["group.lambda_min=0.3"]
    assert chosen["group"]["chosen_from"] == "synth-group, id_guidance 1.5, gate override"
    assert chosen["age"]["id_guidance"] == 1.25 and chosen["age"]["schedule"] == [] and chosen["age"]["child_rate"] == 0.856
    assert "age" not in recommend({"synth-age, id_guidance 1.5": scores["synth-age, id_guidance 1.5"]}, TRAINED)


def test_recommend_asks_the_floor_of_the_intervals_lower_end_where_the_result_has_one():
    # the shipped candidate's chosen-record scores: g1.75 clears 0.85 at its point estimate only, and fell to 0.816 unseen
    risky = _result("synth-age", 0.682, 1.75, 0.872) | {"intervals": {"child_rate": [0.821, 0.916]}}
    safe = _result("synth-age", 0.661, 1.5, 0.900) | {"intervals": {"child_rate": [0.853, 0.941]}}
    chosen = recommend({"synth-age, id_guidance 1.75": risky, "synth-age, id_guidance 1.5": safe}, TRAINED)
    assert chosen["age"]["id_guidance"] == 1.5 and chosen["age"]["child_rate_interval"] == [0.853, 0.941]
    assert "lower end of its 95% interval" in chosen["rule"]
    assert "age" not in recommend({"g1.75": risky}, TRAINED)
    # without an interval the point estimate is all there is
    assert recommend({"g1.75": _result("synth-age", 0.682, 1.75, 0.872)}, TRAINED)["age"]["id_guidance"] == 1.75


def test_recommend_prefers_a_setting_that_reaches_the_goal_to_one_with_more_facesim():
    """The goal tier: the DPO-scaled model's chosen-record scores (benchmarks/results/dpo-scale/scale1.5): guidance 1.5
    has more FaceSim and keeps the floor, but 1.25 reaches the whole age goal (0.6 / 0.9 / mini-adults 0.05)."""
    more = _result("synth-age", 0.685, 1.5, 0.924) | {"mini_adult_rate": 0.076, "intervals": {"child_rate": [0.889, 0.954]}}
    goal = _result("synth-age", 0.637, 1.25, 0.956) | {"mini_adult_rate": 0.044, "intervals": {"child_rate": [0.929, 0.98]}}
    chosen = recommend({"g1.5": more, "g1.25": goal}, TRAINED)["age"]
    assert chosen["id_guidance"] == 1.25 and chosen["meets_goal"] and chosen["mini_adult_rate"] == 0.044
    assert not recommend({"g1.5": more}, TRAINED)["age"]["meets_goal"]
    # a goal setting below the floor is still out; one short of a single goal part is not preferred
    below = goal | {"intervals": {"child_rate": [0.84, 0.98]}}
    assert recommend({"g1.5": more, "g1.25": below}, TRAINED)["age"]["id_guidance"] == 1.5
    short = goal | {"facesim_norm": 0.59}
    assert recommend({"g1.5": more, "g1.25": short}, TRAINED)["age"]["id_guidance"] == 1.5
    group = _result("synth-group", 0.71, 1.0, 0.95) | {"intervals": {"count_accuracy": [0.91, 0.99]}}
    richer = _result("synth-group", 0.73, 1.5, 0.89) | {"intervals": {"count_accuracy": [0.9, 0.95]}}
    assert recommend({"a": group, "b": richer}, TRAINED)["group"]["id_guidance"] == 1.0  # 0.89 misses the goal's count


def test_recommend_leaves_out_a_setting_much_less_natural_than_the_most_natural_one():
    """The Fréchet margin: the DPO-scaled model's chosen-record group scores (benchmarks/results/dpo-scale/scale1.5):
    guidance 1.25 has more FaceSim but a judge Fréchet 1.6 above guidance 1's, as it had on unseen records."""
    natural = _result("synth-group", 0.624, 1.0, 0.98) | {"frechet_judge": 2.58}
    guided = _result("synth-group", 0.631, 1.25, 0.95) | {"frechet_judge": 4.19}
    chosen = recommend({"g1": natural, "g1.25": guided}, TRAINED)["group"]
    assert chosen["id_guidance"] == 1.0 and chosen["frechet_judge"] == 2.58 and "Fréchet within 1" in \
        recommend({"g1": natural}, TRAINED)["rule"]
    assert recommend({"g1": natural, "g1.25": guided | {"frechet_judge": 3.5}}, TRAINED)["group"]["id_guidance"] == 1.25
    # the margin is taken from settings that keep the floor: a natural one that miscounts does not set it
    miscounts = _result("synth-group", 0.5, 1.0, 0.8) | {"frechet_judge": 1.0}
    assert recommend({"bad": miscounts, "g1.25": guided}, TRAINED)["group"]["id_guidance"] == 1.25
    assert recommend({"g1.25": guided | {"frechet_judge": None}}, TRAINED)["group"]["id_guidance"] == 1.25


def test_recommend_keeps_the_shipped_models_pick():
    """The goal tier changes nothing where no candidate reaches the goal: the shipped model's scores give back its
    sampler.json picks."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2] / "assets" / "idglow"
    provenance, shipped = (json.loads((root / name).read_text()) for name in ("provenance.json", "sampler.json"))
    trained = json.loads((root / "config.json").read_text())["model"]["identity"]["gate"]
    chosen = recommend(provenance["scores"], trained)
    for task in ("group", "age"):
        assert chosen[task]["chosen_from"] == shipped[task]["chosen_from"]


def test_read_sampler_round_trips_and_names_a_bad_field(tmp_path):
    assert read_sampler(tmp_path) == {}  # a training run: no recommendation
    chosen = recommend({"g": _result("synth-group", 0.5, 1.5, 0.95), "a": _result("synth-age", 0.5, 1.25, 0.9)}, TRAINED)
    (tmp_path / "sampler.json").write_text(json.dumps(chosen))
    settings = read_sampler(tmp_path)
    assert settings["group"].id_guidance == 1.5 and settings["age"].id_guidance == 1.25
    guidance, schedule = settings_for({**settings, "group": SamplerSettings(1.5, ("group.lambda_min=0.3",))},
                                      ["group", "age", "group"])
    assert guidance == [1.5, 1.25, 1.5] and schedule == ["group.lambda_min=0.3"]
    assert settings_for({}, ["age"]) == ([1.0], [])
    (tmp_path / "sampler.json").write_text(json.dumps({"group": {"id_guidance": "high"}}))
    with pytest.raises(ValueError, match=r"sampler.json: group.id_guidance: expected a number"):
        read_sampler(tmp_path)
    (tmp_path / "sampler.json").write_text(json.dumps({"age": {"schedule": ["age.sigma_lo"]}}))
    with pytest.raises(ValueError, match=r"sampler.json: age.schedule: expected a list of KEY=VALUE"):
        read_sampler(tmp_path)
    (tmp_path / "sampler.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        read_sampler(tmp_path)


def test_export_keeps_one_benchmark_scored_under_several_samplers_apart():
    assert score_key("synth-group", {"id_guidance": 1.0, "identity": True}) == "synth-group"
    assert score_key("synth-group", {"id_guidance": 1.5}) == "synth-group, id_guidance 1.5"
    assert score_key("synth-age", {"id_guidance": 2.0, "schedule": {}}) == "synth-age, id_guidance 2, gate override"
    assert score_key("synth-age", {"identity": False}) == "synth-age, identity off"
    trained = {"group": {"lambda_min": 0.0, "kind": "linear_decay"}, "age": {"sigma_lo": 0.3}}
    floored = {"group": {"lambda_min": 0.3, "kind": "linear_decay"}, "age": {"sigma_lo": 0.3}}
    assert score_key("synth-group", {"id_guidance": 1.5, "schedule": floored}, trained) == \
        "synth-group, id_guidance 1.5, gate group.lambda_min=0.3"


def test_score_folders_are_read_and_keyed_and_an_empty_one_is_named(tmp_path):
    import json

    from idglow.runs.sampler import read_score_folders

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "synth-group.json").write_text(json.dumps({"facesim_norm": 0.5, "id_guidance": 1.5}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "synth-group.json").write_text(json.dumps({"facesim_norm": 0.4}))
    scores = read_score_folders([tmp_path / "a", tmp_path / "b"], None)
    assert scores == {"synth-group, id_guidance 1.5": {"facesim_norm": 0.5, "id_guidance": 1.5}, "synth-group": {"facesim_norm": 0.4}}
    assert read_score_folders([], None) == {}
    with pytest.raises(FileNotFoundError, match="--scores: no JSON results in .*empty"):
        read_score_folders([tmp_path / "empty"], None)


def test_a_guidance_interval_travels_from_the_scores_to_sampler_json_and_each_sample(tmp_path):
    from idglow.runs.sampler import intervals_for

    limited = {**_result("synth-group", 0.66, 2.0, 0.95), "id_guidance_interval": [0.7, 1.0]}
    scores = {"synth-group": _result("synth-group", 0.62, 1.0, 0.97), "synth-group, id_guidance 2 at sigma 0.7-1": limited}
    assert score_key("synth-group", limited) == "synth-group, id_guidance 2 at sigma 0.7-1"
    chosen = recommend(scores, TRAINED)
    assert chosen["group"]["id_guidance"] == 2.0 and chosen["group"]["id_guidance_interval"] == [0.7, 1.0]
    (tmp_path / "sampler.json").write_text(json.dumps(chosen))
    settings = read_sampler(tmp_path)
    assert settings["group"].id_guidance_interval == (0.7, 1.0)
    assert intervals_for(settings, ["group", "age"]) == [(0.7, 1.0), (0.0, 1.0)]  # age: every step
    assert intervals_for({}, ["group"]) is None
    stronger = {**_result("synth-group", 0.70, 1.0, 0.99), "id_scale": 1.5}  # sampler.json cannot carry it: never picked
    assert score_key("synth-group", stronger) == "synth-group, identity strength 1.5"
    assert recommend({**scores, "synth-group, identity strength 1.5": stronger}, TRAINED)["group"] == chosen["group"]
    for bad in ([0.8, 0.2], [0.5], "high", [0.2, 1.5]):
        (tmp_path / "sampler.json").write_text(json.dumps({"group": {"id_guidance": 2, "id_guidance_interval": bad}}))
        with pytest.raises(ValueError, match=r"sampler.json: group.id_guidance_interval: expected \[sigma_lo, sigma_hi\]"):
            read_sampler(tmp_path)
