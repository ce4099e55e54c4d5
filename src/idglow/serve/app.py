"""The Gradio app behind ``idglow serve``.

:class:`AppModel` holds what a request needs (pipeline, gallery, face backend) and does the work; :func:`build_app`
lays the controls out and wires them to it. The generate button is also an API endpoint (``/generate``), so
``gradio_client`` scripts the same call the page makes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from idglow.cast.scenes import MAX_PEOPLE, PLACES
from idglow.data.images import read_rgb
from idglow.eval.plots import gate_figure
from idglow.faces.base import FaceBackend
from idglow.generate.controls import gate_config_with
from idglow.generate.pipeline import IdGlowPipeline
from idglow.identity.config import GateConfig
from idglow.identity.gate import DynamicsAwareGate
from idglow.identity.schedules import ScheduleConfig
from idglow.runs.sampler import TASKS, TRAINED, settings_for
from idglow.serve.gallery import GalleryEntry
from idglow.serve.labels import draw_labels, label_faces, reference_rows
from idglow.serve.prompting import write_prompt

LABEL_COLUMNS = ["image", "reference", "face", "similarity"]
ANALYTIC = ["linear_decay", "constant", "window"]


@dataclasses.dataclass
class ScheduleInputs:
    """The schedule sliders: one analytic schedule per task (see :class:`idglow.identity.schedules.ScheduleConfig`)."""

    group_kind: str
    group_min: float
    group_max: float
    age_kind: str
    age_min: float
    age_max: float
    age_lo: float
    age_hi: float
    age_edge: float

    def gate_config(self, base: GateConfig) -> GateConfig:
        """``base`` with these schedules; out-of-range values are errors naming the field."""
        group = dataclasses.replace(base.group, kind=self.group_kind, lambda_min=self.group_min, lambda_max=self.group_max)
        age = dataclasses.replace(base.age, kind=self.age_kind, lambda_min=self.age_min, lambda_max=self.age_max,
                                  sigma_lo=self.age_lo, sigma_hi=self.age_hi, edge_width=self.age_edge)
        config = dataclasses.replace(base, group=group, age=age)
        config.validate()
        return config

    @classmethod
    def of(cls, config: GateConfig) -> ScheduleInputs:
        g, a = config.group, config.age
        return cls(g.analytic_kind, g.lambda_min, g.lambda_max, a.analytic_kind, a.lambda_min, a.lambda_max, a.sigma_lo,
                   a.sigma_hi, a.edge_width)


class AppModel:
    """The app's work, independent of the page: references, prompts, generation and face labels.

    Args:
        pipe: the pipeline; gallery: the people offered; backend: finds and embeds faces for the labels (the cast's
            judges for cast models, the photo backend for photo models).
    """

    def __init__(self, pipe: IdGlowPipeline, gallery: list[GalleryEntry], backend: FaceBackend):
        self.pipe, self.gallery, self.backend = pipe, gallery, backend
        self.by_name = {e.name: e for e in gallery}
        self.gate = pipe.model.config.identity.gate
        self.learned = "learned" in (self.gate.group.kind, self.gate.age.kind)
        _, overrides = settings_for(pipe.recommended, TASKS)
        # the sliders start at the model folder's recommended sampler (its sampler.json); the trained gate otherwise
        self.start_gate = self.gate if self.learned else gate_config_with(self.gate, overrides)

    def guidance(self, task: str) -> float:
        """The identity guidance the model folder recommends for ``task`` (1 when it recommends none)."""
        return settings_for(self.pipe.recommended, [task])[0][0]

    def interval(self, task: str) -> tuple[float, float] | None:
        """The sigma interval the model folder limits ``task``'s guidance to (None: every step); the guidance slider
        keeps it, since the recommended guidance was scored within it."""
        return self.pipe.recommended.get(task, TRAINED).id_guidance_interval

    def references(self, people: list[str] | None, uploads: list | None) -> tuple[list[Path], list[str]]:
        """Files and names of the chosen people (gallery order), then the uploaded files (named by file stem)."""
        unknown = [p for p in people or [] if p not in self.by_name]
        if unknown:
            raise ValueError(f"people: {unknown[0]!r} is not in the gallery")
        files = [self.by_name[p].file for p in people or []]
        names = list(people or [])
        for upload in uploads or []:
            path = Path(upload if isinstance(upload, (str, Path)) else getattr(upload, "name", upload))
            files.append(path)
            names.append(path.stem)
        if not files:
            raise ValueError("references: choose people from the gallery or upload reference faces")
        if len(files) > self.pipe.cfg.model.identity.max_refs:
            raise ValueError(f"references: {len(files)} people; the model takes at most {self.pipe.cfg.model.identity.max_refs}")
        return files, names

    def prompt(self, people: list[str] | None, uploads: list | None, task: str, place: str, seed: float) -> str:
        """The rules synthesizer's caption for the chosen people."""
        files, _ = self.references(people, uploads)
        return write_prompt(min(len(files), MAX_PEOPLE), task, place, int(seed or 0))

    def figure(self, schedule: ScheduleInputs, id_scale: float = 1.0):
        """The live lambda(sigma) plot of the sliders' schedules (the model's own when its gate is learned)."""
        config = self.gate if self.learned else schedule.gate_config(self.gate)
        return gate_figure(DynamicsAwareGate(config), "lambda(sigma) used for this call", scale=float(id_scale))

    def generate(self, people, uploads, prompt: str, task: str, steps: float, seed: float, count: float,
                 id_guidance: float, id_scale: float, schedule: ScheduleInputs) -> tuple[list, list[list]]:
        """``(labelled images, rows)``: ``count`` images, seeds ``seed``, ``seed + 1``, ...; each face boxed with the
        reference it matches and its similarity; one row per image and reference: the face drawn for it (its number,
        left to right as detected, "not found" when none was matched) and their similarity."""
        if not (prompt or "").strip():
            raise ValueError("prompt: write a prompt (or press the button that writes one from the chosen people)")
        files, names = self.references(people, uploads)
        count, seed = int(count), int(seed or 0)
        generators = [torch.Generator().manual_seed(seed + k) for k in range(count)]
        out = self.pipe(prompt, id_images=files, task=task, num_inference_steps=int(steps), num_images_per_prompt=count,
                        generator=generators, id_guidance=float(id_guidance), id_guidance_interval=self.interval(task),
                        id_scale=float(id_scale),
                        id_schedule=None if self.learned else schedule.gate_config(self.gate), output_type="np")
        refs = [read_rgb(Path(f), f"references: {f}") for f in files]
        images, rows = [], []
        for k, array in enumerate(out.images):
            image = (array * 255).round().astype(np.uint8)
            labels = label_faces(image, refs, names, self.backend)
            images.append((draw_labels(image, labels), f"seed {seed + k}"))
            rows += [[k + 1, name, "not found" if face is None else f"face {face}", None if sim is None else round(sim, 3)]
                     for name, face, sim in reference_rows(labels, names)]
        return images, rows


def app_theme():
    """Gradio's default theme with the system's fonts: the default fetches web fonts, and the app must work offline."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_app(model: AppModel, title: str = "IdGlow"):
    """The Gradio Blocks page (not launched; launch it with ``theme=app_theme()``)."""
    import gradio as gr

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## IdGlow: group photos of the people you choose\nModel: `{model.pipe.source}`. Pick people (left to right in gallery order) or "
                    "upload faces, write a prompt (or let the button write one), and generate. Each face in the result is "
                    "boxed with the reference it matches and their similarity.")
        with gr.Row():
            with gr.Column(scale=1):
                inputs = _input_controls(gr, model)
                schedule = _schedule_controls(gr, model)
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column(scale=1):
                output = gr.Gallery(label="Generated (upscaled x4, faces boxed)", elem_id="output", columns=1, height="auto",
                                    format="png", object_fit="contain")
                table = gr.Dataframe(headers=LABEL_COLUMNS, label="Each reference: the face drawn for it and their similarity",
                                     elem_id="labels")
        _wire(gr, model, inputs, schedule, button, output, table)
    return app


def _input_controls(gr, model: AppModel) -> dict:
    c = {}
    if model.gallery:
        gr.Gallery(value=[(str(e.file), e.name) for e in model.gallery], label="Gallery (people never seen in training)",
                   columns=6, rows=2, height=260, object_fit="contain", allow_preview=False)
    c["people"] = gr.CheckboxGroup([e.name for e in model.gallery], label="People", elem_id="people")
    c["uploads"] = gr.File(file_count="multiple", file_types=["image"], label="Or upload reference faces", elem_id="uploads")
    with gr.Row():
        c["task"] = gr.Radio(["group", "age"], value="group", label="Task (age: the people as children)", elem_id="task")
        c["place"] = gr.Dropdown(list(PLACES), value="park", label="Place (for the written prompt)")
    c["write"] = gr.Button("Write the prompt from the chosen people", elem_id="write")
    c["prompt"] = gr.Textbox(label="Prompt", lines=2, elem_id="prompt")
    with gr.Row():
        c["steps"] = gr.Slider(1, 50, value=20, step=1, label="Steps", elem_id="steps")
        c["seed"] = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
        c["count"] = gr.Slider(1, 4, value=1, step=1, label="Images", elem_id="count")
    with gr.Row():
        c["id_guidance"] = gr.Slider(1.0, 4.0, value=model.guidance("group"), step=0.05, elem_id="id_guidance",
                                     label="Identity guidance (>1: a second forward per step)",
                                     info="starts at the model's recommendation for the task, and applies at the "
                                          "noise levels it recommends (sampler.json's id_guidance_interval)")
        c["id_scale"] = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Identity strength (x lambda)")
    return c


def _schedule_controls(gr, model: AppModel) -> dict:
    s = ScheduleInputs.of(model.start_gate)
    c = {}
    with gr.Accordion("Gate schedule lambda(sigma)" + (" (learned: fixed)" if model.learned else ""), open=False):
        with gr.Row():
            c["group_kind"] = gr.Dropdown(ANALYTIC, value=s.group_kind, label="group: shape", interactive=not model.learned)
            c["group_min"] = gr.Slider(0, 1, value=s.group_min, step=0.05, label="group: lambda min", interactive=not model.learned)
            c["group_max"] = gr.Slider(0, 1, value=s.group_max, step=0.05, label="group: lambda max", interactive=not model.learned)
        with gr.Row():
            c["age_kind"] = gr.Dropdown(ANALYTIC, value=s.age_kind, label="age: shape", interactive=not model.learned)
            c["age_min"] = gr.Slider(0, 1, value=s.age_min, step=0.05, label="age: lambda min", interactive=not model.learned)
            c["age_max"] = gr.Slider(0, 1, value=s.age_max, step=0.05, label="age: lambda max", interactive=not model.learned)
        with gr.Row():
            c["age_lo"] = gr.Slider(0, 1, value=s.age_lo, step=0.05, label="age: window sigma low", interactive=not model.learned)
            c["age_hi"] = gr.Slider(0, 1, value=s.age_hi, step=0.05, label="age: window sigma high", interactive=not model.learned)
            c["age_edge"] = gr.Slider(0, 0.5, value=s.age_edge, step=0.05, label="age: window edge", interactive=not model.learned)
        c["plot"] = gr.Plot(value=model.figure(s), label="lambda(sigma)", elem_id="schedule")
    return c


def _wire(gr, model: AppModel, inputs: dict, schedule: dict, button, output, table) -> None:
    names = list(dataclasses.fields(ScheduleInputs))
    sliders = [schedule[f.name] for f in names]

    def errors_shown(fn):
        def run(*args):
            try:
                return fn(*args)
            except (ValueError, FileNotFoundError) as err:
                raise gr.Error(str(err)) from None
        return run

    def plot(id_scale, *values):
        return model.figure(ScheduleInputs(*values), id_scale)

    def generate(people, uploads, prompt, task, steps, seed, count, id_guidance, id_scale, *values):
        return model.generate(people, uploads, prompt, task, steps, seed, count, id_guidance, id_scale, ScheduleInputs(*values))

    for control in [inputs["id_scale"], *sliders]:
        control.change(errors_shown(plot), [inputs["id_scale"], *sliders], schedule["plot"], api_name=False)
    inputs["task"].change(model.guidance, inputs["task"], inputs["id_guidance"], api_name=False)
    inputs["write"].click(errors_shown(model.prompt), [inputs[k] for k in ("people", "uploads", "task", "place", "seed")],
                          inputs["prompt"], api_name="write_prompt")
    keys = ("people", "uploads", "prompt", "task", "steps", "seed", "count", "id_guidance", "id_scale")
    button.click(errors_shown(generate), [inputs[k] for k in keys] + sliders, [output, table], api_name="generate")
