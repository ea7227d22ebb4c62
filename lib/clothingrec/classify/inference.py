"""Load a trained classifier (exported weights or a Lightning checkpoint) and predict.

The exported file (``<model>.pt``, written by :func:`export_weights`) is a small dict:
architecture name, class names, input sizes, normalisation, fp32 ``state_dict`` and the
config it was trained with.  ``load_classifier(path)`` returns a :class:`LoadedClassifier`
that unpacks as ``model, classes, transform, imgsz``; ``predict`` runs batches of paths,
PIL images or already-transformed tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from clothingrec.classify.augment import IMAGENET_MEAN, IMAGENET_STD, center_crop, normalize
from clothingrec.classify.models import build_classifier
from clothingrec.classify.store import decode_square
from clothingrec.device import resolve_device

EXPORT_FORMAT = "clothingrec-classifier"


def export_weights(model: nn.Module, path: str | Path, *, arch: str, classes: Sequence[str], imgsz: int,
                   resize_size: int, config: dict | None = None, extra: dict | None = None) -> Path:
    """Write a self-describing fp32 weights file for :func:`load_classifier`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    torch.save({"format": EXPORT_FORMAT, "version": 1, "arch": arch, "classes": list(classes),
                "imgsz": int(imgsz), "resize_size": int(resize_size), "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD), "state_dict": state, "config": config or {},
                "extra": extra or {}}, path)
    return path


class EvalTransform:
    """Path or PIL image → normalised ``[3, imgsz, imgsz]`` float tensor (the store's decoding + centre crop)."""

    def __init__(self, imgsz: int, resize_size: int):
        self.imgsz, self.resize_size = int(imgsz), int(resize_size)

    def __call__(self, source) -> torch.Tensor:
        square = torch.from_numpy(decode_square(source, self.resize_size))
        x = center_crop(square, self.imgsz).float().div_(255.0).unsqueeze(0)
        return normalize(x, channels_last=False)[0]

    def __repr__(self) -> str:
        return f"EvalTransform(resize shorter side to {self.resize_size}, centre crop {self.imgsz}, ImageNet norm)"


@dataclass
class LoadedClassifier:
    model: nn.Module
    classes: tuple[str, ...]
    transform: Callable
    imgsz: int
    resize_size: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # model, classes, transform, imgsz = load_classifier(path)
        return iter((self.model, self.classes, self.transform, self.imgsz))


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> LoadedClassifier:
    """Load exported weights (``.pt``) or a Lightning checkpoint (``.ckpt``) for inference (eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classifier weights {path} do not exist")
    data = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT:
        arch, classes = data["arch"], tuple(data["classes"])
        imgsz, resize_size = data["imgsz"], data["resize_size"]
        state, meta = data["state_dict"], {k: v for k, v in data.items() if k != "state_dict"}
    elif isinstance(data, dict) and "hyper_parameters" in data and "state_dict" in data:
        hp = data["hyper_parameters"]
        if "cfg" not in hp or "classes" not in hp:
            raise ValueError(f"{path}: Lightning checkpoint without the classifier's 'cfg'/'classes' hyper-parameters")
        cfg, classes = hp["cfg"], tuple(hp["classes"])
        arch, imgsz = cfg["model"], cfg["imgsz"]
        resize_size = int(round(cfg["imgsz"] / cfg["crop_frac"]))
        state = {k[len("model."):]: v for k, v in data["state_dict"].items() if k.startswith("model.")}
        meta = {"config": cfg, "epoch": data.get("epoch"), "source": "lightning checkpoint"}
    else:
        raise ValueError(f"{path}: not a clothingrec classifier export nor a Lightning checkpoint of one")
    model = build_classifier(arch, len(classes), pretrained=None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit {arch} (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.eval().to(resolve_device(device))
    return LoadedClassifier(model, classes, EvalTransform(imgsz, resize_size), int(imgsz), int(resize_size), meta)


@dataclass
class Predictions:
    indices: torch.Tensor        # [N] predicted class index
    probs: torch.Tensor          # [N, C] softmax probabilities
    labels: list[str]            # predicted class names


@torch.inference_mode()
def predict(classifier: LoadedClassifier | nn.Module, images, batch_size: int = 32,
            device: str | torch.device | None = None, classes: Sequence[str] | None = None,
            transform: Callable | None = None) -> Predictions:
    """Classify ``images``: a list of paths / PIL images, or a ``[N, 3, H, W]`` normalised tensor."""
    if isinstance(classifier, LoadedClassifier):
        model, classes, transform = classifier.model, classes or classifier.classes, transform or classifier.transform
    else:
        model = classifier
    if device is None:
        device = next(model.parameters()).device
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.eval().to(device)
    if torch.is_tensor(images):
        batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
    else:
        if transform is None:
            raise ValueError("predict: paths or PIL images need a transform (pass a LoadedClassifier)")
        items = list(images)
        batches = (torch.stack([transform(s) for s in items[i:i + batch_size]])
                   for i in range(0, len(items), batch_size))
    probs = []
    for x in batches:
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        probs.append(model(x).float().softmax(dim=1).cpu())
    probs = torch.cat(probs) if probs else torch.zeros((0, len(classes or [])))
    indices = probs.argmax(dim=1)
    names = [classes[i] for i in indices.tolist()] if classes else [str(i) for i in indices.tolist()]
    return Predictions(indices, probs, names)
