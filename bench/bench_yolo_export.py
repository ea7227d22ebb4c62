"""The direct YOLO serving path (exported ONNX model, own letterbox and NMS) under export and thread variants.

For each network input the letterbox gives a photo (a CCP val photo, 2:3, and the same photo stretched to 3:4:
192×128 and 192×160 at 192 px), batch-1 end to end, timed interleaved in rounds:

- ``dynamic``: the served export (dynamic axes, no simplifier) at ``--threads`` ONNX Runtime threads;
- ``dynamic, 1 thread``;
- ``static HxW``: an export for that one input shape (a server would keep one per letterbox shape);
- ``+ onnxslim``: the same exports simplified by onnxslim, when it is installed (``pip install onnxslim``;
  not a dependency of the project); reported as not installed otherwise.

Each variant's detections are compared with the dynamic export's (count, largest score difference).
Writes runs/bench/yolo_export.json and .md.  Figures only: nothing is asserted.

    python bench/bench_yolo_export.py            # the committed YOLOv8n at 192 px (a minute)
    python bench/bench_yolo_export.py --quick    # an untrained model at 128 px, few repeats
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from clothingrec.paths import RUNS_DIR, configure_environment
from clothingrec.serve.timing import compare_latency

import _common as B


def export(weights: Path, workdir: Path, *, imgsz, dynamic: bool, simplify: bool) -> Path:
    """ultralytics' ONNX export of ``weights`` into its own folder under ``workdir``."""
    from ultralytics import YOLO

    from clothingrec.detect.yolo import quiet_ultralytics

    shape = "x".join(map(str, imgsz)) if isinstance(imgsz, tuple) else str(imgsz)
    folder = workdir / f"{'dynamic' if dynamic else 'static'}-{shape}{'-slim' if simplify else ''}"
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / weights.name
    shutil.copyfile(weights, local)
    with quiet_ultralytics(True):
        out = YOLO(str(local)).export(format="onnx", imgsz=imgsz, dynamic=dynamic, simplify=simplify, opset=17,
                                      device="cpu", verbose=False)
    return Path(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="untrained model, 128 px, few repeats (seconds)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    p.add_argument("--workdir", type=Path, default=None, help="export folder (default .cache/serve/yolo-export)")
    p.add_argument("--yolo", default="auto", help="auto | untrained | weights path")
    p.add_argument("--imgsz", type=int, default=192, help="input size of an untrained model")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default torch's)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=40)
    args = p.parse_args(argv)
    if args.quick:
        args.yolo = "untrained" if args.yolo == "auto" else args.yolo
        args.imgsz, args.rounds, args.repeats = 128, 1, 3
    args.threads = int(args.threads or torch.get_num_threads())
    warnings.filterwarnings("ignore")
    import cv2

    from clothingrec.paths import PROJECT_ROOT
    from clothingrec.serve.yolo_direct import DirectYoloPredictor, yolo_direct_backend

    workdir = Path(args.workdir or PROJECT_ROOT / ".cache" / "serve" / "yolo-export")
    images, photos = B.street_photos(2)
    predictor, desc = B.resolve_detector("yolo", args.yolo, min_size=args.imgsz, imgsz=args.imgsz, images=images,
                                         detections=100)
    photo = images[0]
    h, w = photo.shape[:2]
    wide = cv2.resize(photo, (max(h, w) * 3 // 4, max(h, w)) if h >= w else (max(h, w), max(h, w) * 3 // 4))
    record = {"quick": args.quick, "machine": B.machine(), "model": desc, "imgsz": predictor.imgsz,
              "threads": args.threads, "photos": photos, "results": []}
    try:
        import onnxslim
        record["onnxslim"] = onnxslim.__version__
    except ImportError:
        record["onnxslim"] = None

    def direct(path, threads):
        return DirectYoloPredictor(path, imgsz=predictor.imgsz, category_ids=predictor.category_ids,
                                   category_names=predictor.category_names, conf=predictor.conf, iou=predictor.iou,
                                   max_det=predictor.max_det, threads=threads)

    base = yolo_direct_backend(predictor, threads=args.threads)
    done = set()
    for image in (photo, wide):
        tensor, _ = base.preprocess(image)
        shape = tuple(int(v) for v in tensor.shape[2:])
        if shape in done:  # at small sizes both photos can land on one input
            continue
        done.add(shape)
        variants = {"dynamic": base, "dynamic, 1 thread": direct(base.weights, 1)}
        static = export(Path(predictor.weights), workdir, imgsz=shape, dynamic=False, simplify=False)
        variants[f"static {shape[0]}x{shape[1]}"] = direct(static, args.threads)
        if record["onnxslim"]:
            slim = export(Path(predictor.weights), workdir, imgsz=predictor.imgsz, dynamic=True, simplify=True)
            variants["dynamic + onnxslim"] = direct(slim, args.threads)
            slim_static = export(Path(predictor.weights), workdir, imgsz=shape, dynamic=False, simplify=True)
            variants[f"static {shape[0]}x{shape[1]} + onnxslim"] = direct(slim_static, args.threads)
        reference = base.predict(image)
        timings = compare_latency({k: (lambda v=v, im=image: v.predict(im)) for k, v in variants.items()},
                                  rounds=args.rounds, repeats=args.repeats)
        for name, variant in variants.items():
            got = variant.predict(image)
            same = len(got) == len(reference)
            delta = float(np.abs(np.sort(got.scores) - np.sort(reference.scores)).max()) if same and len(got) else 0.0
            t = timings[name]
            record["results"].append({
                "input": f"{shape[0]}x{shape[1]}", "variant": name, "detections": len(got),
                "agrees": bool(same and delta < 1e-3), "max_score_delta": delta if same else None,
                "median_ms": t["median_ms"], "p95_ms": t["p95_ms"],
                "ratio_to_dynamic": t["median_ms"] / timings["dynamic"]["median_ms"]})
    lines = ["## YOLO direct path: export and thread variants", "",
             f"{record['machine']['date']}; {record['machine']['cpu']}, {record['machine']['cores']} cores; "
             f"load average {record['machine']['load_average_1_5_15']} at start; ONNX Runtime threads "
             f"{args.threads} unless stated; model: {desc} @{predictor.imgsz} px; onnxslim: "
             f"{record['onnxslim'] or 'not installed'}.", "",
             "Batch 1 end to end (letterbox, model, NMS), timed interleaved; ratio = median over the dynamic "
             "export's (the served one) on the same input.", "",
             "| input | variant | agrees with dynamic | median ms | p95 ms | ratio |", "|---|---|---|---:|---:|---:|"]
    for r in record["results"]:
        lines.append(f"| {r['input']} | {r['variant']} | {'yes' if r['agrees'] else 'no'} ({r['detections']} boxes) | "
                     f"{B.fmt(r['median_ms'], 2)} | {B.fmt(r['p95_ms'], 2)} | {r['ratio_to_dynamic']:.2f}x |")
    B.write(args.out, "yolo_export" + ("_quick" if args.quick else ""), record, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    configure_environment()
    t0 = time.perf_counter()
    code = main()
    print(f"[bench] yolo export variants: {time.perf_counter() - t0:.1f} s")
    sys.exit(code)
