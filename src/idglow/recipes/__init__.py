"""The configuration of every stage, as dataclasses with help text: what the recipe YAMLs under ``configs/``
fill in (``TrainConfig`` for the base model, ``SFTConfig``, ``DPOConfig``). Kept below :mod:`idglow.runs` so
that reading a run's config never imports a trainer."""
