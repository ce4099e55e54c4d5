"""Evaluation: face matching and FaceSim, the cast benchmark scores, quality, mu_real, the group-level score that
ranks DPO candidates, win rates, reports, plots, and benchmarks built from photos."""
