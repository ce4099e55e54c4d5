"""Training and held-out evaluation of the cast's judges (``idglow synth train-judges``)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata
from torch.nn import functional as F
from tqdm.auto import tqdm

from idglow.cast.factors import CLOTHING_NAMES
from idglow.cast.judges import DETECTOR_STRIDE, CropClassifier, FaceDetector, IdentityEmbedder
from idglow.cast.pool import ScenePool, render_pool
from idglow.cast.scenes import MAX_PEOPLE
from idglow.utils.config import option, require_min, to_dict
from idglow.utils.io import atomic_write, load_weights, save_weights

JUDGES = ("detector", "encoder", "judge", "age", "colour")


@dataclasses.dataclass
class JudgeTrainingConfig:
    """Sizes and schedules of judge training."""

    train_scenes: int = option(12000, "scenes rendered from training identities")
    eval_scenes: int = option(1500, "scenes rendered from held-out identities for the report")
    train_mini_adults: float = option(
        0.25, "share of child scenes rendered as mini-adults in training, labelled by facial structure, so the "
        "age judge reads the face and not the body"
    )
    detector_steps: int = option(1000, "optimisation steps of the face detector")
    embedder_epochs: int = option(8, "epochs of each identity embedder")
    age_epochs: int = option(15, "epochs of the age classifier")
    colour_epochs: int = option(3, "epochs of the clothing-colour classifier")
    batch: int = option(64, "batch size (scenes for the detector, crops x4 for the others)")
    lr: float = option(2e-3, "AdamW learning rate (cosine decay)")
    workers: int = option(2, "processes rendering scenes")
    seed: int = option(0, "random seed of rendering and training")

    def validate(self) -> None:
        require_min(self, 1, "train_scenes", "eval_scenes", "detector_steps", "embedder_epochs", "age_epochs",
                    "colour_epochs", "batch", "workers")
        if not 0.0 <= self.train_mini_adults <= 1.0:
            raise ValueError(f"train_mini_adults: must lie in [0, 1], got {self.train_mini_adults}")


def _optimiser(params, lr: float, steps: int):
    """AdamW with a one-cycle schedule, shared by every judge."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.1)


def detector_targets(pool: ScenePool, scenes: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian centre heatmaps [B, 1, h, w], box targets [B, 4, h, w] and their mask [B, 1, h, w]."""
    h, w = shape
    heat = torch.zeros(len(scenes), 1, h, w)
    box = torch.zeros(len(scenes), 4, h, w)
    mask = torch.zeros(len(scenes), 1, h, w)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    for b, s in enumerate(scenes.tolist()):
        for x0, y0, x1, y1 in pool.boxes[pool.scene == s].tolist():
            cx, cy = (x0 + x1) / 2 / DETECTOR_STRIDE, (y0 + y1) / 2 / DETECTOR_STRIDE
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            radius = max((x1 - x0) / DETECTOR_STRIDE / 6, 0.7)
            g = torch.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * radius**2))
            heat[b, 0] = torch.maximum(heat[b, 0], g)
            box[b, :, iy, ix] = torch.tensor([(x1 - x0) / 16, (y1 - y0) / 16, cx - ix - 0.5, cy - iy - 0.5])
            mask[b, 0, iy, ix] = 1
    return heat, box, mask


def _focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -((1 - p) ** 2) * torch.log(p) * pos
    neg_loss = -((1 - target) ** 4) * p**2 * torch.log(1 - p) * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1)


def train_detector(pool: ScenePool, cfg: JudgeTrainingConfig, progress: bool = True) -> FaceDetector:
    torch.manual_seed(cfg.seed)
    model = FaceDetector()
    opt, sched = _optimiser(model.parameters(), cfg.lr, cfg.detector_steps)
    n, (h, w) = len(pool.images), pool.images.shape[1:3]
    for _ in tqdm(range(cfg.detector_steps), desc="detector", disable=not progress):
        scenes = torch.randint(n, (cfg.batch,))
        images = pool.image_batch(scenes)
        flip = torch.rand(()) < 0.5  # left-right flips double the layouts seen
        heat, box, mask = detector_targets(pool, scenes, (h // DETECTOR_STRIDE, w // DETECTOR_STRIDE))
        if flip:
            images, heat, mask = images.flip(-1), heat.flip(-1), mask.flip(-1)
            box = box.flip(-1) * torch.tensor([1.0, 1.0, -1.0, 1.0]).view(1, 4, 1, 1)
        logits, pred = model(images)
        loss = _focal_loss(logits, heat) + (F.l1_loss(pred, box, reduction="none") * mask).sum() / mask.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def train_embedder(crops: torch.Tensor, ids: torch.Tensor, arch: str, seed: int, cfg: JudgeTrainingConfig,
                   progress: bool = True, adversarial_eps: float = 0.0) -> IdentityEmbedder:
    """CosFace (normalised softmax with an additive margin) over the training identities.

    ``adversarial_eps`` > 0 trains on adversarial crops (:func:`adversarial_crops`, an L-inf ball of that radius in
    [-1, 1] pixel units): a robust embedder's gradients follow features a person sees, not texture."""
    torch.manual_seed(seed)
    classes, labels = torch.unique(ids, return_inverse=True)
    model = IdentityEmbedder(arch)
    head = torch.nn.Parameter(torch.randn(len(classes), 128) * 0.01)
    batch = cfg.batch * 4
    steps = cfg.embedder_epochs * (len(crops) // batch)
    opt, sched = _optimiser([*model.parameters(), head], cfg.lr, steps)

    def cosface(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cos = model(x) @ F.normalize(head, dim=-1).T
        return F.cross_entropy(24.0 * (cos - F.one_hot(target, len(classes)) * 0.3), target)

    for _ in tqdm(range(steps), desc=f"embedder {arch}" + (" (adversarial)" if adversarial_eps else ""),
                  disable=not progress):
        idx = torch.randint(len(crops), (batch,))
        x = _augment(crops[idx])
        if adversarial_eps > 0:
            x = adversarial_crops(lambda v: cosface(v, labels[idx]), x, adversarial_eps)
        loss = cosface(x, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def adversarial_crops(loss_fn, crops: torch.Tensor, eps: float, steps: int = 3) -> torch.Tensor:
    """Projected gradient ascent of ``loss_fn`` (crops -> scalar) within an L-inf ball of radius ``eps`` around
    ``crops`` [B, 3, h, w] in [-1, 1] (Madry et al., 2018): a random start, ``steps`` signed steps of 2.5 eps / steps,
    clipped to the ball and to [-1, 1]. Returns the perturbed crops, detached."""
    delta = torch.empty_like(crops).uniform_(-eps, eps)
    for _ in range(steps):
        delta.requires_grad_(True)
        grad, = torch.autograd.grad(loss_fn((crops + delta).clamp(-1, 1)), delta)
        delta = (delta.detach() + 2.5 * eps / steps * grad.sign()).clamp(-eps, eps)
    return (crops + delta).clamp(-1, 1).detach()


def _augment(crops: torch.Tensor) -> torch.Tensor:
    """Small random shifts and scales of crops, as detector boxes would jitter."""
    theta = torch.zeros(len(crops), 2, 3)
    scale = 1 + 0.08 * (torch.rand(len(crops)) * 2 - 1)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = 0.08 * (torch.rand(len(crops), 2) * 2 - 1)
    grid = F.affine_grid(theta, list(crops.shape), align_corners=False)
    return F.grid_sample(crops, grid, padding_mode="border", align_corners=False)


def train_classifier(crops: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: JudgeTrainingConfig,
                     name: str, epochs: int, progress: bool = True) -> CropClassifier:
    torch.manual_seed(cfg.seed + 7)
    model = CropClassifier(num_classes)
    batch = cfg.batch * 4
    steps = epochs * max(len(crops) // batch, 1)
    opt, sched = _optimiser(model.parameters(), cfg.lr, steps)
    for _ in tqdm(range(steps), desc=name, disable=not progress):
        idx = torch.randint(len(crops), (batch,))
        loss = F.cross_entropy(model(_augment(crops[idx])), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix [A, B] of boxes ``[x0, y0, x1, y1]``."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = (rb - lt).clamp_min(0).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter).clamp_min(1e-9)


@torch.no_grad()
def evaluate_detector(model: FaceDetector, pool: ScenePool, iou: float = 0.5) -> dict:
    """Recall and precision at IoU ``iou`` (greedy one-to-one matching), over all scenes of ``pool``."""
    tp = n_pred = n_true = 0
    for start in range(0, len(pool.images), 128):
        scenes = torch.arange(start, min(start + 128, len(pool.images)))
        for s, det in zip(scenes.tolist(), model.detect(pool.image_batch(scenes))):
            truth = pool.boxes[pool.scene == s]
            n_pred, n_true = n_pred + len(det), n_true + len(truth)
            if len(det) and len(truth):
                m = box_iou(det[:, :4], truth)
                while m.numel() and m.max() >= iou:
                    i, j = divmod(int(m.argmax()), m.shape[1])
                    tp += 1
                    m[i, :] = -1
                    m[:, j] = -1
    return {"recall": tp / max(n_true, 1), "precision": tp / max(n_pred, 1), "faces": n_true}


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve of similarity scores (Mann-Whitney U statistic)."""
    ranks = rankdata(np.concatenate([genuine, impostor]))
    return float((ranks[: len(genuine)].sum() - len(genuine) * (len(genuine) + 1) / 2) / (len(genuine) * len(impostor)))


@torch.no_grad()
def evaluate_embedder(model: IdentityEmbedder, crops: torch.Tensor, ids: torch.Tensor, child: torch.Tensor, seed: int = 0) -> dict:
    """Verification ROC-AUC on held-out faces: all pairs, and adult-vs-child pairs of one identity."""
    emb = torch.cat([model(crops[i : i + 1024]) for i in range(0, len(crops), 1024)])
    sim = emb @ emb.T
    same = ids[:, None] == ids[None, :]
    upper = torch.triu(torch.ones_like(same), diagonal=1)
    genuine = sim[same & upper].numpy()
    cross_age = sim[same & upper & (child[:, None] != child[None, :])].numpy()
    rng = np.random.default_rng(seed)
    impostor_all = sim[~same & upper].numpy()
    impostor = rng.choice(impostor_all, size=min(len(impostor_all), 200_000), replace=False)
    return {
        "auc": roc_auc(genuine, impostor),
        "auc_adult_vs_child": roc_auc(cross_age, impostor),
        "genuine_pairs": int(len(genuine)),
        "adult_vs_child_pairs": int(len(cross_age)),
        "mean_genuine_cos": float(genuine.mean()),
        "mean_impostor_cos": float(impostor.mean()),
    }


@torch.no_grad()
def _predict(model: torch.nn.Module, crops: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(crops[i : i + 1024]).argmax(-1) for i in range(0, len(crops), 1024)])


def evaluate_classifiers(age: CropClassifier, colour: CropClassifier, pool: ScenePool) -> dict:
    """Age accuracy on true renders, mini-adult rejection, colour accuracy (held-out pool)."""
    faces, torsos = pool.crops(), pool.crops(torso=True, size=16)
    pred_age, pred_colour = _predict(age, faces), _predict(colour, torsos)
    true = pool.child_face == pool.child_body
    mini = (pool.child_body == 1) & (pool.child_face == 0)
    return {
        "age_accuracy": float((pred_age[true] == pool.child_face[true]).float().mean()),
        "mini_adult_rejected": float((pred_age[mini] == 0).float().mean()) if mini.any() else float("nan"),
        "mini_adults": int(mini.sum()),
        "colour_accuracy": float((pred_colour == pool.colour).float().mean()),
    }


def save_judge(directory: Path, name: str, model: torch.nn.Module, config: dict) -> None:
    save_weights(Path(directory) / f"{name}.safetensors", model.state_dict(), {"name": name, **config})


def load_judges(directory: str | Path) -> dict[str, torch.nn.Module]:
    """All judges saved in ``directory``, in eval mode."""
    judges = {}
    for name in JUDGES:
        tensors, config = load_weights(Path(directory) / f"{name}.safetensors")
        model = build_judge(config)
        model.load_state_dict(tensors, strict=True)
        judges[name] = model.eval()
    return judges


def load_embedder(directory: str | Path, name: str) -> IdentityEmbedder:
    """The identity embedder ``name`` saved in ``directory`` (a judge or an extra one), frozen, in eval mode."""
    path = Path(directory) / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no embedder {name!r} in {directory}; train it with "
                                f"`idglow synth train-embedder --name {name} --out {directory}`")
    tensors, config = load_weights(path)
    if config.get("kind") != "embedder":
        raise ValueError(f"{path}: {name!r} is a {config.get('kind')}, not an identity embedder")
    model = build_judge(config)
    model.load_state_dict(tensors, strict=True)
    return model.eval().requires_grad_(False)


def _judge_pools(world_seed: int, width: int, height: int, train_ids: np.ndarray, heldout_ids: np.ndarray,
                 cfg: JudgeTrainingConfig, max_people: int) -> tuple[ScenePool, ScenePool]:
    """The training pool (training identities) and the held-out pool (30% mini-adults among children)."""
    train = render_pool(world_seed, train_ids, cfg.train_scenes, cfg.seed, width, height, cfg.train_mini_adults,
                        cfg.workers, max_people)
    held = render_pool(world_seed, heldout_ids, cfg.eval_scenes, cfg.seed + 1, width, height, 0.3, cfg.workers,
                       max_people)
    return train, held


def train_extra_embedder(out: Path, name: str, arch: str, seed: int, world_seed: int, width: int, height: int,
                         train_ids: np.ndarray, heldout_ids: np.ndarray, cfg: JudgeTrainingConfig,
                         progress: bool = True, adversarial_eps: float = 0.0, max_people: int = MAX_PEOPLE) -> dict:
    """Train one more identity embedder beside the judges in ``out`` (same training identities and scenes as the
    ``encoder``: ``cfg.seed`` renders the same pool), report it on held-out identities, save ``<name>.safetensors``
    and add its report to ``report.json``. The five judges' names are refused: they are not overwritten here.
    ``adversarial_eps``: see :func:`train_embedder`; ``max_people``: the world's largest group."""
    if name in JUDGES:
        raise ValueError(f"name: {name!r} is one of the judges {JUDGES}; `idglow synth train-judges` trains those")
    if not 0.0 <= adversarial_eps <= 0.5:
        raise ValueError(f"adversarial_eps: must be in [0, 0.5] ([-1, 1] pixel units), got {adversarial_eps}")
    t = time.perf_counter()
    train, held = _judge_pools(world_seed, width, height, train_ids, heldout_ids, cfg, max_people)
    model = train_embedder(train.crops(), train.identity, arch, seed, cfg, progress, adversarial_eps)
    true = held.child_face == held.child_body
    result = {**evaluate_embedder(model, held.crops()[true], held.identity[true], held.child_face[true]),
              "arch": arch, "seed": seed, "adversarial_eps": adversarial_eps, "train_seconds": time.perf_counter() - t}
    save_judge(out, name, model, {"kind": "embedder", "arch": arch})
    report_path = Path(out) / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report.setdefault("extra_embedders", {})[name] = result
    atomic_write(report_path, lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    return result


def build_judge(config: dict) -> torch.nn.Module:
    kind = config["kind"]
    if kind == "detector":
        return FaceDetector()
    if kind == "embedder":
        return IdentityEmbedder(config["arch"])
    if kind == "classifier":
        return CropClassifier(config["num_classes"])
    raise ValueError(f"kind: unknown judge kind {kind!r}")


def train_all(out: Path, world_seed: int, width: int, height: int, train_ids: np.ndarray, heldout_ids: np.ndarray,
              cfg: JudgeTrainingConfig, progress: bool = True, max_people: int = MAX_PEOPLE) -> dict:
    """Render pools, train the five judges, evaluate on held-out identities, save everything to ``out``.

    ``max_people``: the world's largest group (``world.max_people``); the scenes the judges learn from have 1 to
    this many people, like the datasets ``synth build`` renders."""
    times: dict[str, float] = {}
    t = time.perf_counter()
    train, held = _judge_pools(world_seed, width, height, train_ids, heldout_ids, cfg, max_people)
    times["render"] = time.perf_counter() - t
    faces = train.crops()
    t = time.perf_counter()
    detector = train_detector(train, cfg, progress)
    times["detector"] = time.perf_counter() - t
    embedders = {}
    for name, arch, seed in (("encoder", "resnet", cfg.seed + 11), ("judge", "plain", cfg.seed + 23)):
        t = time.perf_counter()
        embedders[name] = train_embedder(faces, train.identity, arch, seed, cfg, progress)
        times[name] = time.perf_counter() - t
    t = time.perf_counter()
    age = train_classifier(faces, train.child_face, 2, cfg, "age", cfg.age_epochs, progress)
    times["age"] = time.perf_counter() - t
    t = time.perf_counter()
    colour = train_classifier(train.crops(torso=True, size=16), train.colour, len(CLOTHING_NAMES), cfg, "colour", cfg.colour_epochs, progress)
    times["colour"] = time.perf_counter() - t
    true = held.child_face == held.child_body  # mini-adults are not a true identity render
    held_faces = held.crops()
    report = {
        "detector": evaluate_detector(detector, held),
        **{n: evaluate_embedder(m, held_faces[true], held.identity[true], held.child_face[true]) for n, m in embedders.items()},
        "classifiers": evaluate_classifiers(age, colour, held),
        "train_seconds": times,
        "config": to_dict(cfg),
        "world": {"seed": world_seed, "width": width, "height": height, "max_people": max_people,
                  "train_identities": len(train_ids), "heldout_identities": len(heldout_ids)},
    }
    save_judge(out, "detector", detector, {"kind": "detector"})
    for name, model in embedders.items():
        save_judge(out, name, model, {"kind": "embedder", "arch": model.arch})
    save_judge(out, "age", age, {"kind": "classifier", "num_classes": 2, "classes": ["adult", "child"]})
    save_judge(out, "colour", colour, {"kind": "classifier", "num_classes": len(CLOTHING_NAMES), "classes": list(CLOTHING_NAMES)})
    atomic_write(Path(out) / "report.json", lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
    return report
