"""Pretrained weights through the real APIs, failing fast and clearly when offline.

torchvision reads ``$TORCH_HOME/hub/checkpoints/<file>`` before downloading; ultralytics
looks for ``<name>.pt`` in the working directory and its weights folder.  Offline (no
route to the host within a few seconds, or ``CLOTHINGREC_OFFLINE=1``) these helpers
raise :class:`PretrainedWeightsUnavailable` naming the file and where to put it,
instead of letting a download hang.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from clothingrec.paths import WEIGHTS_DIR

CONNECT_TIMEOUT_S = 3.0


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but are not on disk and cannot be downloaded."""


def torch_checkpoint_dir() -> Path:
    return Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> bool:
    if os.environ.get("CLOTHINGREC_OFFLINE", "0") == "1":
        return False
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def torchvision_weights(weights):
    """Return a torchvision ``WeightsEnum`` member ready to pass as ``weights=``.

    ``weights`` is an enum member, ``"DEFAULT"``-style string understood by
    ``torchvision.models.get_weight`` (e.g. ``"ResNet50_Weights.IMAGENET1K_V2"``), or None
    (returns None: train from scratch).  The file must be in the torch cache or downloadable.
    """
    if weights in (None, "", False, "none", "None"):
        return None
    if isinstance(weights, str):
        from torchvision.models import get_weight

        weights = get_weight(weights)
    filename = os.path.basename(urlparse(weights.url).path)
    cached = torch_checkpoint_dir() / filename
    if cached.exists() or _reachable(weights.url):
        return weights
    raise PretrainedWeightsUnavailable(
        f"pretrained weights {weights} need the file {filename!r}, which is not in "
        f"{torch_checkpoint_dir()} and cannot be downloaded from {weights.url} (offline). "
        f"Download it on a machine with a network and place it at {cached}, "
        "or train from scratch (weights=None)."
    )


def ultralytics_weights(name: str | os.PathLike) -> str:
    """Resolve an ultralytics checkpoint (``yolov8n.pt``, ``yolo11n-seg.pt`` or a path).

    A ``.yaml`` model config (train from scratch) is returned unchanged.  A ``.pt`` is
    looked for as given, then in ``weights/``; offline a missing one raises at once.
    """
    name = str(name)
    if name.endswith((".yaml", ".yml")):
        return name
    for candidate in (Path(name), WEIGHTS_DIR / Path(name).name):
        if candidate.is_file():
            return str(candidate)
    url = f"https://github.com/ultralytics/assets/releases/download/v8.3.0/{Path(name).name}"
    if os.environ.get("YOLO_OFFLINE", "0") != "1" and _reachable(url):
        return name  # ultralytics downloads it itself
    raise PretrainedWeightsUnavailable(
        f"ultralytics weights {name!r} are not on disk (looked at {Path(name).resolve()} and "
        f"{WEIGHTS_DIR / Path(name).name}) and cannot be downloaded offline. Put the file in "
        f"{WEIGHTS_DIR}/, or train from scratch with a model config such as "
        f"{Path(name).stem.replace('-seg', '')}.yaml."
    )


def load_state_dict(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a local checkpoint file (ours or a user's), naming it in the error when absent."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(f"weights file {path} does not exist")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state
