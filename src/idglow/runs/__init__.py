"""Finished runs: loading base, SFT and DPO run folders without the training engine, resolving what a stage
inherits from the run it starts from (:mod:`idglow.runs.adopt`), and exporting a base model."""
