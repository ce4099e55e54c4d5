"""``mu_real``: the judge FaceSim between references and true renders of the same identities.

For every benchmark prompt the true target scene is rendered (by ``synth build``), faces are detected
and embedded by the evaluation judge, and Hungarian-matched to the references. Its mean is the
ceiling of FaceSim on the benchmark and the "real-world" level that DPO calibrates toward.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from idglow.cast.crops import face_crops, to_tensor
from idglow.data.images import read_rgb
from idglow.data.manifest import load_manifest
from idglow.eval.facesim import face_sim
from idglow.utils.io import atomic_write


def _image(path: Path, where: str) -> torch.Tensor:
    return to_tensor(read_rgb(path, where))


@torch.no_grad()
def benchmark_mu_real(manifest: str | Path, judges: dict[str, torch.nn.Module]) -> dict:
    """FaceSim of each record's references to its true target render; mean overall and by group size."""
    manifest = Path(manifest)
    root = manifest.parent
    by_size: dict[int, list[float]] = defaultdict(list)
    detected = 0
    for record in load_manifest(manifest, "benchmark"):
        target = _image(root / record["expected"]["target"], f"{manifest}:{record['_line']}: expected.target")[None]
        boxes = judges["detector"].detect(target)[0][:, :4]
        detected += len(boxes)
        faces = judges["judge"](face_crops(target, boxes)) if len(boxes) else torch.zeros(0, 1)
        refs = judges["judge"](torch.stack([_image(root / r, f"{manifest}:{record['_line']}: refs[{i}]")
                                               for i, r in enumerate(record["refs"])]))
        by_size[len(record["refs"])].append(face_sim(refs, faces))
    values = [v for vs in by_size.values() for v in vs]
    return {
        "mu_real": float(np.mean(values)),
        "by_group_size": {str(k): float(np.mean(v)) for k, v in sorted(by_size.items())},
        "records": len(values),
        "faces_detected": detected,
        "faces_expected": sum(k * len(v) for k, v in by_size.items()),
    }


def write_mu_real(data: str | Path, judges: dict[str, torch.nn.Module], names=("synth-group", "synth-age")) -> dict:
    """Compute ``mu_real`` for each benchmark in ``data`` and write ``<name>.mu_real.json`` beside it."""
    results = {}
    for name in names:
        result = benchmark_mu_real(Path(data) / f"{name}.jsonl", judges)
        atomic_write(Path(data) / f"{name}.mu_real.json", lambda p, r=result: p.write_text(json.dumps(r, indent=2) + "\n"))
        results[name] = result
    return results


def read_mu_real(manifest: str | Path, required: bool = True) -> float | None:
    """``mu_real`` written beside a benchmark manifest (``<name>.mu_real.json``) by ``idglow synth build`` or
    ``idglow synth mu-real``. Missing: FileNotFoundError when ``required``, else None (a photo benchmark may have none)."""
    path = Path(manifest).with_suffix(".mu_real.json")
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path}: no mu_real for this benchmark; run `idglow synth mu-real`")
        return None
    return float(json.loads(path.read_text())["mu_real"])
