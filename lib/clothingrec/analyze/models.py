"""The models the project trains, described for analysis: how to build them, feed them and cut them.

A :class:`ModelSpec` is a name (the join key with ``metrics.json`` ``model`` fields), a family and an
input size.  :func:`build_model` uses the project's own builders when they are importable
(``clothingrec.classify.build_classifier``, ``clothingrec.detect.models.build_detector``) and the
torchvision / ultralytics constructors otherwise, always with the *project's* heads (10 clothing
classes; 13 DeepFashion2 categories + background for R-CNNs; 1 person + background for the person
detector) — never the 1000-class ImageNet head or the 91-class COCO head.

For each family :func:`workloads` says exactly what is counted:

* classifiers, YOLO: the whole network on one ``1×3×S×S`` input (YOLO: ``model.model``, the
  ``DetectionModel`` including the Detect head's box decoding, without NMS);
* Faster / Mask R-CNN: the image is resized by the model's own transform to ``S×S``; then the
  backbone + FPN on that tensor, the RPN head on every FPN level, the box head + predictor on a
  *fixed* number of proposals (``rpn.post_nms_top_n`` at test time, 1000) and, for Mask R-CNN, the
  mask head + predictor on ``roi_heads.detections_per_img`` (100) detections: the test-time upper
  bound.  Not counted: image normalisation/resizing, anchor generation, box decoding, NMS and
  RoIAlign's bilinear sampling (no multiply-accumulate-heavy work; torchscan lists them as
  uncounted operators when the full model is run).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import torch
from torch import nn

from clothingrec.analyze.flops import Workload
from clothingrec.structures import IMAGENET_MEAN, IMAGENET_STD

CLASSIFIERS = ("mobilenet_v3_small", "resnet50")
RCNN_FAMILIES = ("fasterrcnn", "maskrcnn")
#: DeepFashion2 has 13 categories (+1 background for torchvision detectors)
DF2_CLASSES = 13


@dataclass
class ModelSpec:
    name: str                   # join key: "mobilenet_v3_small", "fasterrcnn_resnet50_fpn", "yolov8n", ...
    family: str                 # "classifier" | "yolo" | "fasterrcnn" | "maskrcnn"
    input_size: int             # S: images are S×S
    num_classes: int            # classes of the trained head (R-CNN: including background)
    backbone: str | None = None  # R-CNN backbone key of clothingrec.detect.models.BACKBONES
    config: str | None = None   # YOLO model yaml
    label: str | None = None    # display name and analysis.json key (defaults to name)
    dataset: str = ""           # what the trained model is for: joins records to metrics with the same arch
    extra: dict = field(default_factory=dict)   # builder keyword arguments (e.g. max_size, rpn settings)

    @property
    def kind(self) -> str:
        return "classifier" if self.family == "classifier" else "detector"

    @property
    def display(self) -> str:
        return self.label or self.name

    @property
    def key(self) -> str:
        return self.display


def parse_spec(text: str, input_size: int | None = None, num_classes: int | None = None,
               label: str | None = None, dataset: str | None = None) -> ModelSpec:
    """``"mobilenet_v3_small"``, ``"resnet50"``, ``"yolov8n"`` / ``"yolov8n.yaml"``, ``"yolov8n-seg"``,
    ``"fasterrcnn_resnet50_fpn"``, ``"maskrcnn_mobilenet_v3_large_fpn"`` → a :class:`ModelSpec`.

    ``"name@512"`` sets the input size; a ``"person:"`` prefix makes it the 1-class person detector
    (2 outputs with the background) labelled ``"person <name>"``.
    """
    name = text.strip()
    extra = {}
    if name.endswith("+light"):   # the project's CPU setting: fewer RPN proposals (clothingrec.detect LIGHT_HEADS)
        name = name[: -len("+light")]
        extra = light_heads()
        label = label or f"{name.split('@')[0].removeprefix('person:')} (light heads)"
    if name.startswith("person:"):
        name = name[len("person:"):]
        num_classes = num_classes or 2
        label = label or f"person {name.split('@')[0]}"
        dataset = dataset or "person"
    if "@" in name:
        name, size = name.split("@", 1)
        input_size = int(size)
    if input_size is None:
        raise ValueError(f"{text!r}: no input size (use 'name@size' or input_size=)")
    if name.endswith((".yaml", ".yml", ".pt")):
        name = name.rsplit(".", 1)[0]
    if name in CLASSIFIERS or name.startswith(("resnet", "mobilenet", "efficientnet", "convnext")):
        return ModelSpec(name, "classifier", input_size, num_classes or 10, label=label,
                         dataset=dataset or "clothing-dataset-small")
    if name.startswith(("yolo", "rtdetr")):
        return ModelSpec(name, "yolo", input_size, num_classes or DF2_CLASSES, config=f"{name}.yaml", label=label,
                         dataset=dataset or "deepfashion2")
    for family in RCNN_FAMILIES:
        if name.startswith(family + "_"):
            backbone = name[len(family) + 1:]
            if label and label.endswith("(light heads)") and dataset == "person" and not label.startswith("person "):
                label = "person " + label
            return ModelSpec(name, family, input_size, num_classes or DF2_CLASSES + 1, backbone=backbone,
                             label=label, dataset=dataset or "deepfashion2", extra=extra)
    raise ValueError(f"unknown model {text!r}: expected a classifier ({', '.join(CLASSIFIERS)}), a YOLO "
                     "config (yolov8n) or <fasterrcnn|maskrcnn>_<backbone> (fasterrcnn_resnet50_fpn)")


def light_heads() -> dict:
    """The test-time part of the project's ``LIGHT_HEADS`` (fewer RPN proposals) used by its CPU runs."""
    heads = _optional("clothingrec.detect.engine", "LIGHT_HEADS") or {
        "rpn_pre_nms_top_n_test": 500, "rpn_post_nms_top_n_test": 300}
    return {k: v for k, v in heads.items() if k.endswith("_test")}


def _optional(module: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


def build_model(spec: ModelSpec) -> nn.Module:
    """Randomly initialised model with the project's head (architecture analysis needs no weights)."""
    torch.manual_seed(0)
    if spec.family == "classifier":
        builder = _optional("clothingrec.classify", "build_classifier")
        if builder is not None:
            model = builder(spec.name, num_classes=spec.num_classes, pretrained=None)
            return _unwrap(model)
        import torchvision

        return getattr(torchvision.models, spec.name)(weights=None, num_classes=spec.num_classes)
    if spec.family == "yolo":
        from ultralytics.nn.tasks import DetectionModel, SegmentationModel

        cls = SegmentationModel if "-seg" in spec.name else DetectionModel
        return cls(spec.config, nc=spec.num_classes, verbose=False)
    if spec.family in RCNN_FAMILIES:
        builder = _optional("clothingrec.detect.models", "build_detector")
        kwargs = {"min_size": spec.input_size, "max_size": spec.input_size, **spec.extra}
        if builder is not None:
            return builder(spec.family, spec.backbone, spec.num_classes, None, **kwargs)
        import torchvision.models.detection as tvd

        return getattr(tvd, spec.name)(weights=None, weights_backbone=None, num_classes=spec.num_classes,
                                       **kwargs)
    raise ValueError(f"unknown family {spec.family!r}")


def _unwrap(model: nn.Module) -> nn.Module:
    """A LightningModule wrapping the network → the network itself (what runs at inference)."""
    for attr in ("model", "net", "network", "backbone"):
        inner = getattr(model, attr, None)
        if isinstance(inner, nn.Module) and hasattr(model, "training_step"):
            return inner
    return model


# ---------------------------------------------------------------------------------------------
# inputs, calls, workloads, feature maps


def example_batch(spec: ModelSpec, batch: int = 1, seed: int = 0, device="cpu") -> torch.Tensor:
    """Seeded uniform images ``batch×3×S×S`` in [0, 1] (classifiers: ImageNet-normalised)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 3, spec.input_size, spec.input_size, generator=g)
    if spec.family == "classifier":
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x.to(device)


def call_model(spec: ModelSpec, model: nn.Module, x: torch.Tensor):
    """Run the model as it runs at inference: R-CNNs take a list of 3×H×W images."""
    if spec.family in RCNN_FAMILIES:
        return model(list(x))
    return model(x)


def rcnn_transformed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The batched tensor the R-CNN backbone sees (normalised, resized, padded to a multiple of 32)."""
    with torch.no_grad():
        images, _ = model.transform(list(x))
    return images.tensors


class _Seq(nn.Module):
    """Chain two heads under their real attribute names so per-module paths match the full model."""

    def __init__(self, names: tuple[str, str], first: nn.Module, second: nn.Module):
        super().__init__()
        self._names = names
        setattr(self, names[0], first)
        setattr(self, names[1], second)

    def forward(self, x):
        y = getattr(self, self._names[0])(x)
        return getattr(self, self._names[1])(y)


class _RPNHead(nn.Module):
    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, *features):
        logits, deltas = self.head(list(features))
        return tuple(logits) + tuple(deltas)


def rcnn_counts(model: nn.Module) -> dict:
    """The fixed test-time sizes used for the heads: proposals per image, detections per image."""
    rpn = model.rpn
    post = rpn._post_nms_top_n.get("testing", 1000) if isinstance(rpn._post_nms_top_n, dict) else 1000
    return {"proposals": int(post), "detections": int(model.roi_heads.detections_per_img)}


def workloads(spec: ModelSpec, model: nn.Module, x: torch.Tensor | None = None) -> list[Workload]:
    """What is counted for ``spec`` (see the module docstring), on a batch-1 input."""
    x = example_batch(spec) if x is None else x
    if spec.family == "classifier":
        return [Workload("network", model, (x,), "", "whole classifier incl. its 10-class head")]
    if spec.family == "yolo":
        return [Workload("network", model, (x,), "", "DetectionModel incl. Detect head decoding, no NMS")]
    if spec.family in RCNN_FAMILIES:
        t = rcnn_transformed(model, x)
        with torch.no_grad():
            feats = model.backbone(t)
        counts = rcnn_counts(model)
        rh = model.roi_heads
        box_in = rh.box_roi_pool.output_size if hasattr(rh.box_roi_pool, "output_size") else (7, 7)
        box_in = (box_in, box_in) if isinstance(box_in, int) else tuple(box_in)
        channels = model.backbone.out_channels
        out = [
            Workload("backbone+fpn", model.backbone, (t,), "backbone", f"on {tuple(t.shape)}"),
            Workload("rpn head", _RPNHead(model.rpn.head), tuple(feats.values()), "rpn",
                     f"{len(feats)} FPN levels"),
            Workload("box head", _Seq(("box_head", "box_predictor"), rh.box_head, rh.box_predictor),
                     (torch.zeros(counts["proposals"], channels, *box_in),), "roi_heads",
                     f"{counts['proposals']} proposals × {channels}×{box_in[0]}×{box_in[1]} RoI features"),
        ]
        if getattr(rh, "mask_head", None) is not None:
            m_in = rh.mask_roi_pool.output_size
            m_in = (m_in, m_in) if isinstance(m_in, int) else tuple(m_in)
            out.append(Workload("mask head", _Seq(("mask_head", "mask_predictor"), rh.mask_head,
                                                  rh.mask_predictor),
                                (torch.zeros(counts["detections"], channels, *m_in),), "roi_heads",
                                f"{counts['detections']} detections × {channels}×{m_in[0]}×{m_in[1]}"))
        return out
    raise ValueError(f"unknown family {spec.family!r}")


def feature_map_fn(spec: ModelSpec, model: nn.Module):
    """``(fn, label)``: ``fn(x)`` → the final feature map (N, C, h, w) used for receptive fields.

    classifier: the last spatial map before global pooling; YOLO: the coarsest input of the Detect
    head (P5); R-CNN: the coarsest regular FPN level (stride 32; 'pool' is a max-pool of it).
    """
    if spec.family == "classifier":
        if hasattr(model, "features"):          # mobilenet / efficientnet / convnext
            return model.features, "features"
        if hasattr(model, "layer4"):            # resnet
            body = nn.Sequential(*[getattr(model, n) for n in
                                   ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")])
            return body, "layer4"
        raise ValueError(f"do not know the final feature map of {type(model).__name__}")
    if spec.family == "yolo":
        head = model.model[-1]
        source = head.f[-1] if isinstance(head.f, (list, tuple)) else head.f

        def fn(x):
            y, saved = x, []
            for m in model.model[:-1]:
                if m.f != -1:
                    y = saved[m.f] if isinstance(m.f, int) else [y if j == -1 else saved[j] for j in m.f]
                y = m(y)
                saved.append(y)
            return saved[source]
        return fn, f"model.{source} (P5, input of Detect)"
    if spec.family in RCNN_FAMILIES:
        levels = [k for k in _fpn_keys(model) if k != "pool"]
        key = levels[-1]
        mean = torch.tensor(model.transform.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(model.transform.image_std).view(1, 3, 1, 1)

        def fn(x):
            return model.backbone((x - mean.to(x.device)) / std.to(x.device))[key]
        return fn, f"backbone FPN level '{key}'"
    raise ValueError(f"unknown family {spec.family!r}")


def _fpn_keys(model: nn.Module) -> list[str]:
    with torch.no_grad():
        was = model.training
        model.eval()
        keys = list(model.backbone(torch.zeros(1, 3, 64, 64)).keys())
        model.train(was)
    return keys


def rf_targets(spec: ModelSpec, model: nn.Module):
    """``(module, example, targets)`` for :func:`~clothingrec.analyze.receptive_field.theoretical_rf`."""
    x = example_batch(spec)
    if spec.family == "classifier":
        fn, label = feature_map_fn(spec, model)
        return model, x, [label]
    if spec.family == "yolo":
        head = model.model[-1]
        idx = head.f if isinstance(head.f, (list, tuple)) else [head.f]
        return model, x, [f"model.{i}" for i in idx]
    if spec.family in RCNN_FAMILIES:
        return model.backbone, rcnn_transformed(model, x), ["fpn"]
    raise ValueError(f"unknown family {spec.family!r}")
