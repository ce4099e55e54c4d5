"""End-to-end runs of the real `idglow` command line, asserting on what it wrote."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from idglow.cli.main import main
from idglow.models import ModelConfig
from idglow.utils.config import to_dict

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
IDGLOW = [sys.executable, "-m", "idglow"]


@pytest.mark.e2e
def test_help_lists_the_subcommands():
    out = subprocess.run([*IDGLOW, "--help"], capture_output=True, text=True, env=ENV, check=True).stdout
    for word in ("schedules", "demo", "config", "--dotted.key"):
        assert word in out


@pytest.mark.e2e
def test_schedules_table_and_plot(tmp_path, capsys):
    png = tmp_path / "lam.png"
    assert main(["schedules", "--plot", str(png), "--identity.gate.age.edge_width", "0",
                 "--identity.gate.age.sigma_lo", "0.2", "--identity.gate.age.sigma_hi", "0.55"]) == 0
    lines = capsys.readouterr().out.splitlines()
    age = [float(v) for v in lines[2].split()[1:12]]
    sigma = [float(v) for v in lines[0].split()[1:]]
    assert age == [1.0 if 0.2 <= s <= 0.55 else 0.0 for s in sigma]
    assert png.stat().st_size > 10_000


@pytest.mark.e2e
def test_schedules_of_a_saved_learned_gate(tmp_path, capsys):
    from idglow.models import IdGlowTransformer, save_identity_branch
    from idglow.utils.config import load_config

    model = IdGlowTransformer(load_config(ModelConfig, None, ["--preset", "tiny", "--identity.gate.group.kind", "learned"]))
    with torch.no_grad():
        model.identity.gate.mlp[-1].bias.fill_(-0.25)  # as if training had lowered lambda everywhere
    save_identity_branch(model, tmp_path)
    assert main(["schedules", "--identity-branch", str(tmp_path)]) == 0
    group = [float(v) for v in capsys.readouterr().out.splitlines()[1].split()[1:12]]
    assert group[0] == pytest.approx(0.75) and group[-1] == 0.0  # clamped at 0


@pytest.mark.e2e
def test_config_prints_resolved_yaml(capsys):
    assert main(["config", "--quiet", "--preset", "tiny", "--identity.num_tokens", "2"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    expected = to_dict(ModelConfig(preset="tiny"))
    expected["identity"]["num_tokens"] = 2
    assert data == expected


@pytest.mark.e2e
@pytest.mark.parametrize("kind,key", [("train", "--optim.max_minutes"), ("synth", "--judges.train_mini_adults"),
                                      ("vae", "--latent_channels")])
def test_config_lists_every_kind(kind, key, capsys):
    assert main(["config", "--kind", kind]) == 0
    assert key in capsys.readouterr().out


@pytest.mark.e2e
def test_config_file_is_the_annotated_default(capsys):
    path = Path(__file__).parents[2] / "configs" / "model.yaml"
    assert main(["config", "--quiet", "--config", str(path)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == to_dict(ModelConfig())


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv,message",
    [
        (["schedules", "--identity.gate.age.sigma_lo", "0.9"], "identity.gate.age.sigma_lo"),
        (["schedules", "--identity.gate.agee.sigma_lo", "0.1"], "unknown config key identity.gate.agee"),
        (["config", "--config", "/nonexistent/model.yaml"], "cannot read config file"),
        (["schedules", "--identity-branch", "/nonexistent"], "identity_branch.safetensors: no such weights file"),
    ],
)
def test_bad_arguments_exit_2_with_a_named_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.e2e
@pytest.mark.parametrize(
    "argv,message",
    [
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--batch", "0"], "argument --batch: expected an integer > 0, got '0'"),
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--limit", "-2"], "argument --limit: expected an integer > 0"),
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--id-guidance", "nan"], "argument --id-guidance: expected a number >= 0"),
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--id-guidance", "-1"], "argument --id-guidance: expected a number >= 0"),
        (["train", "sft-eval", "--run", "r", "--steps", "zero"], "argument --steps: expected an integer > 0, got 'zero'"),
        (["train", "sft-eval", "--run", "r", "--max-people", "0"], "argument --max-people: expected an integer > 0, got '0'"),
        (["pairs", "build", "--run", "r", "--candidates", "0"], "argument --candidates: expected an integer > 0"),
        (["generate", "--run", "r", "--prompt", "p", "--refs", "x.png", "--name", "../../x"], "name: '../../x' is not a safe file name"),
        (["config", "--kind", "train", "--optim.lr", ".nan"], "optim.lr: expected a finite number"),
        (["config", "--kind", "dpo", "--dpo.beta", ".inf"], "dpo.beta: expected a finite number"),
        (["synth", "mu-real", "--optim.lr", "1"], "unrecognized arguments: --optim.lr 1"),
        (["train", "sft-eval", "--run", "r", "--device", "nonsense"], "--device: 'nonsense' is not a device"),
        (["train", "sft-eval", "--run", "r", "--device", "cuda:64"], "--device: cuda:64 is not available here"),
        (["train", "sft-eval", "--run", "r", "--id-guidance-interval", "0.8", "0.2"],
         "id-guidance-interval: expected 0 <= SIGMA_LO <= SIGMA_HI <= 1, got 0.8 0.2"),
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--id-guidance-interval", "0", "1.5"],
         "id-guidance-interval: expected 0 <= SIGMA_LO <= SIGMA_HI <= 1, got 0 1.5"),
        (["generate", "--run", "r", "--benchmark", "b.jsonl", "--id-guidance-interval", "-0.1", "1"],
         "argument --id-guidance-interval: expected a number >= 0"),
    ],
)
def test_bad_values_exit_2_naming_the_argument(argv, message, capsys):
    """Argument values are checked where they are parsed: one line naming the argument, exit status 2."""
    try:
        status = main(argv)
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    assert status == 2
    assert message in capsys.readouterr().err
