"""Pooling per-record scores over training seeds."""

import json

import pytest

from idglow.eval.pooling import pooled_summary, read_scores


def _score(facesim: float, count_ok: float = 1.0, task: str = "group") -> dict:
    return {"facesim": facesim, "count_ok": count_ok, "size": 2, "task": task, "matched": 2, "own_colour": 2, "leaked": 0,
            "child": 1.0, "adult": 0.0}


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
