"""COCO instances JSON from dataset records, and reading it back for overlays.

Annotations carry ``bbox`` as ``[x, y, w, h]`` (continuous pixel coordinates), ``segmentation`` as
polygons (DeepFashion2's own, or traced from masks for CCP / Penn-Fudan), ``area`` from the mask
(rasterised polygons for DeepFashion2, pixel count for mask datasets; never the box) and
``iscrowd = 0``.  DeepFashion2 annotations also get the 294-slot ``keypoints`` / ``num_keypoints``
layout and every per-item attribute (style, scale, occlusion, zoom_in, viewpoint, source, pair_id).
Output is deterministic: same records → byte-identical JSON.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from clothingrec.datasets import ccp
from clothingrec.datasets import deepfashion2 as df2
from clothingrec.datasets.records import ImageRecord

PERSON_CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"}]


def df2_categories() -> list[dict]:
    """The 13 DeepFashion2 categories with the 294 landmark names (``"1"`` … ``"294"``), as in the release."""
    names = [str(i + 1) for i in range(df2.NUM_LANDMARKS)]
    return [{"id": i + 1, "name": name, "supercategory": "clothes", "keypoints": names, "skeleton": []}
            for i, name in enumerate(df2.CATEGORIES)]


def ccp_categories() -> list[dict]:
    """CCP garment groups (see :mod:`clothingrec.datasets.ccp`), with the DF2 ids each stands for."""
    return [{"id": i + 1, "name": name, "supercategory": "clothes", "ccp_labels": list(labels),
             "df2_category_ids": list(df2_ids)}
            for i, (name, (labels, df2_ids)) in enumerate(ccp.GARMENT_GROUPS.items())]


def categories(kind: str, classes: str) -> list[dict]:
    if classes == "person":
        return [dict(c) for c in PERSON_CATEGORIES]
    if kind == "deepfashion2":
        return df2_categories()
    if kind == "ccp":
        return ccp_categories()
    raise ValueError(f"{kind} has no garment classes; use classes='person'")


def image_entry(record: ImageRecord, image_id: int) -> dict:
    entry = {"id": image_id, "file_name": record.path.name, "width": record.width, "height": record.height}
    for key in ("source", "pair_id"):
        if key in record.attributes:
            entry[key] = record.attributes[key]
    return entry


def record_annotations(record: ImageRecord, keypoints: bool = False) -> list[dict]:
    """COCO annotation dicts (without ``id`` / ``image_id``) for the objects of one record."""
    out = []
    for obj in record.objects:
        x1, y1, x2, y2 = obj.bbox
        ann = {
            "category_id": obj.category_id,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": float(obj.area) if obj.area is not None else _polygon_mask_area(obj.polygons, record),
            "iscrowd": 0,
            "segmentation": obj.polygons,
        }
        if keypoints:
            kps, num = df2.global_keypoints(obj.category_id, obj.landmarks)
            ann["keypoints"] = kps
            ann["num_keypoints"] = num
            for key in (*df2.ITEM_ATTRIBUTES, "source", "pair_id"):
                ann[key] = obj.attributes.get(key)
        out.append(ann)
    return out


def _polygon_mask_area(polygons, record: ImageRecord) -> float:
    from pycocotools import mask as mask_utils

    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, record.height, record.width))
    return float(mask_utils.area(rle))


def build(images: list[dict], annotations: list[list[dict]], categories_: list[dict],
          description: str = "") -> dict:
    """Assemble a COCO dict; annotation ids run 1.. in image order (deterministic)."""
    anns = []
    next_id = 1
    for image, image_anns in zip(images, annotations):
        for ann in image_anns:
            anns.append({"id": next_id, "image_id": image["id"], **ann})
            next_id += 1
    return {
        "info": {"description": description, "version": "1.0", "contributor": "clothingrec"},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": categories_,
    }


def dump(coco: dict, path: str | Path) -> Path:
    """Write JSON deterministically (fixed key order as built, compact separators, newline at end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(coco, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n",
                   encoding="utf-8")
    tmp.replace(path)
    return path


def load_annotations(coco_json: str | Path | dict, image: int | str):
    """Boxes (x1, y1, x2, y2), 0-based labels, masks (N×H×W bool) and the image entry of one image.

    ``image`` is an image id or a file name.  Masks are rendered from the COCO segmentation with
    pycocotools, so drawing them is a check of the conversion.
    """
    from pycocotools import mask as mask_utils

    coco = coco_json if isinstance(coco_json, dict) else json.loads(Path(coco_json).read_text(encoding="utf-8"))
    entry = next((im for im in coco["images"] if im["id"] == image or im["file_name"] == image), None)
    if entry is None:
        raise KeyError(f"image {image!r} not in the COCO file")
    h, w = entry["height"], entry["width"]
    anns = [a for a in coco["annotations"] if a["image_id"] == entry["id"]]
    boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                      for a in anns], dtype=np.float64).reshape(-1, 4)
    labels = np.array([a["category_id"] - 1 for a in anns], dtype=np.int64)
    masks = np.zeros((len(anns), h, w), dtype=bool)
    for k, a in enumerate(anns):
        seg = a["segmentation"]
        if isinstance(seg, list) and seg:
            masks[k] = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, h, w))).astype(bool)
        elif isinstance(seg, dict):
            masks[k] = mask_utils.decode(seg).astype(bool)
    return boxes, labels, masks, entry


def polygon_mask(polygon, height: int, width: int) -> np.ndarray:
    """Rasterise one polygon (N×2 array or flat list) with pycocotools: H×W bool."""
    from pycocotools import mask as mask_utils

    flat = np.asarray(polygon, dtype=np.float64).reshape(-1).tolist()
    if len(flat) < 6:
        return np.zeros((height, width), dtype=bool)
    return mask_utils.decode(mask_utils.frPyObjects([flat], height, width))[..., 0].astype(bool)


def box_iou(a, b) -> float:
    """IoU of two (x1, y1, x2, y2) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@functools.cache
def _zero_slots_text(n: int) -> str:
    return ",".join(["0.0"] * n)


def _keypoints_text(kps: df2.Keypoints) -> str:
    """``_dumps(list(kps))``, with the zero slots around the landmarks taken from a cache."""
    parts = [_zero_slots_text(kps.start), _dumps(kps[kps.start:kps.stop])[1:-1],
             _zero_slots_text(len(kps) - kps.stop)]
    return "[" + ",".join(p for p in parts if p) + "]"


def annotation_text(ann: dict) -> str:
    """One annotation (without ``id`` / ``image_id``) as compact JSON, ready for :class:`CocoWriter`.

    Same text as ``_dumps(ann)``; DeepFashion2's 294-slot keypoints (mostly zeros) are encoded from
    a cache of zero runs, the costliest part of the annotation otherwise."""
    kps = ann.get("keypoints")
    if not isinstance(kps, df2.Keypoints):
        return _dumps(ann)
    # the key sits where it was (dict order); no string value can hold an unescaped '"keypoints":'
    text = _dumps({**ann, "keypoints": 0})
    return text.replace('"keypoints":0', '"keypoints":' + _keypoints_text(kps), 1)


class CocoWriter:
    """Stream a COCO file: annotations go to disk as images arrive, ids assigned in arrival order.

    The result is byte-identical to ``dump(build(images, annotations, categories, description))``,
    without holding every annotation in memory (the DeepFashion2 train split with its 294-slot
    keypoints is about a gigabyte of JSON).
    """

    def __init__(self, path: str | Path, categories_: list[dict], description: str = ""):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.categories = categories_
        self.description = description
        self.images: list[dict] = []
        self.n_annotations = 0
        self._body = open(self.path.with_suffix(self.path.suffix + ".anns.tmp"), "w", encoding="utf-8")

    def add(self, image: dict, annotation_texts: list[str]) -> None:
        self.images.append(image)
        image_id = image["id"]
        parts = []
        for text in annotation_texts:
            self.n_annotations += 1
            parts.append(f'{{"id":{self.n_annotations},"image_id":{image_id},{text[1:]}')
        if parts:
            self._body.write(("," if self.n_annotations > len(parts) else "") + ",".join(parts))

    def close(self) -> Path:
        import shutil

        self._body.close()
        info = {"description": self.description, "version": "1.0", "contributor": "clothingrec"}
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write('{"info":' + _dumps(info) + ',"licenses":[],"images":[')
            f.write(",".join(_dumps(im) for im in self.images))
            f.write('],"annotations":[')
            with open(self._body.name, encoding="utf-8") as body:
                shutil.copyfileobj(body, f, 1 << 20)
            f.write('],"categories":' + _dumps(self.categories) + "}\n")
        os.remove(self._body.name)
        tmp.replace(self.path)
        return self.path
