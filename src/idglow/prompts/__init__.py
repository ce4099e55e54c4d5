"""Per-subject prompt synthesis (docs/design.md §1: badcase-driven prompts).

- :mod:`idglow.prompts.scene`: structured subject descriptions (position, age, hair, clothing,
  expression) and the scene around them.
- :mod:`idglow.prompts.rules`: the deterministic, offline synthesizer (the embedded default).
- :mod:`idglow.prompts.vlm`: any OpenAI-compatible chat-completions endpoint, with timeouts,
  bounded retries, schema-validated replies and a counted fallback to ``rules``.
"""
