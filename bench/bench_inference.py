"""Inference latency and throughput: eager PyTorch vs the project's serving path, in one run.

For the classifier and each detector (Faster R-CNN, Mask R-CNN, YOLO) this builds every serving
candidate (:mod:`clothingrec.serve`: ONNX Runtime fp32 / int8, OpenVINO fp32 for YOLO and the
classifier, the R-CNN hybrid), checks that it
agrees with eager PyTorch (classifier: same top-1 on the test split, logits within tolerance;
detectors: boxes matched at IoU ≥ 0.9 on CCP val street photos), then times, interleaved in rounds so a
noisy machine hits every backend alike:

- batch-1 latency (median, p95) and the speed-up over eager,
- throughput: the classifier on batches of 32, a detector on one batch of ``--det-batch`` images
  through its model (torchvision: a list of images; YOLO: ultralytics' list predict),

and marks the backend the serving path chooses (fastest that agrees).  A side-by-side table then gives,
for YOLO and the classifier, batch-1 end to end (YOLO: ``predict(RGB image) -> Detections``, letterbox
and NMS included; classifier: ``classify(RGB image)``, resize / normalise / softmax included) next to the
model-only time (the backend's forward on an already prepared tensor), and YOLO's pre / model / post split
as ultralytics reports it.  One thread count (``--threads``, default torch's) is given to torch, ONNX
Runtime (intra-op) and OpenVINO (``INFERENCE_NUM_THREADS``, ``NUM_STREAMS`` 1, ``PERFORMANCE_HINT``
LATENCY, fp32) and stated.  Models: the curated trained
weights under runs/results/ when present, else seeded untrained stand-ins (BatchNorm re-estimated on
real images; stated in the table).  Writes runs/bench/inference.json and inference.md.
Figures only: nothing here is asserted.

    python bench/bench_inference.py            # full (minutes)
    python bench/bench_inference.py --quick    # seconds: tiny sizes, to keep the script from rotting
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

from clothingrec import serve
from clothingrec.classify.inference import split_tensor
from clothingrec.paths import RUNS_DIR, configure_environment
from clothingrec.serve.timing import compare_latency

import _common as B

DETECTORS = ("fasterrcnn", "maskrcnn", "yolo")


def bench_classifier(args, log) -> dict:
    loaded, desc = B.resolve_classifier(args.classifier, args.classifier_imgsz, seed=args.seed)
    split_max = 64 if args.quick else None
    images, _, paths = split_tensor(loaded, "test", max_images=split_max)
    calibration, _, _ = split_tensor(loaded, "train", per_class=2 if args.quick else 8, seed=args.seed)
    backends = ["onnx-fp32", "onnx-int8", "openvino-fp32"] + (["compile"] if args.compile else [])
    entries = serve.classifier.build_backends(loaded.model, loaded.imgsz, backends=backends, calibration=calibration,
                                              threads=args.threads, workdir=args.workdir, log=log)
    rows = serve.classifier.evaluate_backends(entries, images, rounds=args.rounds, repeats=args.repeats,
                                              throughput_batch=args.batch, throughput_repeats=args.throughput_repeats)
    chosen = serve.classifier.choose(rows)["backend"]
    # end to end, batch 1: a real RGB photo through classify() (resize, normalise, logits, softmax)
    from clothingrec.evaluate import read_image

    photo = read_image(paths[0])
    calls = {}
    for name, e in entries.items():
        if e["module"] is not None:
            served = serve.ServingClassifier(loaded, e["module"], name)
            calls[name] = (lambda s=served: s.classify(photo))
    e2e = compare_latency(calls, rounds=args.rounds, repeats=args.repeats)
    for row in rows:
        if row["backend"] in e2e:
            row["end_to_end"] = e2e[row["backend"]]
            row["model_only"] = row.get("batch1")
    return {"model": "classifier", "description": desc, "imgsz": loaded.imgsz, "agreement_images": int(len(images)),
            "agreement_split": "test" if split_max is None else f"test ({split_max} evenly spaced)",
            "throughput_batch": args.batch, "chosen": chosen, "rows": rows}


def bench_detector(kind: str, args, images, log) -> dict:
    pred, desc = B.resolve_detector(kind, getattr(args, kind), min_size=args.min_size, imgsz=args.yolo_imgsz,
                                    images=images, detections=args.maskrcnn_detections if kind == "maskrcnn"
                                    else args.detections, seed=args.seed, workdir=args.workdir)
    candidates = serve.detector.detector_candidates(pred, threads=args.threads, workdir=args.workdir, log=log)
    timed = min(len(images), 2)  # photos the batch-1 median pools
    rows = serve.detector.evaluate_candidates(candidates, images, rounds=args.rounds, repeats=args.det_repeats,
                                              score_threshold=args.score_threshold, timing_images=timed)
    batch_imgs = [images[i % len(images)] for i in range(args.det_batch)]
    calls = {name: B.detector_batch_call(e["predictor"], batch_imgs) for name, e in candidates.items()
             if e["predictor"] is not None and not any(r["backend"] == name and r.get("error") for r in rows)}
    thr = compare_latency(calls, rounds=max(1, args.rounds - 1), repeats=1, warmup=0)
    for row in rows:
        if row["backend"] in thr:
            t = thr[row["backend"]]
            row["throughput"] = {**t, "batch": args.det_batch, "images_per_s": args.det_batch / (t["median_ms"] / 1000)}
    if serve.detector.is_yolo(pred):  # model-only and the pre / model / post split, same first image
        live = {name: e["predictor"] for name, e in candidates.items() if name in calls}
        model_only = compare_latency({n: B.yolo_model_call(p, images[0]) for n, p in live.items()},
                                     rounds=args.rounds, repeats=max(3, args.det_repeats * 3))
        for row in rows:
            if row["backend"] in live:
                row["end_to_end"] = row.get("batch1")
                row["model_only"] = model_only.get(row["backend"])
                row["stages"] = B.yolo_stages(live[row["backend"]], images[0], repeats=max(3, args.det_repeats * 3))
    usable = [r for r in rows if r.get("agreement", {}).get("agrees") and "batch1" in r]
    chosen = serve.classifier.choose(usable)["backend"] if usable else "eager"
    out = {"model": kind, "description": desc, "agreement_images": len(images), "throughput_batch": args.det_batch,
           "chosen": chosen, "rows": rows}
    if serve.detector.is_yolo(pred):
        out["timing_inputs"] = [yolo_input_label(*im.shape[:2], pred.imgsz) for im in images[:timed]]
        out["by_input"] = yolo_latency_by_input(live, images, pred.imgsz, rounds=args.rounds,
                                                repeats=max(3, args.det_repeats * 3))
    return out


def yolo_input_label(height: int, width: int, imgsz: int) -> str:
    """``"height×width"`` of the network input a photo letterboxes to (minimal stride padding)."""
    from clothingrec.serve.yolo_direct import letterbox_params

    return "{}×{}".format(*letterbox_params(height, width, imgsz)["input"])


def yolo_latency_by_input(predictors: dict, images, imgsz: int, *, rounds: int, repeats: int) -> dict:
    """Batch-1 end-to-end latency of each YOLO predictor per network input shape (one photo of each shape
    among ``images``), with the share of the stored CCP split's photos that letterbox to that shape."""
    from PIL import Image

    from clothingrec.paths import CCP, find_dataset
    from clothingrec.splits import ccp_split

    first: dict[str, object] = {}
    for image in images:
        first.setdefault(yolo_input_label(*image.shape[:2], imgsz), image)
    counts: dict[str, int] = {}
    root = find_dataset(CCP, required=False)
    if root:
        for ids in ccp_split().values():
            for f in (root / "photos" / f"{i}.jpg" for i in ids):
                if not f.is_file():
                    continue
                with Image.open(f) as im:  # header only
                    w, h = im.size
                label = yolo_input_label(h, w, imgsz)
                counts[label] = counts.get(label, 0) + 1
    out = {}
    for label, image in first.items():
        lat = compare_latency({n: (lambda p=p, im=image: p.predict(im)) for n, p in predictors.items()},
                              rounds=rounds, repeats=repeats)
        out[label] = {"ccp_photos": counts.get(label, 0), "ccp_total": sum(counts.values()), "latency": lat}
    return out


def markdown(record: dict) -> list[str]:
    m = record["machine"]
    th = record.get("threads", {})
    lines = ["## Inference: eager PyTorch vs the serving path", "",
             f"{m['date']}; {m['cpu']}, {m['cores']} cores; threads: torch {th.get('torch_num_threads')}, "
             f"ONNX Runtime intra-op {th.get('onnxruntime', {}).get('intra_op_num_threads')} (inter-op 1), "
             f"OpenVINO {th.get('openvino')}; torch {m['versions'].get('torch')}, "
             f"onnxruntime {m['versions'].get('onnxruntime')}, openvino {m['versions'].get('openvino')}; "
             f"load average {m['load_average_1_5_15']} at start; "
             f"VNNI {'yes' if m['cpu_flags'].get('avx512_vnni') else 'no'}"
             f"{' (quick mode: tiny sizes, figures not meaningful)' if record['quick'] else ''}.", "",
             "Backends timed interleaved in rounds; batch-1 = one image per call through the predictor "
             "(classifier: a preprocessed tensor).  ✔ = chosen for serving (fastest that agrees; "
             "a backend replaces eager only when ≥ 1.1× faster).", "",
             "| model | backend | agrees | agreement | batch-1 median ms | p95 ms | speed-up | "
             "throughput img/s (batch) | throughput ratio |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for res in record["results"]:
        if "error" in res:
            lines.append(f"| {res['model']} | – | – | failed: {res['error']} | | | | | |")
            continue
        base_thr = next((r.get("throughput", {}).get("images_per_s") for r in res["rows"] if r["backend"] == "eager"),
                        None)
        for r in res["rows"]:
            a = r.get("agreement") or {}
            if res["model"] == "classifier":
                agr = (f"top-1 {a.get('top1_agreement', float('nan')):.3f} of {a.get('n')}, "
                       f"max Δlogit {a.get('max_abs_logit_diff', float('nan')):.2g}") if a else r.get("error") or "–"
            else:
                agr = (f"{a.get('matched_reference')}/{a.get('reference_boxes')} boxes IoU≥0.9, "
                       f"max Δscore {a.get('max_score_diff', float('nan')):.2g}") if a else r.get("error") or "–"
            b1, t = r.get("batch1") or {}, r.get("throughput") or {}
            ratio = t.get("images_per_s") / base_thr if t.get("images_per_s") and base_thr else None
            mark = " ✔" if r["backend"] == res["chosen"] else ""
            lines.append(f"| {res['model']} | {r['backend']}{mark} | {'yes' if a.get('agrees') else 'no'} | {agr} | "
                         f"{B.fmt(b1.get('median_ms'))} | {B.fmt(b1.get('p95_ms'))} | "
                         f"{B.fmt(r.get('speedup_vs_eager'), 2)}x | {B.fmt(t.get('images_per_s'))} "
                         f"({t.get('batch', '–')}) | "
                         f"{B.fmt(ratio, 2)}x |")
    side = [r for r in record["results"] if "error" not in r and any("end_to_end" in x for x in r["rows"])]
    if side:
        lines += ["", "### Side by side: batch 1, end to end vs model only", "",
                  "End to end = one RGB image in, the project's result out (YOLO: letterbox, model, NMS, "
                  "Detections; classifier: resize, normalise, logits, softmax).  Model only = the backend's "
                  "forward on the prepared tensor.  YOLO's pre / model / post = ultralytics' own per-stage "
                  "figures (medians) for the same calls; for `onnx-fp32-direct` (the exported model called "
                  "without ultralytics' predict) its own letterbox / session / NMS times.", "",
                  "| model | backend | agrees | end to end median ms | p95 ms | model only median ms | "
                  "pre / model / post ms | end-to-end speed-up |",
                  "|---|---|---|---:|---:|---:|---|---:|"]
        for res in side:
            base = next((r["end_to_end"]["median_ms"] for r in res["rows"]
                         if r["backend"] == "eager" and "end_to_end" in r), None)
            for r in res["rows"]:
                if "end_to_end" not in r:
                    continue
                e2e, mo, st = r["end_to_end"], r.get("model_only") or {}, r.get("stages")
                split = (f"{st['preprocess']:.1f} / {st['inference']:.1f} / {st['postprocess']:.1f}" if st else "–")
                mark = " ✔" if r["backend"] == res["chosen"] else ""
                lines.append(f"| {res['model']} | {r['backend']}{mark} | "
                             f"{'yes' if (r.get('agreement') or {}).get('agrees') else 'no'} | "
                             f"{B.fmt(e2e.get('median_ms'), 2)} | {B.fmt(e2e.get('p95_ms'), 2)} | "
                             f"{B.fmt(mo.get('median_ms'), 2)} | {split} | "
                             f"{B.fmt(base / e2e['median_ms'] if base else None, 2)}x |")
        for res in side:
            if res.get("timing_inputs"):
                lines += ["", f"{res['model']}: the batch-1 medians above pool {len(res['timing_inputs'])} photos "
                          f"(network inputs {', '.join(res['timing_inputs'])}); model only and the stage split: "
                          f"the first ({res['timing_inputs'][0]})."]
            if res.get("by_input"):
                shapes = list(res["by_input"])
                lines += ["", f"#### {res['model']}: batch 1 end to end by network input", "",
                          "Each photo is letterboxed to the model's size with the minimal stride padding, so "
                          "photos of one aspect ratio can land on different inputs; one photo of each, timed "
                          "interleaved.  Share = photos of the stored CCP split (all parts) with that input.", "",
                          "| backend | " + " | ".join(f"{s} median / p95 ms" for s in shapes) + " |",
                          "|---|" + "---:|" * len(shapes)]
                backends = list(next(iter(res["by_input"].values()))["latency"])
                for name in backends:
                    mark = " ✔" if name == res["chosen"] else ""
                    cells = [f"{B.fmt(res['by_input'][s]['latency'][name]['median_ms'], 2)} / "
                             f"{B.fmt(res['by_input'][s]['latency'][name]['p95_ms'], 2)}" for s in shapes]
                    lines.append(f"| {name}{mark} | " + " | ".join(cells) + " |")
                share = [f"{res['by_input'][s]['ccp_photos']}/{res['by_input'][s]['ccp_total']}" for s in shapes]
                lines.append("| share of CCP photos | " + " | ".join(share) + " |")
    lines += ["", "Models: " + "; ".join(f"{r['model']}: {r.get('description', '?')}" for r in record["results"]),
              "", f"Detector agreement and latency images: {record.get('agreement_photos', '?')}.", ""]
    return lines


def main(argv=None) -> int:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (seconds)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    p.add_argument("--workdir", type=Path, default=None, help="ONNX export cache (default .cache/serve)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch, ORT intra-op and OpenVINO INFERENCE_NUM_THREADS (default: torch's)")
    p.add_argument("--classifier", default="auto", help="auto | untrained | weights path")
    p.add_argument("--classifier-imgsz", type=int, default=224, help="input size of an untrained classifier")
    p.add_argument("--fasterrcnn", default="auto")
    p.add_argument("--maskrcnn", default="auto")
    p.add_argument("--yolo", default="auto")
    p.add_argument("--detectors", default=",".join(DETECTORS), help="comma-separated subset of " + ",".join(DETECTORS))
    p.add_argument("--min-size", type=int, default=512, help="R-CNN min_size of untrained detectors")
    p.add_argument("--yolo-imgsz", type=int, default=640)
    p.add_argument("--detections", type=int, default=100, help="detections per image (untrained Faster R-CNN)")
    p.add_argument("--maskrcnn-detections", type=int, default=20, help="detections per image (untrained Mask R-CNN)")
    p.add_argument("--images", type=int, default=4, help="CCP val photos for detector agreement and latency")
    p.add_argument("--score-threshold", type=float, default=0.05, help="detector agreement: lowest score compared")
    p.add_argument("--batch", type=int, default=32, help="classifier throughput batch")
    p.add_argument("--det-batch", type=int, default=8, help="detector throughput batch")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20, help="classifier batch-1 calls per round")
    p.add_argument("--det-repeats", type=int, default=3, help="detector batch-1 calls per round")
    p.add_argument("--throughput-repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true",
                   help="also measure torch.compile for the classifier (slow to build)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.classifier_imgsz, args.min_size, args.yolo_imgsz = 64, 128, 128
        args.detections, args.maskrcnn_detections, args.images = 20, 5, 2
        args.batch, args.det_batch, args.rounds, args.repeats, args.det_repeats = 8, 1, 1, 3, 1
        args.throughput_repeats = 1
        args.threads = args.threads or 1
        if args.detectors == ",".join(DETECTORS):  # Mask R-CNN's path is the same code; tests/test_serve.py covers it
            args.detectors = "fasterrcnn,yolo"
        if args.classifier == "auto":
            args.classifier = "untrained"
        for kind in DETECTORS:
            if getattr(args, kind) == "auto":
                setattr(args, kind, "untrained")
    args.threads = int(args.threads or torch.get_num_threads())  # one count, fixed for every backend
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    record = {"quick": args.quick, "machine": B.machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "threads": serve.detector.thread_settings(args.threads), "results": []}
    print(f"[bench] inference: {record['machine']['cpu']}, torch threads {torch.get_num_threads()}")
    try:
        res = bench_classifier(args, print)
    except Exception as exc:  # noqa: BLE001 - one failing model does not stop the others
        res = {"model": "classifier", "error": f"{type(exc).__name__}: {exc}"}
    record["results"].append(res)
    images, record["agreement_photos"] = B.street_photos(args.images)
    for kind in [k.strip() for k in args.detectors.split(",") if k.strip()]:
        if kind not in DETECTORS:
            p.error(f"unknown detector {kind!r}; choose from {DETECTORS}")
        t0 = time.perf_counter()
        try:
            res = bench_detector(kind, args, images, print)
        except Exception as exc:  # noqa: BLE001
            res = {"model": kind, "error": f"{type(exc).__name__}: {exc}"}
        res["wall_s"] = round(time.perf_counter() - t0, 1)
        record["results"].append(res)
        print(f"[bench] {kind}: {res.get('chosen', 'failed')} ({res['wall_s']} s)")
    record["wall_s"] = round(time.perf_counter() - started, 1)
    lines = markdown(record)
    B.write(args.out, "inference", record, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
