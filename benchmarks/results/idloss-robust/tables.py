"""Issue 19, exploratory: results.md for the identity loss through a robust embedder for 1,000 steps (criteria.md,
chain.sh): the lever against its baseline at equal budget (scores from idloss-high, check embedder and probes from
idloss-ensemble), chosen records, noise seed 0, one training seed each; benchmark scores paired over records, probe
shares unpaired with Wilson intervals. Re-run: python tables.py"""

from pathlib import Path

from idglow.eval.lever_tables import write_texture_lever_results

HERE = Path(__file__).parent
ENSEMBLE = HERE.parent / "idloss-ensemble"  # the baseline's check embedder scores and factor probes

if __name__ == "__main__":
    write_texture_lever_results(HERE, (
        "The identity loss through the robust `encoder_robust` alone (`configs/sft-jitter3k-init-idloss-robust.yaml`, "
        "the lever) against the same 1,000 steps through the encoder (`runs/sft-jitter3k-init`, the baseline; its scores "
        "are `../idloss-high/baseline-*`): SFT only, 100 chosen records, noise seed 0, **one training seed each**; 95% "
        "bootstrap intervals, paired over records. Criteria: `criteria.md`. Written by `tables.py`."),
        HERE.parent / "idloss-high", ENSEMBLE / "check-resnet-baseline", ENSEMBLE / "cap-baseline.json")
