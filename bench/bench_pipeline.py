"""Two-stage pipeline latency (person → crops → clothing detector): eager predictors vs the serving path.

Builds the pipeline twice over the same models — once with the eager predictors, once with the
fastest serving predictors that agree with them (:func:`clothingrec.serve.fastest_predictor`, chosen
on the same photos) — and runs both on real photos (clothing-co-parsing; the synthetic
DeepFashion2-format validation images when it is absent), interleaved image by image, in
``two-stage`` and ``direct`` mode.  Reports per-image latency (median, p95), the speed-up, the
person / clothing split of the time, and whether the two pipelines' final detections agree (boxes
matched at IoU ≥ 0.9).  Writes runs/bench/pipeline.json and pipeline.md.  Figures only.

    python bench/bench_pipeline.py            # full
    python bench/bench_pipeline.py --quick    # seconds
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from clothingrec import serve
from clothingrec.paths import RUNS_DIR, configure_environment
from clothingrec.pipeline import Pipeline

import _common as B


def main(argv=None) -> int:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 photos (seconds)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    p.add_argument("--workdir", type=Path, default=None, help="ONNX export cache (default .cache/serve)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--person", default="auto", help="auto | untrained | run folder / checkpoint")
    p.add_argument("--clothing", default="auto", help="auto | untrained | run folder / checkpoint")
    p.add_argument("--clothing-family", default=None, choices=("fasterrcnn", "maskrcnn", "yolo"),
                   help="untrained clothing detector family (default maskrcnn, as the web demo; --quick fasterrcnn)")
    p.add_argument("--min-size", type=int, default=320, help="R-CNN min_size of untrained detectors")
    p.add_argument("--detections", type=int, default=20, help="detections per image of untrained detectors")
    p.add_argument("--images", type=int, default=6)
    p.add_argument("--max-side", type=int, default=640, help="photos are downscaled to this longest side")
    p.add_argument("--max-persons", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="passes over the photos per pipeline")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.min_size, args.detections, args.images, args.max_side, args.rounds = 128, 5, 2, 256, 1
        args.max_persons = 1
        args.threads = args.threads or 1
        args.clothing_family = args.clothing_family or "fasterrcnn"
        args.person = "untrained" if args.person == "auto" else args.person
        args.clothing = "untrained" if args.clothing == "auto" else args.clothing
    args.clothing_family = args.clothing_family or "maskrcnn"
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    images, source = B.street_photos(args.images, args.max_side)
    person, person_desc = B.resolve_detector("person", args.person, min_size=args.min_size, imgsz=args.min_size,
                                             images=images, detections=max(args.max_persons, 1) * 5,
                                             seed=args.seed, workdir=args.workdir)
    clothing, clothing_desc = B.resolve_detector(args.clothing_family, args.clothing, min_size=args.min_size,
                                                 imgsz=args.min_size, images=images, detections=args.detections,
                                                 seed=args.seed + 1, workdir=args.workdir)
    trained_person = person_desc.startswith("trained")
    served_person = serve.fastest_predictor(person, images, backends=serve.person_backends(person),
                                            threads=args.threads, workdir=args.workdir, rounds=1,
                                            repeats=1, score_threshold=0.05, log=print)
    # the clothing detector is served on person crops: choose its backend on crops of these photos
    eager_pipe = Pipeline(person, clothing, margin=0.1, person_score_threshold=0.5 if trained_person else 0.0,
                          max_persons=args.max_persons)
    crops = []
    for im in images:
        r = eager_pipe.run(im, "two-stage")
        crops += [np.ascontiguousarray(im[y1:y2, x1:x2]) for x1, y1, x2, y2 in r.crops]
    served_clothing = serve.fastest_predictor(clothing, (crops or images)[:max(2, args.images)], threads=args.threads,
                                              workdir=args.workdir, rounds=1, repeats=1, score_threshold=0.05,
                                              log=print)
    served_pipe = Pipeline(served_person, served_clothing, margin=0.1,
                           person_score_threshold=eager_pipe.person_score_threshold, max_persons=args.max_persons)
    pipes = {"eager": eager_pipe, "serving": served_pipe}
    rows = []
    for mode in ("two-stage", "direct"):
        for pipe in pipes.values():  # warm-up
            pipe.run(images[0], mode)
        times = {k: [] for k in pipes}
        parts = {k: {"person": [], "clothing": []} for k in pipes}
        outputs = {k: [] for k in pipes}
        for r in range(args.rounds):
            for im in images:
                for name, pipe in pipes.items():  # interleaved image by image
                    t0 = time.perf_counter()
                    res = pipe.run(im, mode)
                    times[name].append(time.perf_counter() - t0)
                    parts[name]["person"].append(res.timings["person"])
                    parts[name]["clothing"].append(res.timings["clothing"])
                    if r == 0:
                        outputs[name].append(res.detections)
        agreement = serve.detector_agreement(zip(outputs["eager"], outputs["serving"]), score_threshold=0.05)
        base = float(np.median(times["eager"]))
        for name in pipes:
            ms = np.asarray(times[name]) * 1000
            rows.append({"mode": mode, "pipeline": name, "images": len(images), "calls": len(ms),
                         "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
                         "person_median_ms": float(np.median(parts[name]["person"]) * 1000),
                         "clothing_median_ms": float(np.median(parts[name]["clothing"]) * 1000),
                         "speedup_vs_eager": base / float(np.median(times[name])),
                         "agreement": agreement if name == "serving" else None})
    record = {"quick": args.quick, "machine": B.machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "images": source, "person": person_desc, "clothing": clothing_desc,
              "person_backend": served_person.serving_backend, "clothing_backend": served_clothing.serving_backend,
              "person_candidates": served_person.serving["candidates"],
              "clothing_candidates": served_clothing.serving["candidates"], "rows": rows,
              "wall_s": round(time.perf_counter() - started, 1)}
    m = record["machine"]
    lines = ["## Two-stage pipeline: eager predictors vs the serving path", "",
             f"{m['date']}; {m['cpu']}, {m['cores']} cores, torch threads {m['torch_threads']}; load average "
             f"{m['load_average_1_5_15']} at start"
             f"{' (quick mode: tiny sizes, figures not meaningful)' if args.quick else ''}.",
             f"Photos: {source}.  Person detector: {person_desc} → serving backend **{record['person_backend']}**.  "
             f"Clothing detector: {clothing_desc} → serving backend **{record['clothing_backend']}** "
             f"(chosen on person crops).  Up to {args.max_persons} persons per photo; {args.rounds} pass(es), "
             "the two pipelines interleaved photo by photo.", "",
             "| mode | pipeline | median ms / image | p95 ms | person ms | clothing ms | speed-up "
             "| final boxes agree |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        a = r["agreement"]
        agr = "–" if a is None else (f"{'yes' if a['agrees'] else 'no'} ({a['matched_reference']}/"
                                     f"{a['reference_boxes']} IoU≥0.9)")
        lines.append(f"| {r['mode']} | {r['pipeline']} | {B.fmt(r['median_ms'])} | {B.fmt(r['p95_ms'])} | "
                     f"{B.fmt(r['person_median_ms'])} | {B.fmt(r['clothing_median_ms'])} | "
                     f"{B.fmt(r['speedup_vs_eager'], 2)}x | {agr} |")
    lines.append("")
    B.write(args.out, "pipeline", record, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
