"""Seconds per training step of the torchvision detectors (and YOLO per image) on real-sized inputs.

    python bench/bench_detect.py            # CCP-sized images, the planned real-run settings
    python bench/bench_detect.py --quick    # tiny sizes, seconds (keeps the script from rotting)

Writes ``runs/bench/detect_steps.json`` and ``.md``. Figures only; nothing is asserted. On a shared
machine the numbers depend on the load, which is recorded next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from clothingrec.detect.engine import LIGHT_HEADS
from clothingrec.detect.models import build_detector
from clothingrec.device import resolve_device, set_threads
from clothingrec.paths import RUNS_DIR, configure_environment

FULL = [  # (family, backbone, min_size, max_size, light heads)
    ("fasterrcnn", "mobilenet_v3_large_fpn", 512, 853, False),
    ("fasterrcnn", "resnet50_fpn", 512, 853, False),
    ("maskrcnn", "mobilenet_v3_large_fpn", 512, 853, False),
    ("maskrcnn", "resnet50_fpn", 512, 853, False),
]
QUICK = [("fasterrcnn", "mobilenet_v3_large_fpn", 64, 64, True), ("maskrcnn", "resnet18_fpn", 64, 64, True)]


def batch(n: int, h: int, w: int, masks: bool):
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, h, w, generator=g) for _ in range(n)]
    targets = []
    for _ in range(n):
        boxes = torch.tensor([[0.2 * w, 0.1 * h, 0.8 * w, 0.5 * h], [0.25 * w, 0.45 * h, 0.75 * w, 0.95 * h]])
        t = {"boxes": boxes, "labels": torch.tensor([1, 5])}
        if masks:
            m = torch.zeros(2, h, w, dtype=torch.uint8)
            for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
                m[k, y1:y2, x1:x2] = 1
            t["masks"] = m
        targets.append(t)
    return images, targets


def measure(family, backbone, min_size, max_size, light, *, steps: int, images: int, device) -> dict:
    kwargs = dict(LIGHT_HEADS) if light else {}
    torch.manual_seed(0)
    model = build_detector(family, backbone, 8, min_size=min_size, max_size=max_size, **kwargs).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    # a CCP photo is 550 x 825 (w x h): keep the aspect ratio at the requested shorter side
    h, w = int(min_size * 1.5), min_size
    imgs, tgts = batch(images, h, w, family == "maskrcnn")
    imgs = [i.to(device) for i in imgs]
    tgts = [{k: v.to(device) for k, v in t.items()} for t in tgts]
    times = []
    for i in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        loss = sum(model(imgs, tgts).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - start)
    return {"family": family, "backbone": backbone, "min_size": min_size, "images_per_step": images,
            "light_heads": light, "seconds_per_step": sum(times) / len(times), "steps": steps}


def main(argv=None) -> int:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=str(RUNS_DIR / "bench"))
    args = p.parse_args(argv)
    threads = set_threads(args.threads)
    device = resolve_device(args.device)
    cases = QUICK if args.quick else FULL
    steps = 1 if args.quick else args.steps
    rows = []
    for case in cases:
        row = measure(*case, steps=steps, images=args.images, device=device)
        rows.append(row)
        print(f"{row['family']:10s} {row['backbone']:24s} {row['min_size']:4d}px {row['seconds_per_step']:7.2f} s/step",
              flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "detect_steps_quick" if args.quick else "detect_steps"
    meta = {"device": str(device), "torch_threads": threads, "load_average_1min": load, "rows": rows}
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    lines = [f"device {device}, torch threads {threads}, 1-min load average {load}", "",
             "| family | backbone | min_size | images/step | s/step |", "|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['backbone']} | {r['min_size']} | {r['images_per_step']} | "
              f"{r['seconds_per_step']:.2f} |" for r in rows]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out / name}.json/.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
