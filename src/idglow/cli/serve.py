"""``idglow serve``: the web app on a trained or shipped model (Gradio, loopback by default, offline)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from idglow.cli.registry import chosen_device, command, device_option, non_negative_int, positive_int
from idglow.utils.defaults import IDGLOW_MODEL, JUDGES, PRECISIONS

DESCRIPTION = """Serve the IdGlow web app: pick people from a gallery (or upload faces), write a prompt or let the button
write one from the chosen people, set task, steps, seed, identity guidance and strength, and shape the gate's
lambda(sigma) with sliders (a live plot shows it). Each generated face is boxed and labelled with the reference it
matches and their similarity (the cast's judges for cast models; the photo backend for photo models).

No training and no network: by default it serves the shipped model (assets/idglow) with its gallery of people it
never saw in training. The generate button is also an API endpoint, for scripts:
  from gradio_client import Client
  Client("http://127.0.0.1:7860/").predict(["person 1", "person 2"], [], "a group photo of two people ...",
      "group", 20, 0, 1, 1.0, 1.0, "linear_decay", 0, 1, "window", 0, 1, 0.3, 0.7, 0.1, api_name="/generate")"""


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app, _ = build(args)
    print(f"serving {args.run} on http://{args.host}:{args.port or '<free port>'}/ (Ctrl-C stops)", flush=True)
    from idglow.serve.app import app_theme

    app.queue().launch(server_name=args.host, server_port=args.port or None, share=False, show_error=True,
                       inbrowser=False, theme=app_theme())
    return 0


def build(args: argparse.Namespace):
    """``(Blocks, AppModel)`` for the parsed arguments (the tests launch it themselves)."""
    from idglow.faces import load_backend
    from idglow.generate.pipeline import IdGlowPipeline
    from idglow.serve.app import AppModel, build_app
    from idglow.serve.gallery import load_gallery

    run = Path(args.run)
    if not (run / "config.json").is_file():
        hint = " (the shipped model: check out the repository's assets/, or train one: see the README)" if args.run == IDGLOW_MODEL else ""
        raise FileNotFoundError(f"--run: {run} is not a model or run folder{hint}")
    device = chosen_device(args.device)
    pipe = IdGlowPipeline.from_pretrained(run, device=device, height=args.height, width=args.width, precision=args.precision)
    gallery_dir = Path(args.gallery) if args.gallery else run / "gallery"
    gallery = load_gallery(gallery_dir) if args.gallery or gallery_dir.is_dir() else []
    kind = pipe.cfg.references.backend
    backend = load_backend(kind, model_dir=pipe.cfg.references.model_dir) if kind in ("dlib", "insightface") else \
        load_backend("synth", judges=args.judges or pipe.cfg.identity_loss.judges)
    model = AppModel(pipe, gallery, backend)
    return build_app(model, title=f"IdGlow ({run})"), model


def register(sub) -> None:
    """``idglow serve``."""
    p = command(sub, "serve", cmd_serve, "serve the web app (Gradio) on the shipped model or a trained run", DESCRIPTION)
    p.add_argument("--run", default=IDGLOW_MODEL, help=f"model or run folder: an exported model, or a finished `train sft` / "
                   f"`train dpo` run (default: {IDGLOW_MODEL}, the shipped model)")
    p.add_argument("--gallery", help="people to offer: a gallery folder (gallery.json) or a cast folder (its benchmark's "
                   "held-out people) (default: <run>/gallery when it exists; otherwise uploads only)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; "
                   "0.0.0.0 serves your network)")
    p.add_argument("--port", type=non_negative_int, default=7860, help="port (default: 7860; 0 = the first free one from 7860)")
    p.add_argument("--judges", help=f"cast judges that label the faces of cast models (default: the run's, usually {JUDGES})")
    device_option(p)
    p.add_argument("--precision", choices=PRECISIONS, default=None, help="arithmetic of sampling (see `idglow generate --help`)")
    p.add_argument("--height", type=positive_int, default=64, help="image height in pixels (default: 64)")
    p.add_argument("--width", type=positive_int, default=128, help="image width in pixels (default: 128)")
