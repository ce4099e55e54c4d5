"""idglow pairs build: candidates from an SFT run, per-subject scores, best-vs-worst pairs of training identities only."""

import json

import pytest
from conftest import pairs_build
from conftest import cli as _cli  # in-process: these commands run in seconds

from idglow.data.manifest import ManifestError, load_manifest
from idglow.eval.group_score import PairScoring
from idglow.pairs.build import manifest_identities, select_pairs, training_items


def test_select_pairs_keeps_best_vs_worst_above_the_gap_with_unit_mean_weight():
    cfg = PairScoring(min_gap=0.1, margin_scale=4.0)

    def candidate(name, value):
        return {"image": name, "artifact": [value], "harmony": [value], "identity": [value], "faces": 1}

    scored = [{"id": f"s{i}", "source": f"m:{i}", "prompt": "p", "task": "group", "refs": ["r.png"], "identities": [i],
               "candidates": [candidate(f"{i}a", 0.5), candidate(f"{i}b", 0.5 + gap), candidate(f"{i}c", 0.55)]}
              for i, gap in enumerate([0.4, 0.2, 0.05])]
    pairs, stats = select_pairs(scored, cfg)
    assert stats == {"scenes": 3, "pairs": 2, "dropped_small_gap": 1, "mean_gap": pytest.approx(0.3)}
    assert [(p["winner"], p["loser"]) for p in pairs] == [("0b", "0a"), ("1b", "1a")]
    assert [p["weight"] for p in pairs] == pytest.approx([4 / 3, 2 / 3])
    assert [p["margin"] for p in pairs] == pytest.approx([1.6, 0.8])


@pytest.mark.e2e
def test_pairs_build_writes_a_valid_resumable_preference_manifest_of_training_identities(cast, sft_lora, pairs):
    records = load_manifest(pairs / "pairs.jsonl", "preference")  # validates fields and that every file exists
    assert len(records) == 4 and len((pairs / "scored.jsonl").read_text().splitlines()) == 4
    assert sorted(p.name for p in (pairs / "candidates").iterdir()) == sorted(
        f"{e['id']}_c{j}.png" for e in map(json.loads, (pairs / "scored.jsonl").read_text().splitlines()) for j in range(2))
    assert {r["task"] for r in records} == {"group", "age"}
    for r in records:
        assert r["scores"]["winner"] >= r["scores"]["loser"] and r["margin"] == pytest.approx(2.0 * r["scores"]["gap"])
    assert sum(r["weight"] for r in records) / len(records) == pytest.approx(1.0)
    heldout = manifest_identities(cast / "synth-group.jsonl") | manifest_identities(cast / "synth-age.jsonl")
    used = {i for r in records for i in r["scores"]["identities"]}
    assert heldout and used and not used & heldout
    before = {p: p.stat().st_mtime_ns for p in (pairs / "candidates").iterdir()}
    first = (pairs / "pairs.jsonl").read_text()
    done = pairs_build(cast, sft_lora, pairs, "--min_gap", "0")  # everything scored: nothing is sampled again
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in (pairs / "candidates").iterdir()} == before
    assert (pairs / "pairs.jsonl").read_text() == first


@pytest.mark.e2e
def test_pairs_build_refuses_scenes_with_heldout_identities(cast, sft_lora, tmp_path):
    record = json.loads((cast / "sft-group-train.jsonl").read_text().splitlines()[0])
    bench = json.loads((cast / "synth-group.jsonl").read_text().splitlines()[0])
    record["subjects"][0]["attributes"]["identity"] = bench["expected"]["identities"][0]
    leaky = cast / "leaky.jsonl"
    leaky.write_text((cast / "sft-group-train.jsonl").read_text().splitlines()[1] + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ManifestError, match=r"leaky.jsonl:2: subjects\[0\].attributes.identity: .* held out"):
        training_items([leaky], [cast / "synth-group.jsonl"], None)
    with pytest.warns(UserWarning, match="skipped 1 scene"):
        items, counts = training_items([leaky], [cast / "synth-group.jsonl"], None, skip_heldout=True)
    assert len(items) == 1 and counts["heldout_skipped"] == 1
    done = _cli("pairs", "build", "--run", str(sft_lora), "--manifest", str(leaky), "--heldout", str(cast / "synth-group.jsonl"),
                "--out", str(tmp_path / "p"))
    assert done.returncode == 2 and "held out for evaluation" in done.stderr
