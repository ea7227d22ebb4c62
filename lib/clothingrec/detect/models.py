"""torchvision detector builders: Faster R-CNN and Mask R-CNN over a choice of FPN backbones.

``build_detector("fasterrcnn", "mobilenet_v3_large_fpn", num_classes=14)`` trains from scratch
(the default here: no weights can be downloaded).  ``pretrained="DEFAULT"`` loads torchvision's COCO
detector weights (then swaps the heads for ``num_classes``), ``pretrained_backbone="DEFAULT"`` only
ImageNet backbone weights; both go through :func:`clothingrec.weights.torchvision_weights`, which
fails fast offline and names the file to place in the torch cache.  ``pretrained_backbone`` may also be a
classifier trained here (the classifier recipe's exported ``<model>.pt`` of the backbone's architecture):
its feature layers start the backbone, which then trains whole, BatchNorm included, as from scratch.

``num_classes`` counts the background: K categories → ``num_classes = K + 1``.
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

from torch import nn

from clothingrec.weights import torchvision_weights

FAMILIES = ("fasterrcnn", "maskrcnn")

#: backbone name → (torchvision classification model, ImageNet weights enum, kind)
BACKBONES = {
    "resnet18_fpn": ("resnet18", "ResNet18_Weights", "resnet"),
    "resnet34_fpn": ("resnet34", "ResNet34_Weights", "resnet"),
    "resnet50_fpn": ("resnet50", "ResNet50_Weights", "resnet"),
    "resnet101_fpn": ("resnet101", "ResNet101_Weights", "resnet"),
    "mobilenet_v3_large_fpn": ("mobilenet_v3_large", "MobileNet_V3_Large_Weights", "mobilenet"),
}

#: (family, backbone) → (torchvision builder, COCO detector weights enum) where torchvision has one
COCO_DETECTORS = {
    ("fasterrcnn", "resnet50_fpn"): ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights"),
    ("fasterrcnn", "mobilenet_v3_large_fpn"): ("fasterrcnn_mobilenet_v3_large_fpn",
                                               "FasterRCNN_MobileNet_V3_Large_FPN_Weights"),
    ("maskrcnn", "resnet50_fpn"): ("maskrcnn_resnet50_fpn", "MaskRCNN_ResNet50_FPN_Weights"),
}


def _weights_name(value, enum_name: str):
    """True/"DEFAULT" → "<Enum>.DEFAULT"; a member name such as "IMAGENET1K_V2" → "<Enum>.IMAGENET1K_V2"."""
    if value in (None, False, "", "none", "None"):
        return None
    if value is True:
        value = "DEFAULT"
    if isinstance(value, str) and "." not in value:
        value = f"{enum_name}.{value}"
    return value


def _swap_heads(model: nn.Module, num_classes: int) -> None:
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    in_features = model.roi_heads.box_predictor.cls_score.in_features
    model.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes)
    if getattr(model.roi_heads, "mask_predictor", None) is not None:
        in_channels = model.roi_heads.mask_predictor.conv5_mask.in_channels
        model.roi_heads.mask_predictor = MaskRCNNPredictor(in_channels, 256, num_classes)


def set_score_threshold(model: nn.Module, threshold: float) -> None:
    """Make ``threshold`` the R-CNN's own box-score threshold (torchvision's ``box_score_thresh``).

    torchvision drops boxes under 0.05 before its per-class NMS; a predictor keeping scores down to
    ``EXPORT_SCORE_THRESHOLD`` (as ultralytics' ``conf`` and detectron2's ``SCORE_THRESH_TEST`` do for
    the other backends) must lower it, or every R-CNN is scored on fewer detections than YOLO."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"score threshold must be in [0, 1], got {threshold!r}")
    model.roi_heads.score_thresh = float(threshold)


def build_detector(family: str, backbone: str, num_classes: int, pretrained=None, *,
                   pretrained_backbone=None, min_size: int = 800, max_size: int = 1333,
                   trainable_backbone_layers: int | None = None, **kwargs) -> nn.Module:
    """A torchvision ``FasterRCNN`` / ``MaskRCNN`` (train mode, on CPU).

    ``kwargs`` go to the torchvision model (e.g. ``box_detections_per_img``, ``box_score_thresh``).
    """
    import torchvision.models.detection as tvd
    from torchvision.models.detection.backbone_utils import mobilenet_backbone, resnet_fpn_backbone
    from torchvision.ops import misc as misc_ops

    if family not in FAMILIES:
        raise ValueError(f"unknown detector family {family!r}; choose one of {FAMILIES}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    if num_classes < 2:
        raise ValueError(f"num_classes counts the background and must be ≥ 2, got {num_classes}")
    kwargs = {"min_size": min_size, "max_size": max_size, **kwargs}

    if pretrained not in (None, False, "", "none", "None"):
        if (family, backbone) not in COCO_DETECTORS:
            raise ValueError(
                f"torchvision has no COCO-pretrained {family} with backbone {backbone}; available: "
                f"{sorted(COCO_DETECTORS)}. Use pretrained_backbone= for ImageNet backbone weights."
            )
        builder, enum_name = COCO_DETECTORS[(family, backbone)]
        weights = torchvision_weights(_weights_name(pretrained, enum_name))
        model = getattr(tvd, builder)(weights=weights, weights_backbone=None,
                                      trainable_backbone_layers=trainable_backbone_layers, **kwargs)
        _swap_heads(model, num_classes)
        return model

    arch, enum_name, kind = BACKBONES[backbone]
    own = own_backbone_file(pretrained_backbone)
    weights_backbone = None if own else torchvision_weights(_weights_name(pretrained_backbone, enum_name))
    is_trained = weights_backbone is not None
    # from scratch every layer trains and BatchNorm learns; with ImageNet weights BN is frozen
    norm_layer = misc_ops.FrozenBatchNorm2d if is_trained else nn.BatchNorm2d
    if kind == "resnet":
        layers = trainable_backbone_layers if trainable_backbone_layers is not None else (3 if is_trained else 5)
        body = resnet_fpn_backbone(backbone_name=arch, weights=weights_backbone, norm_layer=norm_layer,
                                   trainable_layers=layers)
        anchor = None
    else:
        layers = trainable_backbone_layers if trainable_backbone_layers is not None else (3 if is_trained else 6)
        body = mobilenet_backbone(backbone_name=arch, weights=weights_backbone, fpn=True,
                                  trainable_layers=layers, norm_layer=norm_layer)
        from torchvision.models.detection.anchor_utils import AnchorGenerator

        sizes = ((32, 64, 128, 256, 512),) * 3
        anchor = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    if own:
        load_classifier_features(body.body, own, arch)
    cls = tvd.MaskRCNN if family == "maskrcnn" else tvd.FasterRCNN
    if anchor is not None:
        kwargs.setdefault("rpn_anchor_generator", anchor)
    return cls(body, num_classes=num_classes, **kwargs)


def names_a_path(value) -> bool:
    """Whether a weights setting is a path (a file or folder of this project's) rather than a torchvision
    weights name (``DEFAULT``, ``IMAGENET1K_V1``, ``MobileNet_V3_Large_Weights.IMAGENET1K_V1``)."""
    if value in (None, False, True, "", "none", "None"):
        return False
    text = str(value)
    return isinstance(value, PathLike) or "/" in text or "\\" in text or text.endswith((".pt", ".pth"))


def own_backbone_file(value) -> Path | None:
    """``pretrained_backbone`` as a weights file of this project's (a path), or None for torchvision's names."""
    if not names_a_path(value):
        return None
    text = str(value)
    if not Path(text).is_file():
        raise FileNotFoundError(f"pretrained_backbone: {text} is not a weights file")
    return Path(text)


def load_classifier_features(body: nn.Module, path, arch: str) -> int:
    """Load the feature layers of a classifier exported by the classifier recipe into a detector's backbone
    body (the layers it keeps of ``arch``); the classifier's head is left out.  Returns the tensors loaded."""
    import torch

    from clothingrec.classify.inference import EXPORT_FORMAT

    data = torch.load(path, map_location="cpu", weights_only=False)
    if not (isinstance(data, dict) and data.get("format") == EXPORT_FORMAT):
        raise ValueError(f"pretrained_backbone: {path} is not a classifier exported by the classifier recipe")
    if data.get("arch") != arch:
        raise ValueError(f"pretrained_backbone: {path} holds a {data.get('arch')}, this backbone is a {arch}")
    prefix = "features." if arch.startswith("mobilenet") else ""  # resnets: the body keeps the top-level names
    ours = body.state_dict()
    state = {k[len(prefix):]: v for k, v in data["state_dict"].items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if k in ours}
    missing = sorted(set(ours) - set(state))
    if missing:
        raise ValueError(f"pretrained_backbone: {path} lacks {len(missing)} of the backbone's tensors, "
                         f"e.g. {missing[:3]}")
    body.load_state_dict(state)
    return len(state)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def builder_spec(family, backbone, num_classes, min_size, max_size, **kwargs) -> dict:
    """What :func:`build_detector` needs to rebuild a model from a checkpoint (no pretrained download)."""
    return {"family": family, "backbone": backbone, "num_classes": int(num_classes),
            "min_size": int(min_size), "max_size": int(max_size), **kwargs}


def rebuild(spec: dict) -> nn.Module:
    spec = dict(spec)
    return build_detector(spec.pop("family"), spec.pop("backbone"), spec.pop("num_classes"), None, **spec)


__all__ = ["FAMILIES", "BACKBONES", "COCO_DETECTORS", "build_detector", "own_backbone_file",
           "load_classifier_features", "count_parameters",
           "builder_spec", "rebuild"]
