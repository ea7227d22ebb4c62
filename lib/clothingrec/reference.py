"""Published reference figures, each labelled with where it comes from and how it was obtained.

They are shown beside the project's own results as *reference rows*: other training conditions
(ImageNet/COCO-pretrained, GPU, other data or task), never mixed into the measured rows.  Only
figures stated by their source are recorded here; compute figures (MACs, FLOPs, parameters,
latency) for these architectures are computed by this project's analysis and labelled as such.
Accuracy-type metrics are fractions in [0, 1] like the project's ``metrics.json`` files.
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

    def as_dict(self) -> dict:
        return asdict(self)


YOLOX_CLOTHING = "SamirGouda/YOLOX-Clothing_Classifier (GitHub), published verdict table"
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
    ),
    Reference(
        name="published resnet50", kind="classifier", model="resnet50",
        dataset="clothing-dataset-small", split="test",
        metrics={"accuracy": 0.8844, "macro_f1": 0.8573},
        conditions="ImageNet-pretrained, fine-tuned 40 epochs on a GPU",
        source=YOLOX_CLOTHING,
        caveat="pretrained on ImageNet and trained on a GPU; the project trains from scratch on CPU",
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
)


def references(kind: str | None = None) -> list[Reference]:
    """All reference rows, or those of one kind."""
    return [r for r in REFERENCES if kind is None or r.kind == kind]
