"""Run the real CLI on a corpus of bad inputs and count how each ends (issue: bad input never crashes).

Builds a tiny cast, base model and SFT run under ``--work`` (about 2 minutes on 2 CPU cores), then runs
``idglow`` once per case in a subprocess and classifies the outcome:

- ``clear``: exit status 2, no traceback, one error line that names what is wrong (the case's expected words);
- ``accepted``: a case that should work (a BOM, a 16-bit reference, a palette image, ...) and exits 0;
- ``vague``: exit status 2 and no traceback, but the message lacks what the case expects;
- ``traceback`` / ``crash`` (killed by a signal) / ``silent`` (exit 0 where an error was due).

Usage::

    python scripts/bad_input_corpus.py [--work /tmp/idglow-corpus] [--out corpus.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def idglow(*argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "idglow", *map(str, argv)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def prepare(work: Path) -> dict[str, Path]:
    """A tiny cast, base model and SFT run (reused when present)."""
    cast, base, sft = work / "cast", work / "base", work / "sft"
    steps = [
        (cast / "synth-group.jsonl", ["synth", "build", "--out", cast, "--judges", ROOT / "assets/judges", "--build.sft_group", "8",
                                      "--build.sft_age", "4", "--build.heldout_sft", "0", "--build.bench_per_size", "2",
                                      "--build.mini_adults", "0", "--build.workers", "1", "--world.train_identities", "20",
                                      "--world.heldout_identities", "8"]),
        (work / "base-run" / "final", ["train", "base", "--config", ROOT / "configs/tiny-base.yaml", "--out", work / "base-run",
                                       "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", "--optim.steps", "4"]),
        (base / "train_config.json", ["train", "export", "--run", work / "base-run", "--out", base]),
        (sft / "final", ["train", "sft", "--config", ROOT / "configs/tiny-sft.yaml", "--out", sft, "--base", base,
                         "--data.manifests", f"[{cast / 'sft-group-train.jsonl'}]", "--diagnostics.manifests",
                         f"[{cast / 'sft-group-train.jsonl'}]", "--optim.steps", "2", "--diagnostics.every", "0"]),
    ]
    for done, argv in steps:
        if not done.exists():
            result = idglow(*argv)
            if result.returncode != 0:
                raise SystemExit(f"preparing {argv[:2]} failed:\n{result.stderr[-2000:]}")
    return {"cast": cast, "base": base, "sft": sft}


def _png_claiming(path: Path, width: int, height: int) -> Path:
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    chunk = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29], data[29:33] = chunk, struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(bytes(data))
    return path


def cases(w: dict[str, Path], tmp: Path) -> list[tuple[str, list, str | None]]:
    """``(name, argv, expected words)``; expected None: the input is fine and must be accepted."""
    cast, sft = w["cast"], w["sft"]
    sft_rec = json.loads((cast / "sft-group-train.jsonl").read_text().splitlines()[0])
    bench_rec = json.loads((cast / "synth-group.jsonl").read_text().splitlines()[2])
    ref = cast / bench_rec["refs"][0]

    def manifest(name: str, records: list | None = None, raw: bytes | None = None) -> Path:
        path = cast / name  # beside the cast, so relative paths resolve
        path.write_bytes(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records).encode())
        return path

    def train_sft(path: Path, *extra) -> list:
        return ["train", "sft", "--config", ROOT / "configs/tiny-sft.yaml", "--out", tmp / f"sft-{path.stem}", "--base",
                w["base"], "--data.manifests", f"[{path}]", "--diagnostics.manifests", f"[{path}]", "--optim.steps", "1",
                "--diagnostics.every", "0", *extra]

    def generate(bench: Path | None = None, *extra, run: Path = sft) -> list:
        return ["generate", "--run", run, "--benchmark", bench or cast / "synth-group.jsonl", "--limit", "1", "--steps", "1",
                "--out", tmp / f"gen-{len(list(tmp.iterdir()))}", *extra]

    def single(reference: Path, *extra) -> list:
        return ["generate", "--run", sft, "--prompt", "two people", "--refs", reference, "--steps", "1",
                "--out", tmp / f"one-{len(list(tmp.iterdir()))}", *extra]

    def box(value) -> dict:
        return {**sft_rec, "subjects": [{**sft_rec["subjects"][0], "box": value}]}

    images = tmp / "images"
    images.mkdir(exist_ok=True)
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(images / "grey16.png")
    Image.open(ref).convert("P").save(images / "palette.png")
    Image.open(ref).convert("CMYK").save(images / "cmyk.jpg")
    Image.open(ref).convert("LA").save(images / "grey-alpha.png")
    (images / "random.png").write_bytes(os.urandom(3000))
    (images / "truncated.png").write_bytes(ref.read_bytes()[:200])
    _png_claiming(images / "bomb.png", 40_000, 40_000)
    Image.new("RGB", (1, 1), (128, 90, 70)).save(images / "one-pixel.png")

    pairs = tmp / "pairs"
    pairs.mkdir(exist_ok=True)
    for name in ("w.png", "l.png"):
        shutil.copy(cast / sft_rec["image"], pairs / name)
    shutil.copy(ref, pairs / "r.png")
    pair = {"prompt": "p", "task": "group", "refs": ["r.png"], "winner": "w.png", "loser": "l.png"}

    def dpo(record: dict | None = None, raw: bytes | None = None) -> list:
        path = pairs / f"pairs-{len(list(pairs.glob('*.jsonl')))}.jsonl"  # one manifest per case
        path.write_bytes(raw if raw is not None else (json.dumps(record) + "\n").encode())
        return ["train", "dpo", "--config", ROOT / "configs/tiny-dpo.yaml", "--sft", sft, "--data.manifests", f"[{path}]",
                "--out", tmp / f"dpo-{len(list(tmp.iterdir()))}", "--optim.steps", "1", "--optim.batch_size", "1"]

    stale = tmp / "stale"
    idglow(*generate(None, "--out", stale))
    broken = tmp / "broken-run"
    shutil.copytree(sft, broken)
    weights = broken / "final" / "identity_branch.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    pickled = tmp / "pickled-run"
    shutil.copytree(sft, pickled)
    (pickled / "final" / "identity_branch.safetensors").write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.")
    nan_yaml = tmp / "nan.yaml"
    nan_yaml.write_text(f"extends: {ROOT / 'configs/tiny-sft.yaml'}\noptim:\n  lr: .nan\n")
    a_file = tmp / "a-file"
    a_file.write_text("x")
    good = (cast / "sft-group-train.jsonl").read_text().splitlines()[0] + "\n"
    return [
        ("preference weight NaN", dpo({**pair, "weight": float("nan")}), "weight"),
        ("preference margin Infinity", dpo({**pair, "margin": float("inf")}), "margin"),
        ("preference weight negative", dpo({**pair, "weight": -1}), "weight"),
        ("preference winner escapes the folder", dpo({**pair, "winner": "../../w.png"}), "escapes"),
        ("preference invalid JSON", dpo(raw=b'{"prompt": "p", '), "invalid JSON"),
        ("SFT box Infinity", train_sft(manifest("box-inf.jsonl", [box([0, 0, float("inf"), float("inf")])])), "box"),
        ("SFT box reversed", train_sft(manifest("box-rev.jsonl", [box([30, 30, 10, 10])])), "box"),
        ("SFT image escapes", train_sft(manifest("escape.jsonl", [{**sft_rec, "image": "../../x.png"}])), "escapes"),
        ("SFT prompt missing", train_sft(manifest("noprompt.jsonl", [{k: v for k, v in sft_rec.items() if k != "prompt"}])), "prompt"),
        ("SFT unknown task", train_sft(manifest("task.jsonl", [{**sft_rec, "task": "child"}])), "task"),
        ("SFT unknown field", train_sft(manifest("field.jsonl", [{**sft_rec, "caption": "x"}])), "caption"),
        ("SFT empty manifest", train_sft(manifest("empty.jsonl", raw=b"")), "no records"),
        ("SFT non-UTF-8 byte", train_sft(manifest("latin1.jsonl", raw=good.encode() + good.encode().replace(
            b'"prompt": "', b'"prompt": "\xf6'))), "latin1.jsonl:2: record: not UTF-8"),
        ("SFT id escapes", train_sft(manifest("id.jsonl", [{**sft_rec, "id": "../../x"}])), "id"),
        ("SFT byte-order mark", train_sft(manifest("bom.jsonl", raw=b"\xef\xbb\xbf" + good.encode() * 2)), None),
        ("benchmark id escapes", generate(manifest("b-id.jsonl", [{**bench_rec, "id": "../../x"}])), "id"),
        ("benchmark duplicate ids", generate(manifest("b-dup.jsonl", [bench_rec, bench_rec])), "repeats"),
        ("benchmark empty", generate(manifest("b-empty.jsonl", raw=b"\n")), "no records"),
        ("benchmark expected {}", generate(manifest("b-exp.jsonl", [{**bench_rec, "expected": {}}])), "expected.count"),
        ("benchmark 9 references", generate(manifest("b-nine.jsonl", [{**bench_rec, "refs": bench_rec["refs"] * 9,
                                                                       "expected": {"count": 9}}])), "refs"),
        ("benchmark byte-order mark", generate(manifest("b-bom.jsonl", raw=b"\xef\xbb\xbf" + (json.dumps(bench_rec) + "\n").encode())), None),
        ("generate --name escapes", single(ref, "--name", "../../x"), "name"),
        ("generate --batch 0", generate(None, "--batch", "0"), "--batch"),
        ("generate --limit -2", generate(None, "--limit", "-2"), "--limit"),
        ("generate --id-guidance nan", generate(None, "--id-guidance", "nan"), "--id-guidance"),
        ("generate --id-guidance -1", generate(None, "--id-guidance", "-1"), "--id-guidance"),
        ("generate --steps 0", generate(None, "--steps", "0"), "--steps"),
        ("generate a missing run", generate(None, run=tmp / "nope"), "config.json"),
        ("generate into a folder of other settings", generate(None, "--out", stale, "--seed", "7"), "made otherwise"),
        ("generate with truncated weights", generate(None, run=broken), "not a readable safetensors"),
        ("generate with pickled weights", generate(None, run=pickled), "not a readable safetensors"),
        ("generate --out is a file", generate(None, "--out", a_file), "a-file"),
        ("reference random bytes", single(images / "random.png"), "unreadable image"),
        ("reference truncated PNG", single(images / "truncated.png"), "unreadable image"),
        ("reference decompression bomb", single(images / "bomb.png"), "over the limit"),
        ("reference 16-bit greyscale", single(images / "grey16.png"), None),
        ("reference palette PNG", single(images / "palette.png"), None),
        ("reference CMYK JPEG", single(images / "cmyk.jpg"), None),
        ("reference grey + alpha", single(images / "grey-alpha.png"), None),
        ("reference 1x1", single(images / "one-pixel.png"), None),
        ("config NaN learning rate (override)", train_sft(cast / "sft-group-train.jsonl", "--optim.lr", ".nan"), "optim.lr"),
        ("config NaN learning rate (file)", ["train", "sft", "--config", nan_yaml, "--base", w["base"]], "optim.lr"),
        ("config zero steps", train_sft(cast / "sft-group-train.jsonl", "--optim.steps", "0"), "steps"),
        ("config unknown key", train_sft(cast / "sft-group-train.jsonl", "--optim.lrr", "1"), "optim.lrr"),
        ("config inherited key set otherwise", train_sft(cast / "sft-group-train.jsonl", "--model.preset", "flux-dev"), "model.preset"),
        ("stray override on a command without config", ["synth", "mu-real", "--data", cast, "--optim.lr", "1"], "unrecognized"),
        ("pairs --candidates 0", ["pairs", "build", "--run", sft, "--candidates", "0"], "--candidates"),
        ("eval a benchmark with expected {}", ["eval", "--generations", stale, "--benchmark",
                                               manifest("e-exp.jsonl", [{**bench_rec, "expected": {}}])], "expected.count"),
    ]


def classify(result: subprocess.CompletedProcess, expected: str | None) -> str:
    text = result.stdout + result.stderr
    if result.returncode < 0:
        return "crash"
    if "Traceback (most recent call last)" in text:
        return "traceback"
    if expected is None:
        return "accepted" if result.returncode == 0 else "refused"
    if result.returncode == 0:
        return "silent"
    return "clear" if expected in result.stderr else "vague"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/idglow-corpus", help="scratch folder (the tiny models are reused from there)")
    p.add_argument("--out", help="write the per-case results here as JSON")
    args = p.parse_args()
    work = Path(args.work)
    tmp = work / "cases"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    prepared = prepare(work)
    rows, start = [], time.perf_counter()
    for name, argv, expected in cases(prepared, tmp):
        result = idglow(*argv)
        outcome = classify(result, expected)
        last = (result.stderr.strip().splitlines() or [""])[-1][:160]
        rows.append({"case": name, "outcome": outcome, "status": result.returncode, "message": last})
        print(f"{outcome:9} {name}: {last}", flush=True)
    counts = {k: sum(r["outcome"] == k for r in rows) for k in
              ("clear", "accepted", "vague", "refused", "silent", "traceback", "crash")}
    good = counts["clear"] + counts["accepted"]
    print(json.dumps({**counts, "cases": len(rows), "clear_or_accepted": good / len(rows),
                      "seconds": round(time.perf_counter() - start)}, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps({"counts": counts, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
