"""Factor probes: a probe reads a factor that the features encode, and stays near chance on features that do not."""

import numpy as np
import torch

from idglow.cast.factors import sample_identity
from idglow.eval.probes import CATEGORICAL, CONTINUOUS, FACTORS, FactorProbes, factor_values


def _features(people, informative: bool, seed: int) -> torch.Tensor:
    """Features [N, 24]: the factors themselves (one-hot / scaled) plus noise, or noise only."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(people), 24, generator=g) * 0.1
    if not informative:
        return noise
    values = factor_values(people)
    columns = [torch.nn.functional.one_hot(torch.from_numpy(values[n]), k).float() for n, k in CATEGORICAL.items()]
    columns += [torch.from_numpy(values[n].astype(np.float32))[:, None] for n in ("mole", "freckles")]
    columns += [torch.from_numpy((values[n] - values[n].mean()) / values[n].std()).float()[:, None] for n in CONTINUOUS]
    return torch.cat([torch.cat(columns, 1), noise], 1)


def test_probes_read_encoded_factors_and_not_noise():
    train = [sample_identity(0, i) for i in range(600)]
    test = [sample_identity(0, 1_000_000 + i) for i in range(300)]  # held-out identities, as in the benchmark
    readable = FactorProbes(_features(train, True, 0), train).accuracy(_features(test, True, 1), test)
    blind = FactorProbes(_features(train, False, 0), train).accuracy(_features(test, False, 1), test)
    assert set(readable) == set(FACTORS)
    for name in FACTORS:
        assert readable[name]["accuracy"] >= 0.9, (name, readable[name])
        # noise: no better than the majority class by more than sampling error
        assert blind[name]["accuracy"] <= blind[name]["chance"] + 0.1, (name, blind[name])


def test_identity_cap_keeps_only_the_small_groups_it_is_asked_for(cast):
    """benchmarks/identity_cap.py --max-people: records of at most that many people, spread over their sizes, each
    with its own reference crops; a bound no record meets is refused by name."""
    import runpy

    import pytest
    from conftest import ROOT

    chosen_records = runpy.run_path(str(ROOT / "benchmarks" / "identity_cap.py"))["chosen_records"]
    records, refs = chosen_records(cast / "synth-group.jsonl", 3, 2)
    assert len(records) == 3 and {len(r["refs"]) for r in records} == {1, 2}
    assert [len(c) for c in refs] == [len(r["refs"]) for r in records]
    everything, _ = chosen_records(cast / "synth-group.jsonl", None, None)
    assert {len(r["refs"]) for r in everything} == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="--max-people 0"):
        chosen_records(cast / "synth-group.jsonl", 3, 0)


def test_identity_cap_samples_a_run_at_the_size_of_the_casts_images(cast, base, sft_run):
    """The close cast's first reading drew a run at the pipeline's default 128x64 against 128x128 renders: the run
    sampler now draws at the targets' size, as the base sampler always did."""
    import runpy

    import torch
    from conftest import ROOT

    script = runpy.run_path(str(ROOT / "benchmarks" / "identity_cap.py"))
    records, refs = script["chosen_records"](cast / "synth-group.jsonl", 1, 1)
    targets = torch.zeros(1, 3, 128, 128)  # twice the height of the run's 128x64 training images
    for run in (None, sft_run):
        assert script["Sampler"](str(base), None if run is None else str(run), 1.0)(records, refs, targets, 1.0, 1).shape \
            == targets.shape
