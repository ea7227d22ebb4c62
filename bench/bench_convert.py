"""Benchmark: DeepFashion2-sized annotation tree → COCO + YOLO, library converter vs a plain loop.

    python bench/bench_convert.py                # 30,000 annotation files (`--n 191961`: the released train split)
    python bench/bench_convert.py --n 5000       # a smaller tree
    python bench/bench_convert.py --quick        # 300 files, seconds (used by the tests)

1. Writes (once, cached under ``--data``) a tree in the DeepFashion2 layout: ``train/annos/NNNNNN.json``
   with 1–3 items each (the release averages 1.63), every field of the schema (polygons, landmarks in
   the category's count, box, attributes), and ``train/image/NNNNNN.jpg`` *stand-ins*: a real 8×8
   JPEG whose frame header declares the annotated image size (a few hundred bytes, so decoding them
   costs far less than decoding real photos).
2. Times the plain loop: one process, per file ``json.load``, ``PIL.Image.open(...).size``, the
   items converted to COCO dicts (box, polygons, mask area via pycocotools, 294-slot keypoints,
   attributes) and YOLO detect + segment lines written per file, then ``json.dump`` of the COCO dict.
3. Times :func:`clothingrec.convert.convert_split` (the library path behind
   ``prepare_detection_dataset``): process pool over all cores, annotations streamed to disk as JSON
   text; twice: with every image's pixels decoded (the default, which reports corrupt images) and with
   sizes from the headers only (``decode_images=False``: the plain loop's work, the like-for-like row).
4. Checks both produced the same annotations (count, and boxes / areas / YOLO label files compared),
   profiles the library on up to 5,000 of the files (time by part: system calls, JSON parsing and
   encoding, item checks with mask areas, YOLO lines), and writes ``runs/bench/convert_<n>.json`` and
   ``.md``.  Figures only; nothing is asserted about speed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "bench"))

from clothingrec.datasets import deepfashion2 as df2  # noqa: E402
from clothingrec.paths import RUNS_DIR, configure_environment  # noqa: E402

from _common import PeakRSS  # noqa: E402

RELEASED_TRAIN = 191_961
SIZES = [(468, 624), (500, 750), (550, 733), (600, 800), (640, 853), (750, 1000), (800, 800), (480, 640)]


# ------------------------------------------------------------------ tree generation (not timed)
def _tiny_jpeg() -> tuple[bytes, int]:
    """An 8×8 JPEG and the offset of its SOF0 height field."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 90, 60)).save(buf, "JPEG", quality=50)
    data = buf.getvalue()
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xC0:
            return data, i + 5
        i += 2 + length
    raise RuntimeError("no SOF0 in PIL's JPEG")


def _write_range(args) -> int:
    root, start, stop, seed = args
    from clothingrec.synthetic import _outline_points, garment_outline

    jpeg, sof = _tiny_jpeg()
    rng = np.random.default_rng([seed, start])
    annos, images = Path(root) / "train" / "annos", Path(root) / "train" / "image"
    for i in range(start, stop):
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        data = bytearray(jpeg)
        data[sof:sof + 2] = h.to_bytes(2, "big")
        data[sof + 2:sof + 4] = w.to_bytes(2, "big")
        stem = f"{i + 1:06d}"
        (images / f"{stem}.jpg").write_bytes(bytes(data))
        n_items = int(rng.choice([1, 2, 3], p=[0.5, 0.37, 0.13]))
        anno = {"source": "user" if rng.random() < 0.6 else "shop", "pair_id": i // 4 + 1}
        for k in range(1, n_items + 1):
            cat = int(rng.integers(1, 14))
            outline = garment_outline(cat, rng)
            lo, hi = outline.min(0), outline.max(0)
            bw, bh = rng.uniform(0.2, 0.9) * w, rng.uniform(0.2, 0.9) * h
            x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            pts = (outline - lo) / (hi - lo) * [bw, bh] + [x0, y0]
            poly = [round(float(v), 1) for v in pts.reshape(-1)]
            lm = np.round(_outline_points(pts, df2.LANDMARK_COUNTS[cat - 1]), 1).tolist()
            vis = rng.choice(3, size=len(lm), p=[0.1, 0.2, 0.7]).tolist()
            landmarks = []
            for (x, y), v in zip(lm, vis):
                landmarks += [0, 0, 0] if v == 0 else [x, y, v]
            anno[f"item{k}"] = {
                "segmentation": [poly], "scale": int(rng.integers(1, 4)), "viewpoint": int(rng.integers(1, 4)),
                "zoom_in": int(rng.integers(1, 4)), "landmarks": landmarks, "style": int(rng.integers(0, 3)),
                "bounding_box": [int(pts[:, 0].min()), int(pts[:, 1].min()), int(np.ceil(pts[:, 0].max())),
                                 int(np.ceil(pts[:, 1].max()))],
                "category_id": cat, "occlusion": int(rng.integers(1, 4)), "category_name": df2.CATEGORIES[cat - 1],
            }
        (annos / f"{stem}.json").write_text(json.dumps(anno))
    return stop - start


def make_tree(root: Path, n: int, workers: int, seed: int = 0) -> float:
    marker = root / f".complete-{n}-{seed}"
    if marker.exists():
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    (root / "train" / "annos").mkdir(parents=True)
    (root / "train" / "image").mkdir(parents=True)
    (root / "validation" / "annos").mkdir(parents=True)
    (root / "validation" / "image").mkdir(parents=True)
    start = time.perf_counter()
    step = 2000
    jobs = [(str(root), a, min(a + step, n), seed) for a in range(0, n, step)]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap_unordered(_write_range, jobs):
            pass
    marker.touch()
    return time.perf_counter() - start


# ------------------------------------------------------------------ the plain loop
def plain_loop(root: Path, out: Path, dumps: bool = False) -> dict:
    """Straightforward single-process conversion, one file after another.

    ``dumps=False`` writes the COCO file with ``json.dump(coco, f)`` as conversion scripts usually do
    (the official DeepFashion2 one included) — CPython encodes that in pure Python; ``dumps=True``
    writes ``json.dumps(coco)`` (C encoder) instead, to show how much of the gap that alone is.
    """
    from PIL import Image
    from pycocotools import mask as mask_utils

    from clothingrec.convert import yolo as yolo_mod

    det_dir, seg_dir = out / "labels-detect", out / "labels-segment"
    det_dir.mkdir(parents=True)
    seg_dir.mkdir(parents=True)
    images, annotations = [], []
    names = [str(i + 1) for i in range(df2.NUM_LANDMARKS)]
    categories = [{"id": i + 1, "name": c, "supercategory": "clothes", "keypoints": names, "skeleton": []}
                  for i, c in enumerate(df2.CATEGORIES)]
    anno_dir, image_dir = root / "train" / "annos", root / "train" / "image"
    for image_id, anno_path in enumerate(sorted(anno_dir.glob("*.json")), 1):
        with open(anno_path) as f:
            data = json.load(f)
        with Image.open(image_dir / f"{anno_path.stem}.jpg") as im:
            width, height = im.size
        images.append({"id": image_id, "file_name": f"{anno_path.stem}.jpg", "width": width, "height": height,
                       "source": data["source"], "pair_id": data["pair_id"]})
        det_lines, seg_lines = [], []
        for key in sorted((k for k in data if k.startswith("item")), key=lambda k: int(k[4:])):
            item = data[key]
            cat = item["category_id"]
            x1, y1, x2, y2 = item["bounding_box"]
            x1, y1 = min(max(x1, 0), width), min(max(y1, 0), height)
            x2, y2 = min(max(x2, 0), width), min(max(y2, 0), height)
            polys = [[min(max(float(v), 0.0), float(width if j % 2 == 0 else height)) for j, v in enumerate(p)]
                     for p in item["segmentation"] if len(p) >= 6]
            area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polys, height, width))))
            keypoints = [0.0] * (3 * df2.NUM_LANDMARKS)
            start = 3 * df2.LANDMARK_OFFSETS[cat - 1]
            keypoints[start:start + len(item["landmarks"])] = [float(v) for v in item["landmarks"]]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "area": area, "iscrowd": 0,
                "segmentation": polys, "keypoints": keypoints,
                "num_keypoints": sum(1 for v in item["landmarks"][2::3] if v > 0),
                **{k: item[k] for k in ("style", "scale", "occlusion", "zoom_in", "viewpoint")},
                "source": data["source"], "pair_id": data["pair_id"]})
            det_lines.append(yolo_mod.detect_line(cat - 1, (x1, y1, x2, y2), width, height) + "\n")
            seg_lines.append(yolo_mod.segment_line(cat - 1, polys, width, height) + "\n")
        (det_dir / f"{anno_path.stem}.txt").write_text("".join(det_lines))
        (seg_dir / f"{anno_path.stem}.txt").write_text("".join(seg_lines))
    coco = {"info": {"description": "plain loop"}, "licenses": [], "images": images,
            "annotations": annotations, "categories": categories}
    with open(out / "instances_train.json", "w") as f:
        if dumps:
            f.write(json.dumps(coco))
        else:
            json.dump(coco, f)
    return {"images": len(images), "annotations": len(annotations)}


# ------------------------------------------------------------------ the library
def library(root: Path, out: Path, workers: int, progress: bool | None = None, decode: bool = True,
            limit: int | None = None) -> dict:
    from clothingrec.convert import coco as coco_mod
    from clothingrec.convert import convert_split, list_entries

    entries, _ = list_entries("deepfashion2", root)
    result = convert_split("deepfashion2", "train", entries["train"][:limit], coco_mod.df2_categories(),
                           out / "instances_train.json", detect_dir=out / "labels-detect",
                           segment_dir=out / "labels-segment", workers=workers, progress=progress,
                           options={"decode_images": decode})
    return {"images": len(result.images), "annotations": result.n_annotations, "issues": len(result.issues)}


#: where a profiled function's own time goes: (label, test on (file, function name)), first match wins
PROFILE_PHASES = [
    ("file open / read / write (system calls)", lambda f, fn: f == "~" and (
        fn in ("<built-in method io.open>", "<built-in method posix.open>", "<built-in method posix.write>")
        or fn.startswith(("<method 'read' of '_io", "<method 'write' of '_io", "<method '__exit__' of '_io",
                          "<method 'seek' of '_io", "<method 'close' of '_io")))),
    ("JSON parsing", lambda f, fn: "json/decoder" in f or "json/__init__" in f and fn == "loads"
     or fn in ("load_json", "_risky_number", "_json_object") or fn == "<method 'translate' of 'bytes' objects>"),
    ("JSON encoding (COCO annotations)", lambda f, fn: "json/encoder" in f or "json/__init__" in f
     or f.endswith("convert/coco.py")),
    ("YOLO label lines", lambda f, fn: f.endswith("convert/yolo.py") or fn == "<method 'format' of 'str' objects>"),
    ("image header", lambda f, fn: fn in ("image_size", "_header_size", "_jpeg_size")),
    ("items: reading, checks, polygon mask area (pycocotools)", lambda f, fn: "pycocotools" in f
     or f.endswith(("datasets/deepfashion2.py", "datasets/records.py"))),
    ("paths (pathlib)", lambda f, fn: f.endswith("pathlib.py")),
]


def profile_library(root: Path, out: Path, limit: int) -> dict:
    """Where the library's time goes: its conversion of the first ``limit`` files in-process (one worker,
    the tree listed beforehand) under cProfile, each function's own time summed by :data:`PROFILE_PHASES`
    (the rest: "other").  Profiling slows Python code more than system calls, so the shares are indicative."""
    import cProfile
    import pstats

    from clothingrec.convert import coco as coco_mod
    from clothingrec.convert import convert_split, list_entries

    entries = list_entries("deepfashion2", root)[0]["train"][:limit]  # listing the tree is not profiled
    prof = cProfile.Profile()
    prof.enable()
    convert_split("deepfashion2", "train", entries, coco_mod.df2_categories(), out / "instances_train.json",
                  detect_dir=out / "labels-detect", segment_dir=out / "labels-segment", workers=1, progress=False,
                  options={"decode_images": False})
    prof.disable()
    totals: dict[str, float] = {}
    for (path, _, fn), (_, _, own, _, _) in pstats.Stats(prof).stats.items():
        label = next((name for name, test in PROFILE_PHASES if test(path, fn)), "other (bookkeeping, builtins, pool)")
        totals[label] = totals.get(label, 0.0) + own
    total = sum(totals.values())
    return {"files": limit, "ms_per_file": {k: round(1000 * v / limit, 3) for k, v in
                                            sorted(totals.items(), key=lambda kv: -kv[1])},
            "share": {k: round(v / total, 3) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}}


def compare(plain: Path, lib: Path, n: int, full_json: bool) -> dict:
    """Same outputs?  YOLO label files (a sample of 500, or all) byte for byte; COCO when small."""
    names = sorted(p.name for p in (plain / "labels-detect").iterdir())
    sample = names if len(names) <= 500 else [names[i] for i in np.linspace(0, len(names) - 1, 500).astype(int)]
    same_labels = all((plain / d / x).read_bytes() == (lib / d / x).read_bytes()
                      for d in ("labels-detect", "labels-segment") for x in sample)
    out = {"label_files_compared": 2 * len(sample), "label_files_identical": same_labels}
    if full_json:
        a = json.loads((plain / "instances_train.json").read_text())
        b = json.loads((lib / "instances_train.json").read_text())
        keys = ("id", "image_id", "category_id", "bbox", "area", "segmentation", "keypoints", "num_keypoints")
        out["coco_annotations_identical"] = ([{k: x[k] for k in keys} for x in a["annotations"]] ==
                                             [{k: x[k] for k in keys} for x in b["annotations"]])
        out["coco_images_identical"] = a["images"] == b["images"]
    return out


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv=None) -> int:
    configure_environment()  # project caches, offline: before any model (ultralytics) is loaded
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30_000,
                   help=f"annotation files (default 30000, a full `make bench` in minutes; "
                        f"{RELEASED_TRAIN} = DF2 train)")
    p.add_argument("--quick", action="store_true", help="300 files: a smoke run of the benchmark itself")
    p.add_argument("--workers", type=int, default=cpu_count())
    p.add_argument("--data", type=Path, default=None, help="where the generated tree lives (cached)")
    p.add_argument("--out", type=Path, default=RUNS_DIR / "bench")
    p.add_argument("--keep", action="store_true", help="keep the converted outputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for the library's conversion")
    args = p.parse_args(argv)
    n = 300 if args.quick else args.n
    data = args.data or (RUNS_DIR / "bench" / "data" / f"df2_tree_{n}")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.out / f"convert_work_{n}"
    shutil.rmtree(work, ignore_errors=True)
    gen_s = make_tree(data, n, args.workers)
    print(f"[bench] tree of {n} annotation files at {data} ({f'generated in {gen_s:.1f} s' if gen_s else 'cached'})")
    import resource

    def cpu() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    rows = {}
    methods = [("plain loop (1 process, json.dump)", "plain", lambda o: plain_loop(data, o)),
               ("plain loop (1 process, json.dumps)", "plain_dumps", lambda o: plain_loop(data, o, dumps=True)),
               (f"clothingrec.convert ({args.workers} workers, headers only)", "lib",
                lambda o: library(data, o, args.workers, progress=False if args.no_progress else None, decode=False)),
               (f"clothingrec.convert ({args.workers} workers, pixels decoded)", "lib_decoded",
                lambda o: library(data, o, args.workers, progress=False if args.no_progress else None))]
    for name, folder, fn in methods:
        o = work / folder
        o.mkdir(parents=True)
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), cpu()
            counts = fn(o)
            wall, cpu_s = time.perf_counter() - t0, cpu() - c0
        rows[name] = {"wall_s": round(wall, 2), "files_per_s": round(n / wall, 1), "cpu_s": round(cpu_s, 2),
                      "cpu_ms_per_file": round(1000 * cpu_s / n, 2), "peak_rss_mb": round(mem.peak_mb, 1),
                      "rss_before_mb": round(mem.base_mb, 1), **counts}
        print(f"[bench] {name}: {wall:.1f} s wall, {n / wall:.0f} files/s, {cpu_s:.1f} s CPU, "
              f"peak memory {mem.peak_mb:.0f} MB (PSS, process tree), {counts}")
    plain_key, _, lib_key, decoded_key = list(rows)
    speedup = rows[plain_key]["wall_s"] / rows[lib_key]["wall_s"]
    speedup_decoded = rows[plain_key]["wall_s"] / rows[decoded_key]["wall_s"]
    check = compare(work / "plain", work / "lib", n, full_json=n <= 5000)
    check["decoded_label_files_identical"] = compare(work / "lib", work / "lib_decoded", n,
                                                     full_json=False)["label_files_identical"]
    print(f"[bench] speed-up {speedup:.2f}x (headers only), {speedup_decoded:.2f}x (pixels decoded); outputs: {check}")
    profile_dir = work / "profiled"
    profile_dir.mkdir(parents=True)
    profile = profile_library(data, profile_dir, min(n, 5000))
    print(f"[bench] profile of the library, ms per file: {profile['ms_per_file']}")
    import subprocess

    try:
        cpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True)
                   .stdout.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001
        cpu = platform.processor()
    result = {"benchmark": "convert", "n_files": n, "workers": args.workers, "cpu": cpu, "cores": cpu_count(),
              "load_average_at_end": os.getloadavg(), "generated_s": round(gen_s, 1), "results": rows,
              "speedup": round(speedup, 2), "speedup_pixels_decoded": round(speedup_decoded, 2), "outputs": check,
              "library_profile": profile,
              "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    stem = f"convert_{'quick' if args.quick else n}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# Conversion benchmark: {n} DeepFashion2 annotation files → COCO + YOLO", "",
          f"CPU: {cpu}, {cpu_count()} cores usable; load average at the end {os.getloadavg()[0]:.1f} "
          "(the machine is shared: wall times include other users' load).", "",
          "| method | wall (s) | files/s | CPU (s) | CPU ms/file | peak memory (MB, PSS of the process tree) "
          "| images | annotations |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    md += [f"| {k} | {v['wall_s']} | {v['files_per_s']} | {v['cpu_s']} | {v['cpu_ms_per_file']} | "
           f"{v['peak_rss_mb']} | {v['images']} | {v['annotations']} |" for k, v in rows.items()]
    md += ["", f"Speed-up (wall, plain loop with json.dump → library, both reading sizes from headers): "
           f"**{speedup:.2f}x**; against the plain loop with json.dumps: "
           f"{rows[list(rows)[1]]['wall_s'] / rows[lib_key]['wall_s']:.2f}x.  With every image's pixels decoded "
           f"as well (the library's default; work the plain loop does not do): {speedup_decoded:.2f}x.  "
           f"Outputs compared (plain json.dump vs library): {check}.", "",
           f"Where the library's time goes (its first {profile['files']} files in one process under cProfile, "
           "each function's own time; profiling inflates Python code more than system calls):", "",
           "| part | ms per file (profiled) | share |", "|---|---:|---:|"]
    md += [f"| {k} | {v} | {100 * profile['share'][k]:.0f} % |" for k, v in profile["ms_per_file"].items()]
    md += [""]
    (args.out / f"{stem}.md").write_text("\n".join(md))
    print(f"[bench] wrote {args.out / (stem + '.json')} and .md")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
