"""Batch augmentation and normalisation on the device, from uint8 store batches.

Training: one affine ``grid_sample`` per batch does random resized crop (area fraction,
aspect ratio), horizontal flip and rotation for every image at once; colour jitter
(brightness, contrast, saturation, hue as a rotation in YIQ space) is a few vectorised
tensor ops.  Evaluation: centre crop ``imgsz`` out of the stored ``resize_size`` square.
Both end with ImageNet mean/std normalisation and (optionally) channels_last.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from clothingrec.structures import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401

# RGB → YIQ and back (hue rotation is a rotation of the I/Q plane)
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


@dataclass
class AugmentParams:
    scale_min: float = 0.25
    ratio: float = 1.333
    hflip: float = 0.5
    rotation: float = 15.0
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    hue: float = 0.03
    grayscale: float = 0.0  # probability that an image is turned to gray (after the colour jitter)

    @classmethod
    def from_config(cls, cfg) -> AugmentParams:
        return cls(cfg.aug_scale_min, cfg.aug_ratio, cfg.aug_hflip, cfg.aug_rotation,
                   cfg.aug_brightness, cfg.aug_contrast, cfg.aug_saturation, cfg.aug_hue, cfg.aug_grayscale)


def normalize(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """float [0, 1] images → ImageNet-normalised (channels_last if asked)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


def center_crop(images: torch.Tensor, imgsz: int) -> torch.Tensor:
    """Centre ``imgsz × imgsz`` of square uint8 images (same offsets as torchvision's CenterCrop)."""
    s = images.shape[-1]
    if s == imgsz:
        return images
    top = int(round((s - imgsz) / 2.0))
    return images[..., top:top + imgsz, top:top + imgsz]


def eval_batch(images: torch.Tensor, imgsz: int, channels_last: bool = True) -> torch.Tensor:
    """uint8 store batch → normalised eval input."""
    x = center_crop(images, imgsz).float().div_(255.0)
    return normalize(x, channels_last)


def _affine(n: int, p: AugmentParams, generator, device) -> torch.Tensor:
    def u(lo, hi):
        return torch.rand(n, generator=generator, device=device) * (hi - lo) + lo

    area = u(p.scale_min, 1.0)
    log_r = math.log(max(p.ratio, 1.0))
    ratio = torch.exp(u(-log_r, log_r))
    w = torch.sqrt(area * ratio).clamp(max=1.0)
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = u(-1.0, 1.0) * (1.0 - w)
    cy = u(-1.0, 1.0) * (1.0 - h)
    angle = u(-p.rotation, p.rotation) * (math.pi / 180.0)
    flip = torch.where(torch.rand(n, generator=generator, device=device) < p.hflip, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([
        torch.stack([w * cos * flip, -h * sin, cx], dim=1),
        torch.stack([w * sin * flip, h * cos, cy], dim=1),
    ], dim=1)
    return theta


def _color(x: torch.Tensor, p: AugmentParams, generator) -> torch.Tensor:
    n, device = x.shape[0], x.device

    def factor(strength):
        return (1.0 + (torch.rand(n, generator=generator, device=device) * 2 - 1) * strength).view(n, 1, 1, 1)

    if p.brightness:
        x = x * factor(p.brightness)
    if p.contrast:
        gray_mean = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).mean(dim=(1, 2)).view(n, 1, 1, 1)
        x = (x - gray_mean) * factor(p.contrast) + gray_mean
    if p.saturation:
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray) * factor(p.saturation) + gray
    if p.hue:
        angle = (torch.rand(n, generator=generator, device=device) * 2 - 1) * p.hue * 2 * math.pi
        cos, sin = torch.cos(angle), torch.sin(angle)
        one, zero = torch.ones_like(cos), torch.zeros_like(cos)
        rot = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, cos, -sin], 1),
                           torch.stack([zero, sin, cos], 1)], 1)  # [n, 3, 3]
        m = _YIQ2RGB.to(device, x.dtype) @ rot.to(x.dtype) @ _RGB2YIQ.to(device, x.dtype)
        x = torch.einsum("nij,njhw->nihw", m, x)
    if p.grayscale:  # no draw when off: runs without it keep their random streams
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)
        chosen = (torch.rand(n, generator=generator, device=device) < p.grayscale).view(n, 1, 1, 1)
        x = torch.where(chosen, gray, x)
    return x.clamp_(0.0, 1.0)


def train_batch(images: torch.Tensor, imgsz: int, params: AugmentParams, channels_last: bool = True,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 store batch → augmented, normalised training input of ``imgsz × imgsz``."""
    n = images.shape[0]
    x = images.float().div_(255.0)
    theta = _affine(n, params, generator, images.device).to(x.dtype)
    grid = F.affine_grid(theta, [n, 3, imgsz, imgsz], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = _color(x, params, generator)
    return normalize(x, channels_last)


# ---- mixup / cutmix on soft targets ----------------------------------------------------------
def smooth_targets(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer labels → label-smoothed one-hot rows ``(1 - ε)·onehot + ε / K`` (each row sums to 1)."""
    onehot = F.one_hot(labels.long(), num_classes).to(dtype)
    return onehot * (1.0 - smoothing) + smoothing / num_classes


def _beta(alpha: float, generator=None) -> float:
    """λ ~ Beta(α, α); reproducible from ``generator`` (torch's Beta sampler only takes the global RNG)."""
    if generator is None:
        return float(torch.distributions.Beta(alpha, alpha).sample())
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return float(torch.distributions.Beta(alpha, alpha).sample())


def cutmix_box(lam: float, height: int, width: int, generator=None) -> tuple[int, int, int, int]:
    """A box (top, bottom, left, right) of area ≈ (1 - λ)·H·W, centred uniformly, clipped to the image."""
    cut = math.sqrt(max(0.0, 1.0 - lam))
    bh, bw = int(round(height * cut)), int(round(width * cut))
    cy = int(torch.randint(0, height, (), generator=generator))
    cx = int(torch.randint(0, width, (), generator=generator))
    top, bottom = max(cy - bh // 2, 0), min(cy - bh // 2 + bh, height)
    left, right = max(cx - bw // 2, 0), min(cx - bw // 2 + bw, width)
    return top, bottom, left, right


def mix_batch(x: torch.Tensor, labels: torch.Tensor, num_classes: int, *, mixup_alpha: float = 0.0,
              cutmix_alpha: float = 0.0, prob: float = 1.0, smoothing: float = 0.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Mixup or cutmix of a batch with a permutation of itself, on label-smoothed soft targets.

    Returns ``(images, targets, info)``: ``targets`` rows sum to 1; ``info`` has ``kind``
    (``none``/``mixup``/``cutmix``), ``lam`` (weight of the original image, for cutmix the exact
    area fraction kept) and ``perm`` (the partner of each image).  Mixup: ``λ·x + (1-λ)·x[perm]``;
    cutmix: ``x`` with a box of ``x[perm]`` pasted in.  Both are linear in the images, so mixing
    the normalised tensors equals mixing the pixels.
    """
    targets = smooth_targets(labels, num_classes, smoothing, x.dtype if x.is_floating_point() else torch.float32)
    n = x.shape[0]
    kinds = [k for k, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if n < 2 or not kinds or float(torch.rand((), generator=generator)) >= prob:
        return x, targets, {"kind": "none", "lam": 1.0, "perm": torch.arange(n)}
    kind = kinds[int(torch.randint(0, len(kinds), (), generator=generator))]
    perm = torch.randperm(n, generator=generator)
    lam = _beta(mixup_alpha if kind == "mixup" else cutmix_alpha, generator)
    partner = x[perm.to(x.device)]
    if kind == "mixup":
        mixed = x * lam + partner * (1.0 - lam)
    else:
        h, w = x.shape[-2:]
        top, bottom, left, right = cutmix_box(lam, h, w, generator)
        mixed = x.clone()
        mixed[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / float(h * w)
    targets = targets * lam + targets[perm.to(targets.device)] * (1.0 - lam)
    return mixed, targets, {"kind": kind, "lam": lam, "perm": perm}
