"""Detection datasets → COCO instances JSON + YOLO labels + ``data.yaml``, with a conversion report.

:func:`prepare_detection_dataset` is what notebooks call::

    ds = prepare_detection_dataset("synthetic-df2", out_dir, task="segment")
    ds.coco_json["train"], ds.image_dir["val"], ds.yolo_yaml, ds.class_names, ds.report

Layout under ``out_dir``::

    images/<split>/<file>          symlinks to the source images (never copies)
    labels-detect/<split>/<stem>.txt, labels-segment/<split>/<stem>.txt   both YOLO label sets
    labels -> labels-<task>        the set ultralytics reads (it maps images/ → labels/)
    annotations/instances_<split>.json   COCO
    data.yaml, report.{json,csv,txt}, prepared.json (inputs fingerprint), split.json (Penn-Fudan, CCP)

Splits ``train`` / ``val`` / ``test`` (:data:`SPLITS`; ``data.yaml`` names each split there is, so
ultralytics' ``split="test"`` reads the test images):

- CCP: the stored split :func:`clothingrec.splits.ccp_split` (``configs/splits/ccp.json``: 70 / 10 / 20 %
  by image id, seed 0), whatever ``seed`` says (a training seed is not a split seed); the clothing
  detectors and the person detector (``classes="person"``) get the same ids;
- Penn-Fudan: :func:`clothingrec.splits.seeded_split` by file stem with the same rule and fractions
  (``val_fraction``, ``test_fraction``, ``seed``), stored in ``split.json``;
- DeepFashion2: its release folders, ``train`` and ``validation`` (→ ``val``); ``test`` only when the
  copy has ``test/annos`` (the public release's test annotations are withheld), otherwise there is
  no test split (:attr:`PreparedDataset.splits` lists what there is) and the report says so.

``max_images`` caps the total: the split is computed on the full dataset first (so it is the same
split), then each part keeps its first images (sorted by name) in proportion (largest remainder, so the
parts add up to ``max_images``), at least one each.

Conversion runs in parallel over processes (``workers``, default one per core), each worker reading
one image's annotation, validating it (:mod:`clothingrec.datasets.records`: one set of rules for
every reader), decoding the image's pixels completely (a truncated file is reported, not kept) and
writing that image's YOLO labels; the parent assembles the COCO JSON in image order, so
output is byte-identical whatever the number of workers.  Every item of a kept image is either
converted or reported (:meth:`ConversionReport.check`), and every JSON written is strict
(``allow_nan=False``: no ``NaN`` / ``Infinity``).  A re-run with unchanged inputs and options
reuses the output (``prepared.json`` fingerprint: file names, sizes and mtimes).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clothingrec.convert import coco as coco_mod
from clothingrec.convert import yolo as yolo_mod
from clothingrec.convert.report import ConversionReport
from clothingrec.datasets import ccp as ccp_mod
from clothingrec.datasets import deepfashion2 as df2_mod
from clothingrec.datasets import pennfudan as pf_mod
from clothingrec.datasets.records import Issue, ReadResult
from clothingrec.splits import FRACTIONS

FORMAT_VERSION = 6  # 5: train / val / test; 6: strict validation, pixels decoded, items_in in the report
#: below this many images a split is converted in-process (a process pool costs more than it saves)
PARALLEL_MIN_JOBS = 64
SPLITS = ("train", "val", "test")
DATASET_NAMES = ("synthetic-df2", "deepfashion2", "ccp", "synthetic-pennfudan", "pennfudan")

__all__ = ["PreparedDataset", "prepare_detection_dataset", "read_dataset", "resolve_source",
           "convert_split", "sync_links", "ConversionReport"]


@dataclass
class PreparedDataset:
    """A converted detection dataset (see the module doc for the layout)."""

    name: str
    root: Path
    source: Path
    kind: str  # deepfashion2 | ccp | pennfudan
    task: str
    classes: str
    categories: list[dict]
    class_names: list[str]
    coco_json: dict[str, Path]
    image_dir: dict[str, Path]
    label_dir: dict[str, Path]
    yolo_yaml: Path
    report: ConversionReport
    num_images: dict[str, int] = field(default_factory=dict)
    reused: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        """The parts this dataset has, in :data:`SPLITS` order (DeepFashion2 without a test folder: no ``test``)."""
        return tuple(s for s in SPLITS if s in self.coco_json)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.num_images.items())
        return (f"PreparedDataset({self.name!r}, kind={self.kind}, task={self.task}, classes={self.classes}, "
                f"{len(self.class_names)} classes, images: {counts})")


# ------------------------------------------------------------------ sources
def _detect_kind(path: Path) -> str:
    if (path / "train" / "annos").is_dir() or (path / "validation" / "annos").is_dir():
        return "deepfashion2"
    if (path / "PNGImages").is_dir():
        return "pennfudan"
    if (path / "annotations" / "pixel-level").is_dir():
        return "ccp"
    raise ValueError(f"{path} is not a DeepFashion2, Penn-Fudan or CCP folder (no train/annos, PNGImages "
                     "or annotations/pixel-level)")


def resolve_source(name: str | os.PathLike) -> tuple[str, Path]:
    """``(kind, folder)`` of a dataset name (see :data:`DATASET_NAMES`) or a path to a dataset folder.

    The synthetic sets are written (with ``make data``'s sizes) when absent.
    """
    from clothingrec import paths

    name_s = str(name)
    if name_s == "synthetic-df2":
        root = paths.SYNTHETIC_DIR / paths.DEEPFASHION2
        if not (root / "train" / "annos").is_dir():
            from clothingrec.synthetic import write_deepfashion2

            print(f"[convert] writing the synthetic DeepFashion2 set to {root}")
            write_deepfashion2(root, n_train=48, n_val=16, seed=0)
        return "deepfashion2", root
    if name_s == "synthetic-pennfudan":
        root = paths.SYNTHETIC_DIR / paths.PENNFUDAN
        if not (root / "PNGImages").is_dir():
            from clothingrec.synthetic import write_pennfudan

            print(f"[convert] writing the synthetic Penn-Fudan set to {root}")
            write_pennfudan(root, n=40, seed=0)
        return "pennfudan", root
    if name_s == "deepfashion2":
        return "deepfashion2", paths.find_dataset(paths.DEEPFASHION2)
    if name_s == "ccp":
        return "ccp", paths.find_dataset(paths.CCP)
    if name_s == "pennfudan":
        return "pennfudan", paths.find_dataset(paths.PENNFUDAN)
    path = Path(name_s)
    if path.is_dir():
        return _detect_kind(path), path
    raise ValueError(f"unknown dataset {name_s!r}: use one of {', '.join(DATASET_NAMES)} or a dataset folder")


# ------------------------------------------------------------------ listing and splitting
@dataclass
class Entry:
    """One image of a split: the paths its reader needs, or the issue that already disqualifies it."""

    stem: str
    paths: tuple[str, ...] | None
    issue: Issue | None = None


DF2_NO_TEST = ("DeepFashion2: no test split (this copy has no test/annos; the public release withholds the "
               "test annotations), so only train and val (= validation) are converted")


def list_entries(kind: str, root: Path, val_fraction: float = FRACTIONS["val"],
                 test_fraction: float = FRACTIONS["test"], seed: int = 0) -> tuple[dict[str, list[Entry]], dict]:
    """Entries per split (sorted by stem) and the split description written to ``split.json``.

    DeepFashion2 gives ``test`` only when its copy has ``test/annos``; CCP ignores ``val_fraction``,
    ``test_fraction`` and ``seed`` (its split is the stored one); see the module doc.
    """
    from clothingrec.splits import ccp_split, ccp_split_info, seeded_split

    warnings = []  # folders that exist but hold nothing to convert (the report shows them)
    if kind == "deepfashion2":
        out = {}
        for split in SPLITS:
            folder = root / df2_mod.SPLITS.get(split, split)
            if split == "test" and not (folder / "annos").is_dir():
                continue  # no test split: not invented
            if not folder.is_dir():
                out[split] = []
                continue
            missing = [p.name for p in (folder / "image", folder / "annos") if not p.is_dir()]
            if missing:
                warnings.append(f"split folder {folder.name}/ exists but has no {' or '.join(missing)}/ folder: "
                                f"split {split} is empty")
                out[split] = []
                continue
            pairs, issues = df2_mod.list_split(root, split)
            entries = [Entry(Path(i).stem, (str(i), str(a))) for i, a in pairs]
            entries += [Entry(Path(iss.file).stem, None, iss) for iss in issues]
            if not entries:
                warnings.append(f"split folder {folder.name}/ exists but holds no images or annotations: "
                                f"split {split} is empty")
            out[split] = sorted(entries, key=lambda e: e.stem)
        rule = "DeepFashion2 release split (train / validation" + (" / test)" if "test" in out else ")")
        return out, {"rule": rule, **({} if "test" in out else {"test": DF2_NO_TEST}),
                     **({"warnings": warnings} if warnings else {})}
    if kind == "pennfudan":
        triples, issues = pf_mod.list_images(root)
        if not triples and not issues:
            warnings.append("PNGImages/ exists but holds no .png image: every split is empty")
        entries = [Entry(Path(p).stem, tuple(map(str, (p, m, a)))) for p, m, a in triples]
        entries += [Entry(Path(iss.file).stem, None, iss) for iss in issues]
        split = seeded_split([e.stem for e in entries], val_fraction=val_fraction, test_fraction=test_fraction,
                             seed=seed)
        desc = {"rule": f"clothingrec.splits.seeded_split(stems, val_fraction={val_fraction}, "
                        f"test_fraction={test_fraction}, seed={seed})", **split}
    elif kind == "ccp":
        pairs, issues = ccp_mod.list_images(root)
        if not pairs and not issues:
            warnings.append("annotations/pixel-level/ exists but holds no .mat label map: every split is empty")
        entries = [Entry(Path(m).stem, (str(p), str(m))) for p, m in pairs]
        entries += [Entry(Path(iss.file).stem, None, iss) for iss in issues]
        split = ccp_split([e.stem for e in entries])
        info = ccp_split_info()
        desc = {"rule": "clothingrec.splits.ccp_split(): the stored split configs/splits/ccp.json",
                "seed": info["seed"], "fractions": info["fractions"], "digest": info["digest"], **split}
    else:
        raise ValueError(kind)
    if warnings:
        desc["warnings"] = warnings
    by_stem = {e.stem: e for e in entries}
    return {s: [by_stem[x] for x in split[s]] for s in SPLITS}, desc


def _cap(entries: dict[str, list[Entry]], max_images: int | None) -> dict[str, list[Entry]]:
    if max_images is None:
        return entries
    total = sum(len(v) for v in entries.values())
    if max_images >= total:
        return entries
    # largest remainder: the shares add up to max_images, each non-empty part keeps at least one image
    quota = {split: max_images * len(items) / total for split, items in entries.items()}
    share = {split: max(1, int(quota[split])) if items else 0 for split, items in entries.items()}
    order = list(entries)
    rest = sorted((s for s in entries if entries[s]), key=lambda s: (-(quota[s] - int(quota[s])), order.index(s)))
    for split in rest[:max(0, max_images - sum(share.values()))]:
        share[split] += 1
    return {split: items[:share[split]] for split, items in entries.items()}


# ------------------------------------------------------------------ per-image work (runs in workers)
def _read(kind: str, paths: tuple[str, ...], split: str, options: dict) -> ReadResult:
    decode = options.get("decode_images", True)  # every pixel decoded before an image is kept
    if kind == "deepfashion2":
        return df2_mod.read_image(paths[0], paths[1], split, decode=decode)
    with_polygons = options.get("with_polygons", True)
    if kind == "pennfudan":
        return pf_mod.read_image(paths[0], paths[1], paths[2], split, with_polygons=with_polygons, decode=decode)
    if kind == "ccp":
        return ccp_mod.read_image(paths[0], paths[1], split, classes=options["classes"],
                                  min_pixels=options.get("min_pixels", ccp_mod.DEFAULT_MIN_PIXELS),
                                  with_polygons=with_polygons, decode=decode)
    raise ValueError(kind)


def convert_one(job: tuple) -> tuple:
    """Worker: read one image, write its YOLO labels; return ``(image entry | None, annotation JSON
    texts, category ids, issues, items in)``.  Annotations travel as JSON text (strict: no NaN or
    Infinity): cheap to send back, and the parent writes them out as they are."""
    kind, split, image_id, paths, options = job
    try:
        result = _read(kind, paths, split, options)
        record = result.record
        if record is None:
            return None, [], [], result.issues, 0
        anns = coco_mod.record_annotations(record, keypoints=(kind == "deepfashion2"))
        texts = [coco_mod.annotation_text(a) for a in anns]
        image = coco_mod.image_entry(record, image_id)
        coco_mod._dumps(image)  # strict JSON or ValueError, before any label file is written
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen file problem must not stop the run
        return None, [], [], [Issue(Path(paths[-1]).name, "", "file", f"{type(exc).__name__}: {exc}", split,
                                    "image")], 0
    det, seg, no_outline = yolo_mod.record_lines(record)
    stem = record.path.stem
    issues = list(result.issues)
    if options.get("segment_dir"):  # kept in COCO and labels-detect, absent from labels-segment: said so
        issues.extend(Issue(record.path.name, record.objects[i].name or f"object {i + 1}", "segmentation",
                            "no outline of 3 or more points: in the box labels, not in labels-segment", split,
                            "field")
                      for i in no_outline)
    for key, text in (("detect_dir", det), ("segment_dir", seg)):
        folder = options.get(key)
        if folder:
            with open(os.path.join(folder, stem + ".txt"), "wb") as f:
                f.write(text.encode("utf-8"))
    items_in = len(record.objects) if result.items_in is None else result.items_in
    return image, texts, [a["category_id"] for a in anns], issues, items_in


def _cpu_count() -> int:
    # same rule as clothingrec.device.cpu_count, without importing torch (seconds) into converters
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def read_one(job: tuple) -> ReadResult:
    """Worker for :func:`read_dataset`: one image's record (masks dropped unless asked for)."""
    kind, split, image_id, paths, options = job
    try:
        result = _read(kind, paths, split, options)
    except Exception as exc:  # noqa: BLE001
        return ReadResult(None, [Issue(Path(paths[-1]).name, "", "file", f"{type(exc).__name__}: {exc}",
                                       split, "image")])
    if result.record is not None:
        result.record.image_id = image_id
        if not options.get("keep_masks"):
            for obj in result.record.objects:
                obj.mask = None
    return result


def read_dataset(name: str | os.PathLike, split: str = "train", *, max_images: int | None = None,
                 classes: str | None = None, seed: int = 0, keep_masks: bool = False,
                 with_polygons: bool = False, workers: int | None = None, progress: bool | None = None):
    """Read one split of a detection dataset into records (for analysis): ``(records, issues, kind)``.

    ``split``: ``train``, ``val`` or ``test`` (DeepFashion2: ``test`` only where the copy has one).
    Same names, split rule and validation as :func:`prepare_detection_dataset`; ``max_images`` takes
    the first images of the split by name.  ``classes`` for CCP may also be ``"all"`` (garment groups
    and the person silhouette).  Masks are dropped unless ``keep_masks`` (they are large); polygons
    of mask datasets are traced only with ``with_polygons``.
    """
    kind, source = resolve_source(name)
    if classes is None:
        classes = "person" if kind == "pennfudan" else ("all" if kind == "ccp" else "garments")
    entries, _ = list_entries(kind, source, seed=seed)
    if split not in entries:
        raise ValueError(f"{name} has no {split!r} split (it has {', '.join(entries)})"
                         + (f": {DF2_NO_TEST}" if kind == "deepfashion2" and split == "test" else ""))
    chosen = entries[split][:max_images]
    issues = [e.issue for e in chosen if e.issue is not None]
    jobs = [(kind, split, i + 1, e.paths, {"classes": classes, "keep_masks": keep_masks,
                                           "with_polygons": with_polygons})
            for i, e in enumerate(e for e in chosen if e.issue is None)]
    workers = _cpu_count() if workers is None else workers
    progress = (os.environ.get("TQDM_DISABLE", "0") in ("", "0")) if progress is None else progress
    records = []
    for result in _map(jobs, workers, f"read {kind}/{split}", progress, fn=read_one):
        issues.extend(result.issues)
        if result.record is not None:
            records.append(result.record)
    return records, issues, kind


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _imap(jobs: list[tuple], workers: int, desc: str, progress: bool, fn=None):
    """Yield ``fn(job)`` (default :func:`convert_one`) for each job, in order, as results arrive.

    Uses a process pool (``fork`` on Linux; ``CLOTHINGREC_MP_START`` overrides) in chunks when there
    are at least :data:`PARALLEL_MIN_JOBS` jobs and more than one worker; otherwise runs in-process.
    """
    fn = fn or convert_one
    if workers <= 1 or len(jobs) < PARALLEL_MIN_JOBS:
        yield from _progress(map(fn, jobs), len(jobs), desc, progress)
        return
    import multiprocessing as mp

    method = os.environ.get("CLOTHINGREC_MP_START", "fork" if sys.platform.startswith("linux") else "spawn")
    chunk = max(1, min(256, len(jobs) // (workers * 8)))
    with mp.get_context(method).Pool(workers) as pool:
        yield from _progress(pool.imap(fn, jobs, chunksize=chunk), len(jobs), desc, progress)


def _map(jobs: list[tuple], workers: int, desc: str, progress: bool, fn=None) -> list:
    return list(_imap(jobs, workers, desc, progress, fn))


@dataclass
class SplitResult:
    """What :func:`convert_split` wrote: image entries (in id order), one category id per annotation,
    the issues and the number of images that went in."""

    images: list[dict]
    category_ids: list[int]
    issues: list[Issue]
    images_in: int
    items_in: int = 0  # objects in the annotations of the kept images (= annotations + item-level issues)

    @property
    def n_annotations(self) -> int:
        return len(self.category_ids)


def convert_split(kind: str, split: str, entries: list[Entry], categories: list[dict], coco_path: Path, *,
                  detect_dir: Path | None = None, segment_dir: Path | None = None,
                  options: dict | None = None, workers: int | None = None, progress: bool | None = None,
                  description: str = "") -> SplitResult:
    """Convert one split: COCO JSON streamed to ``coco_path``, YOLO labels written by the workers."""
    options = dict(options or {})
    for key, folder in (("detect_dir", detect_dir), ("segment_dir", segment_dir)):
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            options[key] = str(folder)
    workers = _cpu_count() if workers is None else workers
    progress = (os.environ.get("TQDM_DISABLE", "0") in ("", "0")) if progress is None else progress
    issues: list[Issue] = [e.issue for e in entries if e.issue is not None]
    jobs = [(kind, split, 0, e.paths, options) for e in entries if e.issue is None]
    jobs = [(k, s, i + 1, p, o) for i, (k, s, _, p, o) in enumerate(jobs)]  # image ids 1.. in name order
    writer = coco_mod.CocoWriter(coco_path, categories, description)
    category_ids: list[int] = []
    items_in = 0
    for image, texts, cats, image_issues, n_items in _imap(jobs, workers, f"{kind}/{split}", progress):
        issues.extend(image_issues)
        if image is not None:
            writer.add(image, texts)
            category_ids.extend(cats)
            items_in += n_items
    writer.close()
    return SplitResult(writer.images, category_ids, issues, len(entries), items_in)


# ------------------------------------------------------------------ the entry point
def _fingerprint(kind: str, root: Path, entries: dict[str, list[Entry]], params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": FORMAT_VERSION, "kind": kind, "root": str(root.resolve()), **params},
                        sort_keys=True).encode())
    for split in sorted(entries):
        for e in entries[split]:
            h.update(f"{split}|{e.stem}|".encode())
            for p in e.paths or ():
                try:
                    st = os.stat(p)
                    h.update(f"{Path(p).name}:{st.st_size}:{st.st_mtime_ns};".encode())
                except OSError:
                    h.update(f"{p}:missing;".encode())
            if e.issue is not None:
                h.update(str(e.issue).encode())
    return h.hexdigest()


def _link_images(images: list[dict], entries: list[Entry], image_dir: Path) -> None:
    sources = {Path(e.paths[0]).name: Path(e.paths[0]) for e in entries if e.paths}
    sync_links(image_dir, {image["file_name"]: sources[image["file_name"]] for image in images})


def sync_links(folder: Path, targets: dict[str, Path]) -> None:
    """``folder/<name>`` → each target's real file, and no other link in ``folder`` (a link left from an
    earlier split would otherwise still be read by ultralytics, which lists the folder). Each link is
    replaced atomically, so two runs preparing one folder at once each leave it whole."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        link, real = folder / name, os.path.realpath(target)
        if link.is_symlink() and os.readlink(link) == real:
            continue
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(real, tmp)
        os.replace(tmp, link)
    for stale in folder.iterdir():
        if stale.name not in targets and not stale.name.startswith(".") and stale.is_symlink():
            stale.unlink(missing_ok=True)


def _clear_labels(folder: Path) -> None:
    if folder.is_dir():
        for f in folder.iterdir():
            if f.suffix in (".txt", ".cache"):
                f.unlink()


def _set_task_labels(root: Path, task: str) -> Path:
    link = root / "labels"
    target = f"labels-{task}"
    if link.is_symlink():
        if os.readlink(link) == target:
            return link
        link.unlink()
    elif link.exists():
        raise FileExistsError(f"{link} exists and is not a symlink; remove it")
    link.symlink_to(target, target_is_directory=True)
    return link


def prepare_detection_dataset(name: str | os.PathLike, out_dir: str | os.PathLike, *, task: str = "detect",
                              max_images: int | None = None, seed: int = 0, classes: str | None = None,
                              workers: int | None = None, progress: bool | None = None,
                              val_fraction: float = FRACTIONS["val"], test_fraction: float = FRACTIONS["test"],
                              decode_images: bool = True, force: bool = False) -> PreparedDataset:
    """Read, split and convert a detection dataset into ``out_dir`` (see the module doc).

    ``classes``: ``"garments"`` (DeepFashion2's 13 categories, or CCP's garment groups) or
    ``"person"`` (CCP silhouettes, Penn-Fudan pedestrians).  Default: ``person`` for Penn-Fudan,
    ``garments`` otherwise.  ``task``: which YOLO label set ``labels/`` points at (both are written).
    ``seed``, ``val_fraction`` and ``test_fraction`` define the Penn-Fudan split; CCP's is the stored
    one (:func:`clothingrec.splits.ccp_split`) whatever they say.

    ``decode_images``: decode every image's pixels before keeping it (default), so a truncated or corrupt
    file is reported instead of failing a training later; ``False`` reads sizes from the headers only
    (several times faster on real photos; the report then says pixels were not checked).

    Two processes preparing the same ``out_dir`` at once (two trainings started together) take turns:
    the second waits for the first, then reuses its folder.
    """
    from clothingrec.paths import building

    with building(out_dir):
        return _prepare_detection_dataset(
            name, out_dir, task=task, max_images=max_images, seed=seed, classes=classes, workers=workers,
            progress=progress, val_fraction=val_fraction, test_fraction=test_fraction,
            decode_images=decode_images, force=force)


def _prepare_detection_dataset(name: str | os.PathLike, out_dir: str | os.PathLike, *, task: str = "detect",
                               max_images: int | None = None, seed: int = 0, classes: str | None = None,
                               workers: int | None = None, progress: bool | None = None,
                               val_fraction: float = FRACTIONS["val"], test_fraction: float = FRACTIONS["test"],
                               decode_images: bool = True, force: bool = False) -> PreparedDataset:
    if task not in ("detect", "segment"):
        raise ValueError(f"task must be 'detect' or 'segment', not {task!r}")
    kind, source = resolve_source(name)
    if classes is None:
        classes = "person" if kind == "pennfudan" else "garments"
    if classes not in ("garments", "person"):
        raise ValueError(f"classes must be 'garments' or 'person', not {classes!r}")
    if kind == "pennfudan" and classes != "person":
        raise ValueError("Penn-Fudan has only pedestrians: use classes='person'")
    if kind == "deepfashion2" and classes != "garments":
        raise ValueError("DeepFashion2 has no person annotations: use classes='garments'")
    categories = coco_mod.categories(kind, classes)
    class_names = [c["name"] for c in categories]
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()

    entries, split_desc = list_entries(kind, source, val_fraction=val_fraction, test_fraction=test_fraction,
                                       seed=seed)
    entries = _cap(entries, max_images)
    parts = tuple(s for s in SPLITS if s in entries)
    if kind == "ccp":  # the stored split: its digest, not the seed, names it
        params = {"classes": classes, "max_images": max_images, "split_digest": split_desc["digest"]}
    else:
        params = {"classes": classes, "max_images": max_images, "seed": seed, "val_fraction": val_fraction,
                  "test_fraction": test_fraction}
    params["splits"] = list(parts)
    if not decode_images:  # a header-only conversion is not reused as a checked one (nor the reverse)
        params["decode_images"] = False
    key = _fingerprint(kind, source, entries, params)
    manifest_path = root / "prepared.json"
    coco_json = {s: root / "annotations" / f"instances_{s}.json" for s in parts}
    image_dir = {s: root / "images" / s for s in parts}
    label_dir = {s: root / "labels" / s for s in parts}
    yaml_path = root / "data.yaml"
    reused = False
    if (not force and manifest_path.exists() and all(p.exists() for p in coco_json.values())
            and yaml_path.exists() and (root / "report.json").exists()):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        reused = manifest.get("key") == key
    if reused:
        report = ConversionReport.load(root)
    else:
        if manifest_path.exists():
            manifest_path.unlink()  # an interrupted run must not look complete
        report = ConversionReport(dataset=f"{name} ({kind}, classes={classes})")
        if kind == "deepfashion2" and "test" not in parts:
            report.notes.append(DF2_NO_TEST)
        report.notes.extend(f"warning: {w}" for w in split_desc.get("warnings", ()))
        if not decode_images:
            report.notes.append("image pixels not decoded (decode_images=False): sizes come from the file "
                                "headers, and a truncated or corrupt image is not detected here")
        for split in parts:
            det_dir, seg_dir = root / "labels-detect" / split, root / "labels-segment" / split
            _clear_labels(det_dir)
            _clear_labels(seg_dir)
            result = convert_split(
                kind, split, entries[split], categories, coco_json[split], detect_dir=det_dir,
                segment_dir=seg_dir, options={"classes": classes, "decode_images": decode_images},
                workers=workers, progress=progress,
                description=f"{name} {split} ({kind}, classes={classes})")
            _link_images(result.images, entries[split], image_dir[split])
            names = {c["id"]: c["name"] for c in categories}
            per_cat = Counter(names[c] for c in result.category_ids)
            report.add_split(split, result.images_in, len(result.images), result.n_annotations,
                             {n: per_cat.get(n, 0) for n in class_names}, result.issues, items_in=result.items_in)
        report.check()
        report.save(root)
        yolo_mod.write_data_yaml(yaml_path, root, {s: f"images/{s}" for s in parts}, class_names)
        if kind in ("pennfudan", "ccp"):
            (root / "split.json").write_text(json.dumps(split_desc, indent=1, allow_nan=False) + "\n",
                                             encoding="utf-8")
        manifest_path.write_text(json.dumps({"key": key, "name": str(name), "kind": kind,
                                             "source": str(source), **params}, indent=1, allow_nan=False) + "\n",
                                 encoding="utf-8")
    _set_task_labels(root, task)
    return PreparedDataset(
        name=str(name), root=root, source=Path(source), kind=kind, task=task, classes=classes,
        categories=categories, class_names=class_names, coco_json=coco_json, image_dir=image_dir,
        label_dir=label_dir, yolo_yaml=yaml_path, report=report,
        num_images={s: report.images_out.get(s, 0) for s in parts}, reused=reused)
