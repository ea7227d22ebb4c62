"""Load a trained classifier (exported weights or a Lightning checkpoint): the project's one :class:`Classifier`.

The exported file (``<model>.pt``, written by :func:`export_weights`) is a small dict:
architecture name, class names, input sizes, normalisation, fp32 ``state_dict`` and the
config it was trained with.  ``load_classifier(path)`` returns an :class:`ImageClassifier`
(:class:`clothingrec.structures.Classifier`): ``classify(image)``, ``classify_crops(image, boxes)``
and the batch ``predict(paths | PIL images | normalised tensor)``.  Whole images and crops are
prepared as training evaluated them (:class:`EvalTransform`: the store's decoding, centre crop, ImageNet norm).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from clothingrec.classify.augment import center_crop, normalize
from clothingrec.classify.models import build_classifier
from clothingrec.classify.store import decode_square
from clothingrec.device import resolve_device
from clothingrec.structures import IMAGENET_MEAN, IMAGENET_STD, Classification

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
class Predictions:
    indices: torch.Tensor        # [N] predicted class index
    probs: torch.Tensor          # [N, C] softmax probabilities
    labels: list[str]            # predicted class names


@dataclass
class ImageClassifier:
    """A classification network behind the :class:`~clothingrec.structures.Classifier` protocol.

    ``forward`` computes the logits of a normalised ``[N, 3, imgsz, imgsz]`` batch; None runs ``model``
    (channels-last, on its device).  A serving backend is another ``forward``
    (:class:`clothingrec.serve.ServingClassifier`); preparation and the crop loop stay here.
    """

    model: nn.Module
    classes: tuple[str, ...]
    imgsz: int
    resize_size: int
    meta: dict[str, Any] = field(default_factory=dict)
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        self.classes = tuple(self.classes)
        self.transform = EvalTransform(self.imgsz, self.resize_size)

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.forward is not None:
            return self.forward(x).float()
        device = next(self.model.parameters()).device
        return self.model(x.to(device).contiguous(memory_format=torch.channels_last)).float()

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).softmax(dim=1).cpu()

    def classify(self, image: np.ndarray) -> Classification:
        """The class of a whole RGB uint8 image (the crop that is the whole image)."""
        h, w = image.shape[:2]
        return self.classify_crops(image, [[0, 0, w, h]])[0]

    def classify_crops(self, image: np.ndarray, boxes_xyxy) -> list[Classification]:
        """The class of each ``(x1, y1, x2, y2)`` crop of an RGB uint8 image (rounded outwards, clipped)."""
        from PIL import Image

        boxes = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
        if len(boxes) == 0:
            return []
        h, w = image.shape[:2]
        crops = []
        for x1, y1, x2, y2 in boxes:
            x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(np.clip(np.floor(y1), 0, h - 1))
            x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(np.clip(np.ceil(y2), y1 + 1, h))
            crops.append(self.transform(Image.fromarray(np.ascontiguousarray(image[y1:y2, x1:x2]))))
        return [Classification(self.classes[int(p.argmax())], float(p.max()), tuple(p.tolist()))
                for p in self.probs(torch.stack(crops))]

    def predict(self, images, batch_size: int = 32) -> Predictions:
        """Classify ``images``: a list of paths / PIL images, or a ``[N, 3, H, W]`` normalised tensor."""
        if torch.is_tensor(images):
            batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
        else:
            items = list(images)
            batches = (torch.stack([self.transform(s) for s in items[i:i + batch_size]])
                       for i in range(0, len(items), batch_size))
        probs = [self.probs(x) for x in batches]
        probs = torch.cat(probs) if probs else torch.zeros((0, len(self.classes)))
        indices = probs.argmax(dim=1)
        return Predictions(indices, probs, [self.classes[i] for i in indices.tolist()])


def predict(classifier, images, batch_size: int = 32) -> Predictions:
    """``classifier.predict(images, batch_size)`` (an :class:`ImageClassifier` or a serving one)."""
    return classifier.predict(images, batch_size=batch_size)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> ImageClassifier:
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
        meta = {"arch": arch, "config": cfg, "epoch": data.get("epoch"), "source": "lightning checkpoint"}
    else:
        raise ValueError(f"{path}: not a clothingrec classifier export nor a Lightning checkpoint of one")
    objective = (meta.get("extra") or {}).get("objective") or (meta.get("config") or {}).get("objective")
    if objective == "simclr":
        raise ValueError(f"{path}: self-supervised (SimCLR) weights have a projection head, not a classifier; "
                         "use them as init_weights of a supervised run")
    model = build_classifier(arch, len(classes), pretrained=None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit {arch} (missing {missing[:5]}, unexpected {unexpected[:5]})")
    model.eval().to(resolve_device(device))
    return ImageClassifier(model, classes, int(imgsz), int(resize_size), meta)


def split_tensor(loaded: ImageClassifier, split: str = "validation", max_images: int | None = None,
                 per_class: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Normalised eval inputs of a clothing-dataset-small split (decoded once, cached by the image store)."""
    from clothingrec.classify.augment import eval_batch
    from clothingrec.classify.store import build_store
    from clothingrec.datasets.clothing_small import read_split

    index = read_split(split, classes=tuple(loaded.classes))
    if per_class:
        index = index.subset(per_class, seed=seed)
    if max_images is not None and len(index.records) > max_images:  # evenly spaced: every class represented
        step = len(index.records) / max_images
        index.records = [index.records[int(i * step)] for i in range(max_images)]
    size = loaded.resize_size or loaded.imgsz
    store = build_store(index, size)
    x = eval_batch(store.images, loaded.imgsz, channels_last=False)
    return x, store.labels, store.paths
