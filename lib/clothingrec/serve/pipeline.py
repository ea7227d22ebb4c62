"""Serving the two-stage pipeline's detectors: one call for the app and the pipeline notebook.

``serve_detectors(person, clothing, images, serving="fastest")`` replaces each eager predictor by the
fastest serving path that agrees with it on ``images`` (:func:`clothingrec.serve.fastest_predictor`).
The person detector is restricted to its family's fp32 backends (:func:`person_backends`): with an
R-CNN's RoI box head in int8,
the two-stage pipeline's final detections no longer matched eager on CCP photos (96 of 124 matched at
IoU ≥ 0.9), because a moved person box moves every crop and every garment found in it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SERVING_MODES = ("eager", "fastest")


def person_backends(predictor) -> tuple[str, ...]:
    """The serving backends a person detector may use: its family's fp32 ones (YOLO's are all fp32)."""
    from clothingrec.serve.detector import RCNN_BACKENDS, YOLO_BACKENDS, is_yolo

    if is_yolo(predictor):
        return tuple(YOLO_BACKENDS)
    return tuple(name for name, parts in RCNN_BACKENDS.items() if set(parts.values()) == {"fp32"})


def check_serving(serving: str) -> str:
    if serving not in SERVING_MODES:
        raise ValueError(f"serving must be one of {SERVING_MODES}, got {serving!r}")
    return serving


def agreement_images(n: int = 4) -> list[np.ndarray]:
    """``n`` real photos to check agreement and time backends on: clothing-co-parsing when present,
    else the synthetic DeepFashion2-format validation images (``make data``)."""
    from clothingrec.evaluate import read_image
    from clothingrec.paths import CCP, find_dataset
    from clothingrec.zoo import validation_images

    root = find_dataset(CCP, required=False)
    files = sorted((Path(root) / "photos").glob("*.jpg"))[:n] if root else []
    if files:
        return [read_image(p) for p in files]
    return validation_images(n)


def serve_detectors(person, clothing, images: Sequence[np.ndarray] | None = None, *, serving: str = "fastest",
                    threads: int | None = None, workdir=None, log=None):
    """``(person, clothing)`` as served: unchanged for ``serving="eager"``, else each the fastest
    backend that agrees with it on ``images`` (default :func:`agreement_images`); either may be ``None``
    (left out, returned as ``None``) and keeps eager when nothing faster agrees."""
    from clothingrec.serve.detector import fastest_predictor

    if check_serving(serving) == "eager":
        return person, clothing
    if person is None and clothing is None:
        return None, None
    images = list(images) if images is not None else agreement_images()
    if person is not None:
        person = fastest_predictor(person, images, backends=person_backends(person), threads=threads, workdir=workdir,
                                   log=log)
    if clothing is not None:
        clothing = fastest_predictor(clothing, images, threads=threads, workdir=workdir, log=log)
    return person, clothing


def backend_of(predictor) -> str:
    """The serving backend a predictor runs (``eager`` when it was never served)."""
    return str(getattr(predictor, "serving_backend", "eager"))
