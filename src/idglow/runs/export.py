"""Exporting finished runs as self-contained model folders with their provenance: a base run (the transformer as
fp16 safetensors, a diffusers folder) or an SFT / DPO run (backbone with its LoRA merged + identity branch)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from idglow.runs.load import load_base
from idglow.runs.sampler import SAMPLER, TASKS, read_score_folders, recommend
from idglow.utils.config import to_dict


def export_base(run: str | Path, out: str | Path, command: str, commit: str) -> dict:
    """Write a finished base run's transformer as fp16 safetensors (diffusers folder) with its provenance."""
    run, out = Path(run), Path(out)
    model, cfg = load_base(run)
    model.flux.to(torch.float16).save_pretrained(out / "transformer", safe_serialization=True)
    if cfg.representation.kind == "latents":
        vae = AutoencoderKL.from_pretrained(cfg.representation.vae, local_files_only=True)
        vae.to(torch.float16).save_pretrained(out / "vae", safe_serialization=True)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    provenance = {
        "command": command,
        "commit": commit,
        "steps": records[-1]["step"],
        "wall_seconds": records[-1].get("elapsed_seconds"),
        "final_loss": records[-1]["loss"],
        "train_config": json.loads((run / "config.json").read_text()),
    }
    for name in ("eval.json",):
        if (run / name).is_file():
            provenance["eval"] = json.loads((run / name).read_text())
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    (out / "train_config.json").write_text((run / "config.json").read_text())
    return provenance


def _log_tail(run: Path) -> dict:
    path = run / "log.jsonl"
    if not path.is_file():
        return {}
    last = json.loads(path.read_text().splitlines()[-1])
    return {"steps": last.get("step"), "wall_seconds": last.get("elapsed_seconds")}


def write_model_folder(model, cfg, base_config: dict | None, folder: str | Path) -> None:
    """Write an IdGlow model as a self-contained folder (the layout :func:`idglow.runs.load.is_exported_model` reads).

    ``transformer/``: the base backbone, unmerged, fp16 diffusers; ``final/identity_branch.safetensors`` (fp32) and,
    when the model has one, ``final/lora.safetensors``: the adapter on top (every LoRA stacked into one); ``config.json``:
    the SFT config (base ".": the folder itself); ``train_config.json``: the base model's config, so the folder is
    also a base model that ``idglow train sft --base`` starts from (the identity branch and LoRA are then ignored).
    ``base_config`` None writes the adapter alone (``final/`` and ``config.json``, which keeps naming its base): for a
    model on a FLUX folder, which is not copied.
    """
    import dataclasses

    from idglow.models.io import save_identity_branch, save_lora
    from idglow.models.lora import bare_backbone

    folder = Path(folder)
    save_identity_branch(model, folder / "final")
    if model.config.lora.rank:
        save_lora(model, folder / "final")
    exported = dataclasses.replace(cfg, out=".", model=dataclasses.replace(cfg.model, lora=model.config.lora))
    if base_config is None:
        (folder / "config.json").write_text(json.dumps(to_dict(exported), indent=2) + "\n")
        return
    bare_backbone(model.flux).to(torch.float16).save_pretrained(folder / "transformer", safe_serialization=True)
    if cfg.representation.kind == "latents":
        vae = AutoencoderKL.from_pretrained(cfg.representation.vae, local_files_only=True)
        vae.to(torch.float16).save_pretrained(folder / "vae", safe_serialization=True)
    (folder / "config.json").write_text(json.dumps(to_dict(dataclasses.replace(exported, base=".")), indent=2) + "\n")
    (folder / "train_config.json").write_text(json.dumps(base_config, indent=2) + "\n")


def init_provenance(sft_config: dict) -> dict | None:
    """Where an SFT run started with ``init`` came from (None without one): an exported model's own provenance (its
    commands, commit, weights and stages), or a run's stages and weights, each with where *it* started from in turn."""
    from idglow.runs.load import EXPORTED, is_exported_model, weights_fingerprint

    if not sft_config.get("init"):
        return None
    init = Path(sft_config["init"])
    if is_exported_model(init):
        recorded = json.loads((init / EXPORTED).read_text())
        keep = ("command", "commit", "stage", "source", "source_weights", "stages", "init", "peeled_from")
        return {"model": str(init), **{key: recorded[key] for key in keep if key in recorded}}
    sft_run, stages = _run_stages(init)
    found = {"run": str(init), "source_weights": weights_fingerprint(init), "stages": stages}
    earlier = init_provenance(json.loads((sft_run / "config.json").read_text()))
    return found if earlier is None else {**found, "init": earlier}


def _run_stages(run: Path) -> tuple[Path, dict]:
    """``(the SFT run, {"sft": ..., "dpo": ...})`` of a finished SFT or DPO run: each stage's run, steps and wall time."""
    from idglow.runs.load import is_dpo_run, sft_folder

    sft_run = sft_folder(run)
    stages = {"sft": {"run": str(sft_run), **_log_tail(sft_run)}}
    if is_dpo_run(run):
        stages["dpo"] = {"run": str(run), **_log_tail(run)}
    return sft_run, stages


def write_sampler(folder: Path, sampler: dict) -> None:
    """Write ``folder/sampler.json`` when :func:`idglow.runs.sampler.recommend` recommended a sampler for any task."""
    if any(task in sampler for task in TASKS):
        (folder / SAMPLER).write_text(json.dumps(sampler, indent=2) + "\n")


def replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing what was there only once ``tmp`` is complete."""
    import shutil

    old = out.with_name(out.name + ".old-export")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def export_idglow(run: str | Path, out: str | Path, command: str, commit: str, score_folders: Sequence[str | Path] = (),
                  extra: Callable[[Path], None] | None = None) -> dict:
    """Write a finished SFT or DPO run as one self-contained model folder ``out`` that ``--run`` accepts
    (:func:`write_model_folder`: base backbone + identity branch + one LoRA holding SFT's and DPO's), with
    ``out/provenance.json``: the commands, commit, steps, wall time, source weights and the scores of ``score_folders``
    (``idglow train sft-eval`` outputs, keyed by :func:`idglow.runs.sampler.score_key` against the run's trained gate);
    ``out/sampler.json``: the sampler those scores recommend per task (:func:`idglow.runs.sampler.recommend`); ``extra(folder)`` adds files
    (e.g. the app's gallery) before the folder is renamed into place, beside ``out``.
    """
    import shutil

    from idglow.conditioning.flux_folder import is_pipeline_folder
    from idglow.runs.load import EXPORTED, is_dpo_run, load_run, weights_fingerprint

    run, out = Path(run), Path(out)
    model, cfg = load_run(run)
    if is_pipeline_folder(cfg.base):
        raise ValueError(f"{run}: trained on the FLUX folder {cfg.base}; export writes cast models only (a FLUX run "
                         "is used from its run folder, with --run)")
    dpo = json.loads((run / "config.json").read_text()) if is_dpo_run(run) else None
    sft_run, stages = _run_stages(run)
    base_config = json.loads((Path(cfg.base) / "train_config.json").read_text())
    trained_gate = to_dict(cfg.model.identity.gate)
    scores = read_score_folders(score_folders, trained_gate)
    tmp = out.with_name(out.name + ".tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    write_model_folder(model, cfg, base_config, tmp)
    provenance = {"command": command, "commit": commit, "source": str(run), "source_weights": weights_fingerprint(run),
                  "base": str(cfg.base), "stages": stages, "scores": scores,
                  "sft_config": json.loads((sft_run / "config.json").read_text())}
    if dpo:
        provenance["dpo_config"] = dpo
    started_from = init_provenance(provenance["sft_config"])
    if started_from is not None:
        provenance["init"] = started_from
    (tmp / EXPORTED).write_text(json.dumps(provenance, indent=2) + "\n")
    write_sampler(tmp, recommend(scores, trained_gate))
    if extra is not None:
        extra(tmp)
    replace_folder(tmp, out)
    return provenance


def _read_stacked(model_folder: Path) -> tuple[dict, int]:
    """``(provenance, SFT's LoRA rank)`` of an exported SFT+DPO model; refused, named, for anything else."""
    from idglow.runs.load import EXPORTED, is_exported_model

    if not is_exported_model(model_folder):
        raise ValueError(f"{model_folder}: not an exported model (provenance.json, config.json, train_config.json, "
                         "transformer/); --stage sft and --dpo-scale read a model written by `idglow train export`")
    recorded = json.loads((model_folder / EXPORTED).read_text())
    if "dpo_config" not in recorded or "sft_config" not in recorded:
        raise ValueError(f"{model_folder}/{EXPORTED}: no dpo_config; the model has no DPO stage to peel off or scale")
    return recorded, int(recorded["sft_config"]["model"]["lora"]["rank"])


def _rewrite_adapter(model_folder: Path, out: Path, adapter: tuple[dict, object] | None, lora_config: dict,
                     provenance: dict, sampler: dict | None = None) -> None:
    """Copy the model folder to ``out`` with its LoRA replaced by ``adapter`` (None: no LoRA file), its config's
    ``model.lora`` by ``lora_config``, and its provenance (and sampler.json) by the given ones; renamed into place."""
    import shutil

    from idglow.models.io import write_lora
    from idglow.runs.load import EXPORTED

    tmp = out.with_name(out.name + ".tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_folder, tmp, ignore=shutil.ignore_patterns(EXPORTED, SAMPLER, "lora.*"))
    if adapter is not None:
        write_lora(tmp / "final", *adapter)
    config = json.loads((model_folder / "config.json").read_text())
    config["model"]["lora"] = lora_config
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (tmp / EXPORTED).write_text(json.dumps(provenance, indent=2) + "\n")
    if sampler:
        write_sampler(tmp, sampler)
    replace_folder(tmp, out)


_PEELED_KEYS = ("command", "commit", "source", "source_weights", "init")


def export_sft_stage(model_folder: str | Path, out: str | Path, command: str, commit: str) -> dict:
    """Write the SFT stage of an exported SFT+DPO model as a model folder of its own: the same base backbone and
    identity branch (DPO trains neither), and only SFT's ranks of the stacked LoRA (:func:`idglow.models.lora.lora_ranks`,
    exact), so it is the SFT run the model was made from, e.g. to train on with ``idglow train sft --init`` when that
    run itself is gone. Its provenance names the model it came from; it carries no scores or sampler (those were
    measured on the model with DPO).
    """
    from idglow.models.io import read_lora
    from idglow.models.lora import lora_ranks
    from idglow.runs.load import weights_fingerprint

    model_folder, out = Path(model_folder), Path(out)
    recorded, sft_rank = _read_stacked(model_folder)
    adapter, lora_config = None, recorded["sft_config"]["model"]["lora"]  # SFT trained no LoRA: the adapter is DPO's
    if sft_rank:
        state, options = read_lora(model_folder / "final")
        adapter = lora_ranks(state, options, 0, sft_rank)
        lora_config = to_dict(adapter[1])
    provenance = {"command": command, "commit": commit, "stage": "sft", "source": str(model_folder),
                  "source_weights": weights_fingerprint(model_folder), "base": recorded.get("base"),
                  "stages": {"sft": recorded["stages"]["sft"]}, "scores": {}, "sft_config": recorded["sft_config"],
                  "peeled_from": {key: recorded[key] for key in _PEELED_KEYS if key in recorded}}
    _rewrite_adapter(model_folder, out, adapter, lora_config, provenance)
    return provenance


def export_dpo_scaled(model_folder: str | Path, out: str | Path, scale: float, command: str, commit: str,
                      score_folders: Sequence[str | Path] = ()) -> dict:
    """Write an exported SFT+DPO model with its DPO adapter scaled: ``W = W_base + dW_sft + scale * dW_dpo``.

    DPO trains LoRA ranks of its own on the SFT model (and neither the backbone nor the identity branch), so scaling
    those ranks' B moves the model, exactly, along the line from its SFT stage (``scale`` 0, what :func:`export_sft_stage`
    computes) through the trained model (1) and past it (> 1: model extrapolation, "ExPO", Zheng et al., ACL 2025,
    on the DPO stage alone). ``score_folders`` (``idglow train sft-eval`` outputs of *this* scaled model) go into its
    provenance and choose its ``sampler.json`` as :func:`export_idglow` does; the source's scores are not carried over.
    ``scale`` is always relative to the DPO adapter as trained: a model this function wrote (``dpo_scale`` in its
    provenance) is rescaled from that record, so scale 1 on it gives back the model as trained.
    """
    import math

    from idglow.models.io import read_lora
    from idglow.models.lora import concat_loras, lora_ranks
    from idglow.runs.load import weights_fingerprint

    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"--dpo-scale {scale}: give a finite scale >= 0 (0: the SFT stage, 1: the model as trained)")
    model_folder, out = Path(model_folder), Path(out)
    recorded, sft_rank = _read_stacked(model_folder)
    applied = float(recorded.get("dpo_scale", 1.0))  # a folder written by this function is rescaled from its record
    if applied == 0:
        raise ValueError(f"{model_folder}: its DPO adapter was scaled to 0, so it cannot be scaled back; scale the "
                         "model it came from (provenance.json: scaled_from)")
    state, options = read_lora(model_folder / "final")
    dpo_state, dpo_options = lora_ranks(state, options, sft_rank, options.rank)
    factor = scale / applied
    dpo_state = {key: value * factor if key.endswith(".lora_B.weight") else value for key, value in dpo_state.items()}
    parts = [lora_ranks(state, options, 0, sft_rank)] if sft_rank else []
    adapter = concat_loras([*parts, (dpo_state, dpo_options)])
    trained_gate = json.loads((model_folder / "config.json").read_text())["model"]["identity"]["gate"]
    scores = read_score_folders(score_folders, trained_gate)
    provenance = {"command": command, "commit": commit, "dpo_scale": scale, "source": str(model_folder),
                  "source_weights": weights_fingerprint(model_folder), "base": recorded.get("base"),
                  "stages": recorded["stages"], "scores": scores, "sft_config": recorded["sft_config"],
                  "dpo_config": recorded["dpo_config"],
                  "scaled_from": {key: recorded[key] for key in _PEELED_KEYS if key in recorded}}
    if "init" in recorded:
        provenance["init"] = recorded["init"]
    _rewrite_adapter(model_folder, out, adapter, to_dict(adapter[1]), provenance, recommend(scores, trained_gate))
    return provenance
