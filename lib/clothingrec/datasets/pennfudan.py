"""Penn-Fudan pedestrians: ``PNGImages/*.png``, ``PedMasks/*_mask.png``, ``Annotation/*.txt``.

The mask PNG holds one instance id per pixel (0 background, ``k`` = pedestrian ``k``).  The
annotation is the original PASCAL-v1 text format::

    # Compatible with PASCAL Annotation Version 1.00
    Image filename : "PennFudanPed/PNGImages/FudanPed00001.png"
    Image size (X x Y x C) : 559 x 536 x 3
    Database : "The Penn-Fudan-Pedestrian Database"
    Objects with ground truth : 2 { "PASpersonWalking" "PASpersonWalking" }
    # Top left pixel co-ordinates : (1, 1)
    # Details for pedestrian 1 ("PASpersonWalking")
    Original label for object 1 "PASpersonWalking" : "PennFudanPed"
    Bounding box for object 1 "PASpersonWalking" (Xmin, Ymin) - (Xmax, Ymax) : (160, 182) - (302, 431)
    Pixel mask for object 1 "PASpersonWalking" : "PennFudanPed/PedMasks/FudanPed00001_mask.png"

Boxes are 1-based and inclusive (top-left pixel is (1, 1)), so a box ``(Xmin, Ymin) - (Xmax, Ymax)``
becomes ``(Xmin - 1, Ymin - 1, Xmax, Ymax)`` in continuous 0-based coordinates: the same extent
as the object's mask.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from clothingrec.datasets.records import (
    BadNumber,
    ImageRecord,
    ImageSkipped,
    Issue,
    ObjectRecord,
    ReadResult,
    check_box,
    decoded_array,
    decoded_size,
    image_error,
    image_size,
    mask_polygons,
    parse_number,
)

CATEGORIES = ("person",)

_FILENAME = re.compile(r'^Image filename\s*:\s*"(?P<name>[^"]*)"\s*$')
_SIZE = re.compile(r"^Image size \(X x Y x C\)\s*:\s*(?P<x>\d+)\s*x\s*(?P<y>\d+)\s*x\s*(?P<c>\d+)\s*$")
_OBJECTS = re.compile(r'^Objects with ground truth\s*:\s*(?P<n>\d+)\s*\{(?P<labels>[^}]*)\}\s*$')
_BOX = re.compile(
    r'^Bounding box for object (?P<k>\d+) "(?P<label>[^"]*)" \(Xmin, Ymin\) - \(Xmax, Ymax\)\s*:\s*'
    r"\((?P<x1>[^,()]+),(?P<y1>[^,()]+)\)\s*-\s*\((?P<x2>[^,()]+),(?P<y2>[^,()]+)\)\s*$")
_MASK = re.compile(r'^Pixel mask for object (?P<k>\d+) "(?P<label>[^"]*)"\s*:\s*"(?P<path>[^"]*)"\s*$')
_ORIGINAL = re.compile(r'^Original label for object (?P<k>\d+) "(?P<label>[^"]*)"\s*:\s*"(?P<orig>[^"]*)"\s*$')
_DATABASE = re.compile(r'^Database\s*:\s*"(?P<db>[^"]*)"\s*$')


class AnnotationError(ValueError):
    """A Penn-Fudan annotation file that does not follow the format (message names line and field)."""


@dataclass
class PedObject:
    index: int
    label: str
    box: tuple[int, int, int, int] | None = None  # 1-based inclusive Xmin, Ymin, Xmax, Ymax
    mask_file: str | None = None
    original_label: str | None = None
    box_error: str | None = None  # why the box line's numbers are unusable (NaN, too large, not whole)
    duplicates: int = 0  # further box lines for the same object number (each loses the earlier box)


@dataclass
class PedAnnotation:
    filename: str
    size: tuple[int, int, int]  # X (width), Y (height), C
    labels: list[str]
    objects: list[PedObject] = field(default_factory=list)
    database: str | None = None


def parse_annotation(text: str, source: str = "<annotation>") -> PedAnnotation:
    """Parse the original Penn-Fudan annotation text; raise :class:`AnnotationError` on bad input."""
    filename = size = labels = database = None
    objects: dict[int, PedObject] = {}

    def obj(k: int, label: str) -> PedObject:
        if k not in objects:
            objects[k] = PedObject(index=k, label=label)
        return objects[k]

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if m := _FILENAME.match(line):
            filename = m["name"]
        elif m := _SIZE.match(line):
            size = (int(m["x"]), int(m["y"]), int(m["c"]))
        elif m := _OBJECTS.match(line):
            labels = re.findall(r'"([^"]*)"', m["labels"])
            if len(labels) != int(m["n"]):
                raise AnnotationError(f"{source}:{lineno}: 'Objects with ground truth' says {m['n']} "
                                      f"but lists {len(labels)} labels")
        elif m := _BOX.match(line):
            o = obj(int(m["k"]), m["label"])
            if o.box is not None or o.box_error is not None:
                o.duplicates += 1  # a second box line for the same object: the earlier one is lost
            values = [parse_number(m[k]) for k in ("x1", "y1", "x2", "y2")]
            bad = [(name, m[g].strip(), v) for name, g, v in zip(("Xmin", "Ymin", "Xmax", "Ymax"),
                                                                 ("x1", "y1", "x2", "y2"), values)
                   if type(v) is not int]  # Penn-Fudan boxes are whole pixels
            if bad:
                name, text, v = bad[0]
                o.box_error = (f"{name} {text[:24]!r} is " + ("not a finite number" if isinstance(v, BadNumber)
                               else "not an integer") + f" (line {lineno})")
            else:
                o.box = tuple(values)
        elif m := _MASK.match(line):
            obj(int(m["k"]), m["label"]).mask_file = m["path"]
        elif m := _ORIGINAL.match(line):
            obj(int(m["k"]), m["label"]).original_label = m["orig"]
        elif m := _DATABASE.match(line):
            database = m["db"]
        elif line.startswith(("Bounding box", "Pixel mask", "Image size", "Objects with", "Image filename")):
            raise AnnotationError(f"{source}:{lineno}: malformed line {line[:100]!r}")
        # other lines (future fields) are ignored
    if filename is None:
        raise AnnotationError(f"{source}: missing 'Image filename' line")
    if size is None:
        raise AnnotationError(f"{source}: missing 'Image size (X x Y x C)' line")
    if labels is None:
        raise AnnotationError(f"{source}: missing 'Objects with ground truth' line")
    return PedAnnotation(filename=filename, size=size, labels=labels,
                         objects=[objects[k] for k in sorted(objects)], database=database)


def format_annotation(ann: PedAnnotation) -> str:
    """Write an annotation in the original text format (used by the synthetic generator)."""
    lines = [
        "# Compatible with PASCAL Annotation Version 1.00",
        f'Image filename : "{ann.filename}"',
        f"Image size (X x Y x C) : {ann.size[0]} x {ann.size[1]} x {ann.size[2]}",
        f'Database : "{ann.database or "The Penn-Fudan-Pedestrian Database"}"',
        f"Objects with ground truth : {len(ann.objects)} {{ "
        + " ".join(f'"{o.label}"' for o in ann.objects) + " }",
        "# Note there may be some objects not included in the ground truth list for they are severe-occluded",
        "# or have very small size.",
        "# Top left pixel co-ordinates : (1, 1)",
    ]
    for o in ann.objects:
        x1, y1, x2, y2 = o.box
        lines += [
            f'# Details for pedestrian {o.index} ("{o.label}")',
            f'Original label for object {o.index} "{o.label}" : "{o.original_label or "PennFudanPed"}"',
            f'Bounding box for object {o.index} "{o.label}" (Xmin, Ymin) - (Xmax, Ymax) : '
            f"({x1}, {y1}) - ({x2}, {y2})",
            f'Pixel mask for object {o.index} "{o.label}" : "{o.mask_file}"',
            "",
        ]
    return "\n".join(lines) + "\n"


def list_images(root: str | Path) -> tuple[list[tuple[Path, Path, Path]], list[Issue]]:
    """Triples ``(png, mask, annotation)`` sorted by name, and image-level issues for missing files."""
    root = Path(root)
    image_dir = root / "PNGImages"
    if not image_dir.is_dir():
        raise FileNotFoundError(f"Penn-Fudan needs {image_dir} (and PedMasks/, Annotation/)")
    triples, issues = [], []
    for png in sorted(image_dir.glob("*.png")):
        mask = root / "PedMasks" / f"{png.stem}_mask.png"
        txt = root / "Annotation" / f"{png.stem}.txt"
        missing = [p for p in (mask, txt) if not p.exists()]
        if missing:
            issues.append(Issue(f"PNGImages/{png.name}", "", missing[0].parent.name,
                                f"missing {missing[0].parent.name}/{missing[0].name}", "", "image"))
            continue
        triples.append((png, mask, txt))
    return triples, issues


def read_image(image_path: str | Path, mask_path: str | Path, annotation_path: str | Path,
               split: str = "", with_polygons: bool = True, decode: bool = True) -> ReadResult:
    """Read one Penn-Fudan image: boxes from the annotation (validated and clipped by
    :func:`~.records.check_box`, clipping reported), masks and areas from PedMasks.  ``decode``: decode
    every pixel of the PNG before keeping it (else the header size only)."""
    image_path, mask_path, annotation_path = Path(image_path), Path(mask_path), Path(annotation_path)
    afile = f"Annotation/{annotation_path.name}"
    issues: list[Issue] = []
    try:
        try:
            ann = parse_annotation(annotation_path.read_text(encoding="utf-8", errors="replace"), afile)
        except ValueError as exc:  # AnnotationError, or a number with too many digits for int()
            raise ImageSkipped(Issue(afile, "", "annotation", str(exc).split(": ", 1)[-1], split, "image")) from exc
        try:
            width, height = (decoded_size if decode else image_size)(image_path)
        except ValueError as exc:
            raise ImageSkipped(Issue(f"PNGImages/{image_path.name}", "", "image", image_error(exc),
                                     split, "image")) from exc
        try:
            mask = decoded_array(mask_path)
        except (ValueError, OSError) as exc:  # any decoding failure skips the image
            raise ImageSkipped(Issue(f"PedMasks/{mask_path.name}", "", "mask",
                                     f"unreadable mask ({str(exc).split(': ', 1)[-1]})", split, "image")) from exc
        if mask.ndim == 3:
            mask = mask[..., 0]
        if mask.shape != (height, width):
            raise ImageSkipped(Issue(f"PedMasks/{mask_path.name}", "", "mask",
                                     f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {width}x{height}",
                                     split, "image"))
    except ImageSkipped as skipped:
        return ReadResult(None, [skipped.issue])
    if ann.size[:2] != (width, height):
        issues.append(Issue(afile, "", "Image size", f"annotation says {ann.size[0]}x{ann.size[1]}, the "
                            f"PNG header {width}x{height} (header used)", split, "field"))
    record = ImageRecord(path=image_path, width=width, height=height, split=split,
                         annotation_path=annotation_path, attributes={"database": ann.database})
    declared = set(range(1, len(ann.labels) + 1))
    present = {o.index for o in ann.objects}
    n_missing = max(0, len(declared) - len(present))  # listed objects that no detail line describes
    for k in sorted(declared - present)[:n_missing]:
        issues.append(Issue(afile, f"object {k}", "Objects with ground truth",
                            f"object {k} is listed but has no detail lines", split, "item"))
    items_in = len(present) + n_missing + sum(o.duplicates for o in ann.objects)
    for o in ann.objects:
        name = f"object {o.index}"
        for _ in range(o.duplicates):
            issues.append(Issue(afile, name, "Bounding box", f"duplicate bounding box line for object {o.index}: "
                                "the earlier box is overridden (lost)", split, "item"))

        def skip(field, reason, name=name):
            issues.append(Issue(afile, name, field, reason, split, "item"))

        def note(field, reason, name=name):
            issues.append(Issue(afile, name, field, reason, split, "field"))

        if o.box_error is not None:
            skip("Bounding box", o.box_error)
            continue
        if o.box is None:
            skip("Bounding box", "object has no bounding box line")
            continue
        box = check_box((o.box[0] - 1, o.box[1] - 1, o.box[2], o.box[3]), width, height, skip, note,
                        field="Bounding box", shown=o.box)
        if box is None:
            continue
        x1, y1, x2, y2 = box
        inst = mask == o.index
        area = int(inst.sum())
        if area == 0:
            issues.append(Issue(afile, name, "Pixel mask",
                                f"no pixel of value {o.index} in {mask_path.name}", split))
            continue
        record.objects.append(ObjectRecord(
            category_id=1, category_name="person", bbox=(x1, y1, x2, y2),
            polygons=mask_polygons(inst) if with_polygons else [], mask=inst, area=float(area),
            attributes={"label": o.label}, name=name))
    return ReadResult(record, issues, items_in)
