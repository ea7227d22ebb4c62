"""How a detector's validation AP depends on the scoring settings, with its weights and images fixed.

For each run folder, the one pycocotools evaluation on the run's stored val part (``evaluate_run``):

- ``kept ≥ 0.05``: the detector keeps scores from 0.05 only (what the torchvision R-CNNs did before
  every backend kept 0.001: torchvision's default ``box_score_thresh``);
- ``kept ≥ 0.001``: the one setting for every backend;
- ``+ flip TTA``: horizontal-flip test-time augmentation (:class:`clothingrec.detect.tta.FlipTTAPredictor`);
- with ``--scales``, instead: the input size (longest side) times each factor, kept ≥ 0.001, rounded
  so that the side a model is sized by stays a multiple of 32 px (YOLO's square, an R-CNN's shorter side);
- with ``--nms``, instead: the IoU of the detector's own duplicate suppression, kept ≥ 0.001.

Writes runs/bench/eval_settings.json and .md.  Figures only: nothing is asserted; a setting is chosen on
val from figures like these, never on test.

    python bench/bench_eval_settings.py                     # the committed detectors with weights
    python bench/bench_eval_settings.py --runs runs/04_train_fasterrcnn/<run>,...
    python bench/bench_eval_settings.py --quick             # the committed YOLO run, 4 images
    python bench/bench_eval_settings.py --runs ... --scales 0.9,1,1.1,1.2   # input sizes → eval_settings_sizes
    python bench/bench_eval_settings.py --runs ... --nms 0.4,0.5,0.6,0.7     # NMS IoU → eval_settings_nms
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from clothingrec.paths import RUNS_DIR, configure_environment, project_relative

import _common as B

SETTINGS = (("kept ≥ 0.05", 0.05, False, None, None), ("kept ≥ 0.001", 0.001, False, None, None),
            ("kept ≥ 0.001 + flip TTA", 0.001, True, None, None))


def scaled_imgsz(family: str, imgsz: int, factor: float) -> int:
    """``imgsz`` times ``factor``, the side the model is sized by kept a multiple of 32 px: YOLO's square
    side, or an R-CNN's shorter side (3/5 of ``imgsz``; the longest side is then rounded from it)."""
    from clothingrec.detect.config import RCNN_FAMILIES, SHORT_SIDE, short_side

    if family in RCNN_FAMILIES:
        short = max(32, 32 * round(short_side(imgsz) * factor / 32))
        return int(round(short / SHORT_SIDE))
    return max(32, 32 * round(imgsz * factor / 32))


def settings_for(run: Path, scales=None, nms=None) -> list[tuple]:
    """(label, lowest score kept, flip TTA, input size, NMS IoU) of each evaluation of ``run``."""
    if nms:
        return [(f"kept ≥ 0.001, NMS IoU {v:g}", 0.001, False, None, float(v)) for v in nms]
    if not scales:
        return list(SETTINGS)
    from clothingrec.runs import RunRecord

    record = RunRecord.load(run)
    sizes = dict.fromkeys(scaled_imgsz(record.family, record.imgsz, f) for f in scales)  # once each, in order
    return [(f"kept ≥ 0.001 at {size} px" + (" (trained)" if size == record.imgsz else ""), 0.001, False, size,
             None) for size in sizes]


def committed_runs() -> list[Path]:
    """The committed detector runs whose weights are in the repository."""
    from clothingrec import zoo

    found = [zoo.committed(role) for role in ("clothing-detector", "person-detector")]
    return [p for p in found if p is not None and p.is_dir()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the committed YOLO run on 4 val images (seconds)")
    p.add_argument("--runs", default=None, help="comma-separated run folders (default: the committed detectors)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scales", default=None,
                   help="comma-separated factors of each run's input size, e.g. 0.9,1,1.1,1.2 (instead of the "
                        "score / TTA settings; writes eval_settings_sizes)")
    p.add_argument("--nms", default=None,
                   help="comma-separated NMS IoUs, e.g. 0.4,0.5,0.6,0.7 (instead; writes eval_settings_nms)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from clothingrec.detect import evaluate_run
    from clothingrec.detect.recipe import find_runs

    runs = find_runs(args.runs)[0] if args.runs else committed_runs()
    if args.quick:
        runs = runs[:1]
    max_images = 4 if args.quick else None
    scales = [float(v) for v in args.scales.split(",")] if args.scales else None
    nms = [float(v) for v in args.nms.split(",")] if args.nms else None
    if scales and nms:
        p.error("--scales and --nms: one study at a time")
    record = {"quick": args.quick, "machine": B.machine(), "threads": args.threads, "scales": scales, "nms": nms,
              "results": [], "skipped": []}
    for run in runs:
        try:
            settings = settings_for(run, scales, nms)
        except (OSError, ValueError) as exc:
            record["skipped"].append(f"{project_relative(run)}: {type(exc).__name__}: {exc}")
            continue
        for label, threshold, tta, imgsz, iou in settings:
            try:
                ev = evaluate_run(run, part="val", device="cpu", max_images=max_images, tta=tta,
                                  score_threshold=threshold, imgsz=imgsz, nms_iou=iou)
            except (OSError, ValueError) as exc:  # a run without weights or data: said, and the rest goes on
                record["skipped"].append(f"{project_relative(run)}: {type(exc).__name__}: {exc}")
                break
            row = {"run": str(project_relative(run)), "name": ev.name, "family": ev.family, "setting": label,
                   "imgsz": ev.metrics["imgsz"], "images": len(ev.predictions.per_image),
                   "bbox_AP": ev.evals["bbox"].stats["AP"],
                   "bbox_AP50": ev.evals["bbox"].stats["AP50"],
                   "segm_AP50": ev.evals["segm"].stats["AP50"] if "segm" in ev.evals else None,
                   "s_per_image": ev.predictions.seconds_per_image}
            record["results"].append(row)
            print(row, flush=True)
    title = "Input size" if scales else "NMS IoU" if nms else "Scoring settings"
    lines = [f"## {title}: validation AP of fixed weights", "",
             f"{record['machine']['date']}; {record['machine']['cpu']}, {record['machine']['cores']} cores; "
             f"load average {record['machine']['load_average_1_5_15']} at start; torch threads {args.threads}; "
             "each run's stored val part, pycocotools.", "",
             "| run | setting | images | bbox AP | bbox AP50 | segm AP50 | s / image |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in record["results"]:
        lines.append(f"| {r['run']} ({r['family']}) | {r['setting']} | {r['images']} | {r['bbox_AP']:.3f} | "
                     f"{r['bbox_AP50']:.3f} | {B.fmt(r['segm_AP50'], 3)} | {r['s_per_image']:.2f} |")
    if record["skipped"]:
        lines += ["", "Skipped: " + "; ".join(record["skipped"])]
    study = "_sizes" if scales else "_nms" if nms else ""
    B.write(args.out, "eval_settings" + study + ("_quick" if args.quick else ""), record, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    configure_environment()
    sys.exit(main())
