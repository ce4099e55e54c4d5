"""Config loading: YAML plus overrides, unknown keys and wrong types named."""

import pytest

from idglow.models import ModelConfig
from idglow.utils.config import ConfigError, format_help, load_config, parse_overrides, to_dict


def test_yaml_and_overrides_reach_nested_fields(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("preset: tiny\nidentity:\n  num_tokens: 2\n  gate:\n    age:\n      sigma_lo: 0.2\n")
    cfg = load_config(ModelConfig, path, ["--identity.gate.age.sigma_hi", "0.5", "--identity.blocks=[0, 1]", "--lora.rank", "4"])
    assert cfg.preset == "tiny" and cfg.identity.num_tokens == 2
    assert cfg.identity.gate.age.sigma_lo == 0.2 and cfg.identity.gate.age.sigma_hi == 0.5
    assert cfg.identity.blocks == [0, 1] and cfg.lora.rank == 4
    assert cfg.identity.gate.group.kind == "linear_decay"  # untouched defaults survive
    # PyYAML reads `1e-4` (no dot) as a string; float fields take it as the number it is
    path.write_text("lora:\n  alpha: 1e-1\n")
    assert load_config(ModelConfig, path, ["--identity.gate.age.sigma_hi", "7E-1"]).lora.alpha == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="lora.alpha: expected float"):
        load_config(ModelConfig, None, ["--lora.alpha", "1e"])
    assert load_config(ModelConfig, None, []).preset == "small"


def test_partial_nested_override_keeps_the_sections_own_defaults(tmp_path):
    # The age schedule defaults to a window; touching one of its fields must not reset it to the
    # ScheduleConfig class default (linear_decay).
    cfg = load_config(ModelConfig, None, ["--identity.gate.age.edge_width", "0.05"])
    assert cfg.identity.gate.age.kind == "window" and cfg.identity.gate.age.edge_width == 0.05
    path = tmp_path / "m.yaml"
    path.write_text("identity:\n  gate:\n    age:\n      sigma_hi: 0.6\n")
    assert load_config(ModelConfig, path).identity.gate.age.kind == "window"


def test_round_trip_through_dict(tmp_path):
    cfg = load_config(ModelConfig, None, ["--identity.gate.apply_to", "tokens"])
    from idglow.utils.config import from_dict

    assert to_dict(from_dict(ModelConfig, to_dict(cfg))) == to_dict(cfg)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["--identity.num_tokenz", "3"], r"unknown config key identity\.num_tokenz \(did you mean identity\.num_tokens\?\)"),
        (["--presett", "tiny"], "unknown config key presett"),
        (["--identity.num_tokens", "2.5"], r"identity\.num_tokens: expected int"),
        (["--identity.text_tokens", "yes please"], r"identity\.text_tokens: expected bool"),
        (["--num_layers", "0"], r"num_layers: must be >= 1"),
        (["--preset", "huge"], r"preset: expected one of"),
        (["--identity.gate.group.kind", "cosine"], r"identity\.gate\.group\.kind: expected one of"),
        (["--identity.gate.age.sigma_lo", "0.9"], r"identity\.gate\.age\.sigma_lo"),
        (["--identity.gate.group.lambda_max", "2"], r"identity\.gate\.group\.lambda_max"),
        (["--identity.blocks", "3"], r"identity\.blocks: expected"),
        (["--lora.rank"], "has no value"),
        (["lora.rank", "2"], "--key value"),
    ],
)
def test_bad_config_names_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(ModelConfig, None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(ModelConfig, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(ModelConfig, bad)


def test_help_lists_every_leaf_key_with_text():
    text = format_help(ModelConfig)
    for key in ("--preset", "--identity.gate.age.sigma_lo", "--identity.gate.apply_to", "--lora.rank"):
        assert key in text
    assert parse_overrides(["--a.b", "1", "--c=x"]) == {"a": {"b": 1}, "c": "x"}


def test_extends_merges_the_parent_recipe_and_rejects_loops(tmp_path):
    (tmp_path / "parent.yaml").write_text("preset: tiny\nidentity:\n  num_tokens: 2\n  token_dim: 16\n")
    (tmp_path / "child.yaml").write_text("extends: parent.yaml\nidentity:\n  num_tokens: 3\n")
    cfg = load_config(ModelConfig, tmp_path / "child.yaml", ["--identity.max_refs", "2"])
    assert (cfg.preset, cfg.identity.num_tokens, cfg.identity.token_dim, cfg.identity.max_refs) == ("tiny", 3, 16, 2)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(ModelConfig, tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="cannot read config file .*missing.yaml"):
        load_config(ModelConfig, tmp_path / "c.yaml")


def test_every_shipped_recipe_loads():
    from pathlib import Path

    from idglow.base.vae import VaeConfig
    from idglow.recipes.dpo import DPOConfig
    from idglow.recipes.sft import SFTConfig
    from idglow.recipes.train import TrainConfig

    kinds = {"dpo": DPOConfig, "sft": SFTConfig, "base": TrainConfig, "vae": VaeConfig, "model": ModelConfig}
    recipes = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
    assert len(recipes) >= 8
    for recipe in recipes:
        kind = next((k for k in kinds if k in recipe.stem), "sft")
        load_config(kinds[kind], recipe).validate()
