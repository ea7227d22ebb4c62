"""Detectors behind one surface: torchvision Faster / Mask R-CNN, ultralytics YOLO, optional detectron2.

- :func:`build_detector` (family, backbone, num_classes, pretrained, min_size, max_size)
- :func:`train` / :func:`train_one_epoch` / :func:`evaluate` — the explicit torchvision loop
- :func:`train_yolo`, :func:`native_val`, :class:`YoloPredictor` — ultralytics
- :func:`load_detector` — a run folder or checkpoint → a predictor with
  ``predict(RGB HxWx3) -> Detections`` (boxes_xyxy, labels = COCO ids, scores, masks)

Every predictor is scored by the same :mod:`clothingrec.evaluate`.
"""
from clothingrec.detect.data import CocoDetection, collate, hflip
from clothingrec.detect.engine import (
    LIGHT_HEADS,
    TrainConfig,
    TrainResult,
    evaluate,
    lr_lambda_factory,
    predict_results,
    train,
    train_one_epoch,
)
from clothingrec.detect.models import BACKBONES, COCO_DETECTORS, FAMILIES, build_detector, count_parameters
from clothingrec.detect.predictor import TorchvisionPredictor, load_detector
from clothingrec.detect.types import Detections, Predictor
from clothingrec.detect.yolo import YoloPredictor, native_val, train_yolo, yolo_device, yolo_history

__all__ = [
    "CocoDetection", "collate", "hflip", "LIGHT_HEADS", "TrainConfig", "TrainResult", "evaluate", "lr_lambda_factory",
    "predict_results", "train", "train_one_epoch", "BACKBONES", "COCO_DETECTORS", "FAMILIES",
    "build_detector", "count_parameters", "TorchvisionPredictor", "load_detector", "Detections",
    "Predictor", "YoloPredictor", "native_val", "train_yolo", "yolo_device", "yolo_history",
]
