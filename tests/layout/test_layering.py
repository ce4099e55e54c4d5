"""The package layout: packages import one way, in the order declared here, and generation never loads training.

The order is the method's pipeline, bottom to top: shared utilities, the flow-matching maths, the synthetic
cast, data, faces, the identity branch, the transformer, its conditioning, the stage configs, finished runs,
generation, evaluation, prompts, the training engine, the three stages and pairs, the demo, the web app and the CLI.
A package may import from its own layer and any layer below; nothing else (lazy imports inside functions
included), so the package graph has no cycle.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

LAYERS = ["utils", "flow", "cast", "data", "faces", "identity", "models", "conditioning", "recipes", "runs", "generate",
          "eval", "prompts", "photos", "training", "base", "sft", "pairs", "dpo", "demo", "serve", "cli"]
PACKAGE = Path(__file__).parents[2] / "src" / "idglow"
# accelerate itself is not on the list: diffusers imports it to load any model.
TRAINING = ("idglow.training", "idglow.base", "idglow.sft", "idglow.dpo", "idglow.pairs")


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, imported idglow module)`` of every import in ``path``, lazy ones inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; write `from idglow.<package>...`")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("idglow"):
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if alias.name.startswith("idglow")]
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_only_the_public_entry_points_stay_at_the_top_level():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"]
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()) == sorted(LAYERS)


def test_packages_import_only_their_own_layer_and_those_below():
    against = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0]
        if own not in LAYERS:
            continue
        for line, module in _imports(path):
            target = _package(module)
            if target in LAYERS and LAYERS.index(target) > LAYERS.index(own):
                against.append(f"{path.relative_to(PACKAGE)}:{line}: {own} imports {module} (layer {target} is above)")
    assert not against, "imports against the declared order:\n" + "\n".join(against)


def test_the_checker_sees_lazy_imports_and_names_the_offender(tmp_path):
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from idglow.training.loop import Trainer\n")
    assert _imports(module) == [(2, "idglow.training.loop.Trainer")]
    assert _package("idglow.training.loop.Trainer") == "training"


@pytest.mark.e2e
def test_the_public_api_is_lazy_and_generating_from_a_run_imports_no_training_package(cast, sft_run):
    """``import idglow`` loads no submodule (no torch); each public name loads its module on first use. Then what a
    user of the pipeline loads (a finished SFT run, one image) keeps the training engine out. One interpreter."""
    refs = sorted(cast.rglob("*ref0*.png"))[:2]
    assert len(refs) == 2
    code = f"""
import json, sys
import idglow
before = sorted(m for m in sys.modules if m.startswith("idglow.") or m == "torch")
IdGlowPipeline = idglow.IdGlowPipeline
import torch
from idglow.generate.files import read_references
pipe = IdGlowPipeline.from_run({str(sft_run)!r})
crops = read_references([{", ".join(repr(str(r)) for r in refs)}], pipe.ref_size)
image = pipe.sample(["two people"], [crops], "group", steps=2, generator=[torch.Generator().manual_seed(0)])
print(json.dumps({{"before": before, "module": IdGlowPipeline.__module__, "shape": list(image.shape),
                  "loaded": sorted(m for m in sys.modules if m.startswith({TRAINING!r}))}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["before"] == [] and result["module"] == "idglow.generate.pipeline"
    assert result["shape"] == [1, 3, 64, 128]
    assert result["loaded"] == []
