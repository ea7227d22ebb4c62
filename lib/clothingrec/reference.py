"""Published reference figures, each labelled with where it comes from and how it was obtained.

They are shown beside the project's own results as *reference rows*: other training conditions
(ImageNet/COCO-pretrained, GPU, other data or task), never mixed into the measured rows.  Only
figures stated by their source are recorded here; compute figures (MACs, FLOPs, parameters,
latency) for these architectures are computed by this project's analysis and labelled as such,
except the published models' own compute (``published_compute``: the 1000-class ImageNet heads the
published classifiers were measured with), which is the published figure, not the project's 10-class
head. Accuracy-type metrics are fractions in [0, 1] like the project's ``metrics.json`` files.

Every row names its data (``dataset``/``split``), its weights and hardware (``conditions``) and its
source; the DeepFashion2 rows are another dataset than the project's CCP runs and are never mixed
with them (the comparison keys rows by dataset).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Reference:
    name: str             # row label
    kind: str             # "classifier" | "detector"
    model: str            # architecture: the join key with analysis.json
    dataset: str
    split: str
    metrics: dict         # accuracy / macro_f1 (classifier); bbox_AP ... (detector); fractions
    conditions: str       # how it was trained
    source: str           # where the figure is published
    caveat: str = ""      # why it is not directly comparable
    extra: dict = field(default_factory=dict)
    #: compute of the published model as published: ``{"macs": ..., "params": ..., "imgsz": ..., "num_classes": ...}``
    published_compute: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


YOLOX_CLOTHING = "SamirGouda/YOLOX-Clothing_Classifier (GitHub), published verdict table"
CLOTHING_RECOGNITION = "cosminbvb/Clothing-Recognition (GitHub), published DeepFashion2 results"
DF2_CAVEAT = ("other dataset (DeepFashion2, 13 categories, its validation set), COCO-pretrained and trained on "
              "a GPU; the project's detectors are scored on CCP")
TORCHVISION_TUTORIAL = ("torchvision tutorial 'TorchVision Object Detection Finetuning Tutorial' "
                        "(pytorch.org/tutorials/intermediate/torchvision_tutorial.html)")

REFERENCES: tuple[Reference, ...] = (
    Reference(
        name="published mobilenet_v3_small", kind="classifier", model="mobilenet_v3_small",
        dataset="clothing-dataset-small", split="test",
        metrics={"accuracy": 0.8522, "macro_f1": 0.8206},
        conditions="ImageNet-pretrained, fine-tuned 40 epochs on a GPU",
        source=YOLOX_CLOTHING,
        caveat="pretrained on ImageNet and trained on a GPU; the project trains from scratch on CPU",
        published_compute={"macs": 62.5e6, "params": 2.54e6, "imgsz": 224, "num_classes": 1000},
    ),
    Reference(
        name="published resnet50", kind="classifier", model="resnet50",
        dataset="clothing-dataset-small", split="test",
        metrics={"accuracy": 0.8844, "macro_f1": 0.8573},
        conditions="ImageNet-pretrained, fine-tuned 40 epochs on a GPU",
        source=YOLOX_CLOTHING,
        caveat="pretrained on ImageNet and trained on a GPU; the project trains from scratch on CPU",
        published_compute={"macs": 4.13e9, "params": 25.6e6, "imgsz": 224, "num_classes": 1000},
    ),
    Reference(
        name="torchvision tutorial Mask R-CNN (Penn-Fudan)", kind="detector", model="maskrcnn_resnet50_fpn",
        dataset="PennFudanPed", split="test (50 images)",
        metrics={"bbox_AP": 0.799},
        conditions="COCO-pretrained Mask R-CNN R50-FPN fine-tuned 10 epochs",
        source=TORCHVISION_TUTORIAL,
        caveat="other task (person detection on Penn-Fudan, 2 classes), COCO-pretrained",
        extra={"num_classes": 2},
    ),
    Reference(
        name="published Mask R-CNN R101-FPN (DeepFashion2)", kind="detector", model="maskrcnn_resnet101_fpn",
        dataset="DeepFashion2", split="validation",
        metrics={"bbox_AP": 0.602, "bbox_AP50": 0.746, "bbox_AP75": 0.700, "segm_AP": 0.578, "segm_AP50": 0.740},
        conditions="detectron2 Mask R-CNN R101-FPN, COCO-pretrained model-zoo weights, fine-tuned on "
                   "DeepFashion2 train on a GPU; COCO AP (pycocotools)",
        source=CLOTHING_RECOGNITION, caveat=DF2_CAVEAT,
        extra={"backend": "detectron2", "weights": "COCO (detectron2 model zoo)", "hardware": "GPU"},
    ),
    Reference(
        name="published Faster R-CNN R50-FPN (DeepFashion2)", kind="detector", model="fasterrcnn_resnet50_fpn",
        dataset="DeepFashion2", split="validation",
        metrics={"bbox_AP50": 0.70},
        conditions="Faster R-CNN R50-FPN, COCO-pretrained, fine-tuned on DeepFashion2 train on a GPU; "
                   "COCO AP50 (pycocotools)",
        source=CLOTHING_RECOGNITION, caveat=DF2_CAVEAT,
        extra={"weights": "COCO", "hardware": "GPU"},
    ),
    Reference(
        name="published YOLOv5x (DeepFashion2)", kind="detector", model="yolov5x",
        dataset="DeepFashion2", split="validation",
        metrics={"ultralytics_mAP50": 0.843, "ultralytics_mAP50_95": 0.738},
        conditions="YOLOv5x (ultralytics/yolov5, anchor-based), COCO-pretrained yolov5x.pt, fine-tuned on "
                   "DeepFashion2 train on a GPU; mAP from ultralytics' own validator",
        source=CLOTHING_RECOGNITION,
        caveat=DF2_CAVEAT + "; ultralytics' validator mAP, not pycocotools COCO AP (not comparable to bbox AP "
                            "columns); the ultralytics package builds it only as the anchor-free yolov5xu",
        extra={"backend": "ultralytics/yolov5", "weights": "COCO (yolov5x.pt)", "hardware": "GPU",
               "metric_source": "ultralytics validator"},
    ),
)


def references(kind: str | None = None) -> list[Reference]:
    """All reference rows, or those of one kind."""
    return [r for r in REFERENCES if kind is None or r.kind == kind]
