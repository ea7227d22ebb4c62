"""Classifier training throughput: plain torchvision eager vs the project's pipeline, in one run.

* baseline: ``torchvision.datasets.ImageFolder`` + PIL decode and transforms every epoch
  (RandomResizedCrop, flip, rotation, colour jitter, ToTensor, Normalize) + DataLoader,
  mobilenet_v3_small in NCHW, fp32.
* project: images decoded and resized once into a uint8 store (one-time cost reported
  separately), batches gathered from it, augmentation as one affine resample + vectorised
  colour jitter per batch, channels_last model, fp32.

Both train the same model with the same optimiser, batch size, image size and threads.
Also reports FLOPs per training image (3 × the forward count of ``torch.utils.flop_counter``),
the achieved GFLOP/s, and that as a fraction of a measured fp32 matmul peak.

    python bench/bench_classifier.py            # 224 px, batch 32 (minutes on 2 CPU cores)
    python bench/bench_classifier.py --quick    # seconds: tiny sizes, keeps the script from rotting

Writes ``runs/bench/classifier.json`` and ``runs/bench/classifier.md``.  Figures only, no asserts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import transforms

from clothingrec.classify.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentParams, train_batch
from clothingrec.classify.data import class_balanced_weights
from clothingrec.classify.store import StoreDataset, build_store, collate_batch
from clothingrec.datasets.clothing_small import CLASSES, dataset_root, read_split
from clothingrec.device import cpu_count, set_threads
from clothingrec.envinfo import cpu_model
from clothingrec.paths import RUNS_DIR, configure_environment


def _model(channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small(num_classes=len(CLASSES))
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _time_training(model, batches, steps: int, warmup: int, channels_last: bool) -> dict:
    """Train ``warmup + steps`` steps; time the last ``steps`` (data loading included)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    images = 0
    it = iter(batches)
    start = None
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x, y = next(it)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            images += int(y.numel())
    seconds = time.perf_counter() - start
    return {"images": images, "seconds": seconds, "images_per_s": images / seconds}


def _forever(loader):
    while True:
        yield from loader


def baseline_batches(root: Path, imgsz: int, batch: int, workers: int):
    tf = transforms.Compose([
        transforms.RandomResizedCrop(imgsz, scale=(0.25, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.RandomRotation(15),
        transforms.ColorJitter(0.3, 0.3, 0.3, 0.03),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    ds = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                                         drop_last=True, persistent_workers=workers > 0)
    return _forever(loader), len(ds)


def project_batches(store, imgsz: int, batch: int):
    sampler = torch.utils.data.WeightedRandomSampler(class_balanced_weights(store.labels, len(CLASSES)),
                                                     len(store), replacement=True)
    loader = torch.utils.data.DataLoader(StoreDataset(store), batch_size=batch, sampler=sampler,
                                         collate_fn=collate_batch, drop_last=True)
    params = AugmentParams()
    gen = torch.Generator().manual_seed(0)
    for images, labels in _forever(loader):
        yield train_batch(images, imgsz, params, channels_last=True, generator=gen), labels


def flops_per_image(imgsz: int, batch: int) -> float:
    """Training FLOPs per image = 3 × forward FLOPs (backward ≈ 2 × forward).

    The forward is counted with ``torch.utils.flop_counter``; its count for
    ``convolution_backward`` ignores ``groups`` (a depthwise 3×3 conv's backward comes out
    ~60× too large), so the backward is not measured with it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(channels_last=True).eval()
    x = torch.randn(batch, 3, imgsz, imgsz).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return 3.0 * counter.get_total_flops() / batch


def matmul_peak(n: int, repeats: int) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best / 1e9


def main(argv=None) -> int:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes: runs in seconds")
    p.add_argument("--imgsz", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=12, help="timed training steps per pipeline")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
    p.add_argument("--store-images", type=int, default=64, help="images per class decoded into the store")
    p.add_argument("--dataset", default=None)
    p.add_argument("--out", default=str(RUNS_DIR / "bench"))
    args = p.parse_args(argv)
    if args.quick:
        args.imgsz, args.batch, args.steps, args.warmup, args.store_images = 64, 8, 2, 1, 2
    threads = set_threads(args.threads)
    root = dataset_root(args.dataset)

    t = time.perf_counter()
    index = read_split("train", root).subset(args.store_images, seed=0)
    store = build_store(index, round(args.imgsz / 0.875), workers=max(1, threads), cache=False)
    store_seconds = time.perf_counter() - t

    results = {}
    batches, n_base = baseline_batches(root, args.imgsz, args.batch, args.workers)
    results["torchvision eager (ImageFolder + PIL per epoch, NCHW)"] = _time_training(
        _model(False), batches, args.steps, args.warmup, channels_last=False)
    results["project (uint8 store + batch augmentation, channels_last)"] = _time_training(
        _model(True), project_batches(store, args.imgsz, args.batch), args.steps, args.warmup, channels_last=True)

    fpi = flops_per_image(args.imgsz, min(args.batch, 8))
    peak = matmul_peak(256 if args.quick else 2048, 3 if args.quick else 10)
    base_key, proj_key = list(results)
    for r in results.values():
        r["gflops_per_s"] = r["images_per_s"] * fpi / 1e9
        r["fraction_of_matmul_peak"] = r["gflops_per_s"] / peak
    speedup = results[proj_key]["images_per_s"] / results[base_key]["images_per_s"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    record = {
        "benchmark": "classifier training throughput", "quick": args.quick, "imgsz": args.imgsz,
        "batch": args.batch, "steps": args.steps, "threads": threads, "baseline_workers": args.workers,
        "cpu": cpu_model(), "cores": cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
        "load_average_at_end": load, "baseline_dataset_images": n_base,
        "store": {"images": len(store), "size": store.size, "build_seconds": store_seconds,
                  "decode_images_per_s": len(store) / store_seconds if store_seconds else None},
        "train_flops_per_image": fpi, "matmul_fp32_peak_gflops": peak, "results": results,
        "speedup_project_vs_baseline": speedup,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "classifier-quick" if args.quick else "classifier"
    (out / f"{name}.json").write_text(json.dumps(record, indent=2))
    lines = [
        f"# Classifier training throughput ({'quick' if args.quick else 'full'})", "",
        f"mobilenet_v3_small, {args.imgsz} px, batch {args.batch}, {args.steps} timed steps, {threads} torch "
        f"thread(s), CPU {record['cpu']} ({record['cores']} cores), load average at end {load}.", "",
        "| pipeline | images/s | GFLOP/s | of fp32 matmul peak |", "|---|---:|---:|---:|",
    ]
    for key, r in results.items():
        lines.append(f"| {key} | {r['images_per_s']:.1f} | {r['gflops_per_s']:.2f} | "
                     f"{100 * r['fraction_of_matmul_peak']:.1f} % |")
    lines += ["", f"Speed-up of the project pipeline: **{speedup:.2f}×**.",
              f"Training FLOPs per image: {fpi / 1e9:.4f} GFLOP (3 × forward, forward counted by "
              "torch.utils.flop_counter); "
              f"fp32 matmul peak measured here: {peak:.1f} GFLOP/s.",
              f"One-time store build: {len(store)} images decoded and resized in {store_seconds:.1f} s "
              f"({record['store']['decode_images_per_s']:.0f} images/s), not included above."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
