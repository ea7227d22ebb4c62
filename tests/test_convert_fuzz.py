"""Malformed DeepFashion2, Penn-Fudan and CCP inputs: nothing is lost without a report line.

Property-based (hypothesis) suites start from a valid synthetic set (:mod:`clothingrec.synthetic`),
corrupt values, keys and files, convert with :func:`prepare_detection_dataset` and check:

- every image in = images out + images reported; for every kept image, every item the test wrote
  (counted by the test from what it wrote, not by the reader) = annotations out + item rows;
- each corruption the test made is named by a row (file, item, field), or the item / image it sat
  in is reported lost;
- every report row names a file of the input, a field, and (item rows) the item;
- every JSON written parses with a strict parser (no NaN / Infinity), YOLO labels are finite.

Then a fixed corpus pins each class of input of issue 17 with its expected rows and reasons.
"""
import json
import math
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.io import loadmat, savemat

from clothingrec import synthetic
from clothingrec.convert import prepare_detection_dataset
from clothingrec.datasets import ccp

FUZZ = settings(max_examples=50, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------ helpers
class Raw:
    """A JSON token written as it is (NaN, Infinity, 1e400, a 5000-digit integer...)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"Raw({self.text[:12]})"


def dump(value) -> str:
    """JSON text of ``value``; a list of pairs (``Pairs``) keeps duplicate keys; ``Raw`` tokens as is."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(json.dumps(k) + ":" + dump(v) for k, v in value) + "}"
    if isinstance(value, dict):
        return dump(Pairs(value.items()))
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


class Pairs(list):
    pass


def strict_load(path):
    def refuse(token):
        raise ValueError(f"{path}: non-standard JSON token {token}")

    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=refuse)


def check_outputs(ds):
    """Every JSON strict, every YOLO label value finite and inside [0, 1]; the report's invariants."""
    for path in ds.root.rglob("*.json"):
        strict_load(path)
    for path in ds.root.glob("labels-*/*/*.txt"):
        for line in path.read_text().splitlines():
            values = [float(v) for v in line.split()[1:]]
            assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values), (path, line)
    ds.report.check()
    for split in ds.splits:
        assert ds.report.items_in[split] == ds.report.annotations_out[split] + ds.report.items_skipped(split)


def annotations_per_file(ds) -> dict[str, int]:
    """file stem → annotations out (over every split)."""
    out = {}
    for split in ds.splits:
        coco = strict_load(ds.coco_json[split])
        ids = {im["id"]: Path(im["file_name"]).stem for im in coco["images"]}
        for stem in ids.values():
            out[stem] = 0
        for ann in coco["annotations"]:
            out[ids[ann["image_id"]]] += 1
    return out


def check_rows_name_inputs(ds, src: Path):
    for row in ds.report.skipped:
        assert row.level in ("image", "item", "field"), row
        assert (src / row.file).exists() or row.level == "image" and row.field in ("annos", "image",
                                                                                     "PedMasks", "photo"), row
        assert row.field, row
        if row.level == "item":
            assert row.item, row
        assert row.reason, row


def stem_of(file: str) -> str:
    return Path(file).stem.removesuffix("_mask")


BAD_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "1" + "0" * 400, "9" * 5000]
ODD_TOKENS = ['"12"', "null", "true", "[]"]  # valid JSON, not a number
HUGE_FINITE = ["1e300", "-1e300"]


# ------------------------------------------------------------------ DeepFashion2
@pytest.fixture(scope="module")
def df2_base(tmp_path_factory):
    return synthetic.write_deepfashion2(tmp_path_factory.mktemp("df2fuzz"), n_train=4, n_val=0,
                                        image_size=(160, 128), seed=3)


NUMERIC_LISTS = ("bounding_box", "segmentation", "landmarks")
ATTRS = ("style", "scale", "occlusion", "zoom_in", "viewpoint")

df2_op = st.one_of(
    st.tuples(st.just("value"), st.integers(0, 3), st.integers(0, 3),
              st.sampled_from(NUMERIC_LISTS + ("category_id",) + ATTRS), st.integers(0, 10_000),
              st.sampled_from(BAD_TOKENS + ODD_TOKENS + HUGE_FINITE)),
    st.tuples(st.just("image_value"), st.integers(0, 3), st.sampled_from(("pair_id", "source")),
              st.sampled_from(BAD_TOKENS)),
    st.tuples(st.just("swap"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(("x", "y"))),
    st.tuples(st.just("dup"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("misspell"), st.integers(0, 3), st.integers(0, 3),
              st.sampled_from(("itme{}", "Item{}", "item0{}", "item_{}"))),
    st.tuples(st.just("drop"), st.integers(0, 3), st.integers(0, 3),
              st.sampled_from(("bounding_box", "segmentation", "category_id", "landmarks"))),
    st.tuples(st.just("truncate_image"), st.integers(0, 3), st.floats(0.05, 0.95)),
    st.tuples(st.just("truncate_json"), st.integers(0, 3), st.floats(0.0, 0.99)),
)


def _apply_df2(src: Path, ops):
    """Corrupt the train split; return (items written per stem, expected rows, stems surely lost)."""
    annos, images = src / "train" / "annos", src / "train" / "image"
    stems = sorted(p.stem for p in annos.glob("*.json"))
    docs = {s: Pairs(json.loads((annos / f"{s}.json").read_text()).items()) for s in stems}
    expect = []  # (stem, item, field prefix): some row must name it (or its item / image lost)
    truncate_image, truncate_json = {}, {}
    for op in ops:
        stem = stems[op[1] % len(stems)]
        doc = docs[stem]
        item_keys = [i for i, (k, v) in enumerate(doc) if k.startswith("item") and isinstance(v, dict)]
        kind = op[0]
        if kind == "truncate_image":
            truncate_image[stem] = op[2]
            continue
        if kind == "truncate_json":
            truncate_json[stem] = op[2]
            continue
        if kind == "image_value":
            doc.append((op[2], Raw(op[3]))) if op[2] not in dict(doc) else \
                doc.__setitem__(next(i for i, (k, _) in enumerate(doc) if k == op[2]), (op[2], Raw(op[3])))
            expect.append((stem, "", op[2]))
            continue
        if not item_keys:
            continue
        pos = item_keys[op[2] % len(item_keys)]
        key, item = doc[pos]
        item = dict(item)
        if kind == "value":
            field, index, token = op[3], op[4], op[5]
            value = item.get(field)
            if field == "segmentation" and value:
                k = index % len(value)
                poly = list(value[k])
                poly[index % len(poly)] = Raw(token)
                item[field] = value[:k] + [poly] + value[k + 1:]
            elif isinstance(value, list) and value:
                value = list(value)
                value[index % len(value)] = Raw(token)
                item[field] = value
            else:
                item[field] = Raw(token)
            must = token in BAD_TOKENS or (token in ODD_TOKENS and (field in NUMERIC_LISTS or field == "category_id")) \
                or (token in HUGE_FINITE and field in ("bounding_box", "segmentation"))
            if must:
                expect.append((stem, key, field))
        elif kind == "swap":
            b = list(item["bounding_box"])
            i = 0 if op[3] == "x" else 1
            b[i], b[i + 2] = b[i + 2], b[i]  # inverted (unless swapped back): expected at the end
            item["bounding_box"] = b
        elif kind == "dup":
            doc.insert(pos, (key, item))  # the same key twice: the reader keeps one, reports the other
            continue
        elif kind == "misspell":
            new = op[3].format(key[4:])
            if any(k == new for k, _ in doc):
                continue
            doc[pos] = (new, item)  # expected at the end (unless renamed again)
            continue
        elif kind == "drop":
            item.pop(op[3], None)
            expect.append((stem, key, op[3]))
        doc[pos] = (key, item)
    written = {}
    for stem, doc in docs.items():
        keys = [k for k, _ in doc]
        expect += [(stem, k, k) for k in set(keys) if keys.count(k) > 1]  # duplicates, whatever made them
        expect += [(stem, k, k) for k in set(keys) if k not in ("source", "pair_id")
                   and not re.fullmatch(r"item[1-9]\d*", k)]  # mis-spelled
        for k, item in doc:
            b = item.get("bounding_box") if isinstance(item, dict) else None
            if isinstance(b, list) and len(b) == 4 and all(type(v) in (int, float) for v in b) \
                    and (b[2] < b[0] or b[3] < b[1]):
                expect.append((stem, k, "bounding_box"))  # inverted
        text = dump(doc)
        if stem in truncate_json:
            text = text[:int(len(text) * truncate_json[stem])]
        (annos / f"{stem}.json").write_text(text, encoding="utf-8")
        written[stem] = sum(1 for k, _ in doc if k not in ("source", "pair_id"))
    for stem, frac in truncate_image.items():
        data = (images / f"{stem}.jpg").read_bytes()
        (images / f"{stem}.jpg").write_bytes(data[:max(200, int(len(data) * frac))])
    return written, expect, set(truncate_image) | set(truncate_json)


def _check_items(ds, src, written, expect, lost):
    check_outputs(ds)
    check_rows_name_inputs(ds, src)
    out = annotations_per_file(ds)
    rows = ds.report.skipped
    image_lost = {stem_of(r.file) for r in rows if r.level == "image"}
    assert lost <= image_lost, (lost, image_lost)
    for stem, n in written.items():
        if stem in image_lost:
            assert stem not in out
            continue
        item_rows = [r for r in rows if r.level == "item" and stem_of(r.file) == stem]
        assert n == out[stem] + len(item_rows), (stem, n, out[stem], item_rows)
        assert len({r.item for r in item_rows}) == len(item_rows) or any(
            r.reason.startswith("duplicate") for r in item_rows), item_rows  # one row per lost item
    for stem, item, field in expect:
        if stem in image_lost:
            continue
        named = [r for r in rows if stem_of(r.file) == stem and r.item == item]
        assert any(r.field.split("[")[0] == field or r.level == "item" for r in named), \
            (stem, item, field, [str(r) for r in rows if stem_of(r.file) == stem])


@FUZZ
@given(ops=st.lists(df2_op, min_size=1, max_size=4))
def test_df2_fuzz_every_item_converted_or_reported(df2_base, ops):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(df2_base, src)
        written, expect, lost = _apply_df2(src, ops)
        ds = prepare_detection_dataset(src, Path(tmp) / "out", workers=1, progress=False)
        _check_items(ds, src, written, expect, lost)


# ------------------------------------------------------------------ Penn-Fudan
@pytest.fixture(scope="module")
def pf_base(tmp_path_factory):
    return synthetic.write_pennfudan(tmp_path_factory.mktemp("pffuzz"), n=5, seed=4)


PF_TOKENS = ["NaN", "inf", "-inf", "1e400", "9" * 400, "9" * 5000, "1.5", "-7", "99999", "x"]
_BOX_LINE = re.compile(r"^(Bounding box for object (\d+) .*: )\((.*),(.*)\) - \((.*),(.*)\)\s*$")

pf_op = st.one_of(
    st.tuples(st.just("box"), st.integers(0, 3), st.integers(0, 5), st.integers(0, 3), st.sampled_from(PF_TOKENS)),
    st.tuples(st.just("swap"), st.integers(0, 3), st.integers(0, 5), st.sampled_from(("x", "y"))),
    st.tuples(st.just("dup"), st.integers(0, 3), st.integers(0, 5)),
    st.tuples(st.just("delbox"), st.integers(0, 3), st.integers(0, 5)),
    st.tuples(st.just("truncate_image"), st.integers(0, 3), st.floats(0.05, 0.95)),
)


def _apply_pf(src: Path, ops):
    ann_dir = src / "Annotation"
    stems = sorted(p.stem for p in ann_dir.glob("*.txt"))
    lines = {s: (ann_dir / f"{s}.txt").read_text().splitlines() for s in stems}
    original = {s: {m[2]: line for line in text if (m := _BOX_LINE.match(line))} for s, text in lines.items()}
    lost = set()
    for op in ops:
        stem = stems[op[1] % len(stems)]
        if op[0] == "truncate_image":
            path = src / "PNGImages" / f"{stem}.png"
            data = path.read_bytes()
            path.write_bytes(data[:max(100, int(len(data) * op[2]))])
            lost.add(stem)
            continue
        text = lines[stem]
        boxes = [i for i, line in enumerate(text) if _BOX_LINE.match(line)]
        if not boxes:
            continue
        i = boxes[op[2] % len(boxes)]
        m = _BOX_LINE.match(text[i])
        head, vals = m[1], [m[3], m[4], m[5], m[6]]
        if op[0] == "box":
            vals[op[3]] = op[4]
        elif op[0] == "swap":
            j = 0 if op[3] == "x" else 1
            vals[j], vals[j + 2] = vals[j + 2], vals[j]
        elif op[0] == "dup":
            text.insert(i, text[i])
            continue
        elif op[0] == "delbox":
            del text[i]
            continue
        text[i] = f"{head}({vals[0]}, {vals[1]}) - ({vals[2]}, {vals[3]})"
    written, expect = {}, []
    for stem, text in lines.items():
        (ann_dir / f"{stem}.txt").write_text("\n".join(text) + "\n")
        numbers = re.findall(r"for object (\d+) ", "\n".join(text))
        box_lines = [(m[2], line) for line in text if (m := _BOX_LINE.match(line))]
        written[stem] = len(set(numbers)) + len(box_lines) - len({k for k, _ in box_lines})
        for k, line in original[stem].items():  # a box line gone, doubled or changed: some row names it
            mine = [b for j, b in box_lines if j == k]
            if len(mine) != 1 or _norm(mine[0]) != _norm(line):
                expect.append((stem, f"object {k}", "Bounding box"))
    return written, expect, lost


def _norm(line):
    m = _BOX_LINE.match(line)
    return [v.strip() for v in (m[3], m[4], m[5], m[6])]


@FUZZ
@given(ops=st.lists(pf_op, min_size=1, max_size=4))
def test_pennfudan_fuzz_every_item_converted_or_reported(pf_base, ops):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(pf_base, src)
        written, expect, lost = _apply_pf(src, ops)
        ds = prepare_detection_dataset(src, Path(tmp) / "out", workers=1, progress=False)
        _check_items(ds, src, written, expect, lost)


# ------------------------------------------------------------------ CCP
@pytest.fixture(scope="module")
def ccp_base(tmp_path_factory):
    return synthetic.write_ccp(tmp_path_factory.mktemp("ccpfuzz"), n=4, seed=5)


#: the test's own grouping of the labels the generator paints (not the reader's table)
TEST_GROUPS = {"t-shirt": "top", "blouse": "top", "coat": "outwear", "jeans": "trousers", "skirt": "skirt",
               "shorts": "shorts"}
CCP_VALUES = [float("nan"), float("inf"), -float("inf"), 1e300, 200.0, -3.0, 2.5]

ccp_op = st.one_of(
    st.tuples(st.just("pixels"), st.integers(0, 3), st.floats(0, 1), st.floats(0, 1), st.floats(0.01, 0.6),
              st.sampled_from(CCP_VALUES)),
    st.tuples(st.just("truncate_image"), st.integers(0, 3), st.floats(0.05, 0.95)),
    st.tuples(st.just("resize_image"), st.integers(0, 3)),
)


def _apply_ccp(src: Path, ops):
    mats = sorted((src / "annotations" / "pixel-level").glob("*.mat"))
    maps = {m.stem: np.asarray(loadmat(m)["groundtruth"]).astype(np.float64) for m in mats}
    invalid = {s: np.zeros(g.shape, bool) for s, g in maps.items()}
    expect, lost, touched = [], set(), set()
    for op in ops:
        stem = sorted(maps)[op[1] % len(maps)]
        photo = src / "photos" / f"{stem}.jpg"
        if stem in lost:
            continue  # the photo is already broken
        if op[0] == "pixels":
            g = maps[stem]
            h, w = g.shape
            y0, x0, size = int(op[2] * (h - 1)), int(op[3] * (w - 1)), op[4]
            region = (slice(y0, y0 + max(1, int(size * h))), slice(x0, x0 + max(1, int(size * w))))
            g[region] = op[5]
            invalid[stem][region] = True
            touched.add(stem)
            expect.append((stem, "", "groundtruth"))
        elif op[0] == "truncate_image":
            data = photo.read_bytes()
            photo.write_bytes(data[:max(200, int(len(data) * op[2]))])
            lost.add(stem)
        else:
            with Image.open(photo) as im:
                im.resize((im.width // 2, im.height)).save(photo)
            lost.add(stem)
    written = {}
    for stem, g in maps.items():
        if stem in touched:
            savemat(src / "annotations" / "pixel-level" / f"{stem}.mat", {"groundtruth": g})
        valid = np.where(invalid[stem], 0, g).astype(np.int64)
        written[stem] = len({TEST_GROUPS[ccp.LABELS[v]] for v in np.unique(valid) if ccp.LABELS[v] in TEST_GROUPS})
    return written, expect, lost


@FUZZ
@given(ops=st.lists(ccp_op, min_size=1, max_size=3))
def test_ccp_fuzz_every_item_converted_or_reported(ccp_base, ops):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ccp_base, src)
        written, expect, lost = _apply_ccp(src, ops)
        ds = prepare_detection_dataset(src, Path(tmp) / "out", workers=1, progress=False)
        _check_items(ds, src, written, expect, lost)


# ------------------------------------------------------------------ the fixed corpus: each class of issue 17
def _rows(ds, name):
    return [r for r in ds.report.skipped if r.file.endswith(name)]


def test_corpus_df2(df2_base, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(df2_base, src)
    annos, images = src / "train" / "annos", src / "train" / "image"
    docs = {s: json.loads((annos / f"{s}.json").read_text()) for s in ("000001", "000002", "000003", "000004")}
    n_items = {s: sum(k.startswith("item") for k in d) for s, d in docs.items()}
    # 000001: non-finite numbers in every kind of field; its other fields and items stay
    d = Pairs(docs["000001"].items())
    item1 = dict(d[[k for k, _ in d].index("item1")][1])
    item1["landmarks"] = [Raw("Infinity")] + item1["landmarks"][1:]
    item1["style"] = Raw("NaN")
    item1["segmentation"] = item1["segmentation"] + [[1.0, 2.0, Raw("1e400"), 3.0, 4.0, 5.0]]
    d[[k for k, _ in d].index("item1")] = ("item1", item1)
    d[[k for k, _ in d].index("pair_id")] = ("pair_id", Raw("9" * 400))
    # a second item whose box holds NaN is lost alone; a third with x2 < x1 gets its own reason
    d.append(("item8", {**item1, "bounding_box": [Raw("NaN"), 1, 20, 20], "style": 1, "landmarks": []}))
    d.append(("item9", {**item1, "bounding_box": [50, 10, 20, 40], "style": 1}))
    (annos / "000001.json").write_text(dump(d))
    # 000002: a duplicate item key and a mis-spelled one
    d = Pairs(docs["000002"].items())
    item = docs["000002"]["item1"]
    d += [("item1", item), ("itme2", item)]
    (annos / "000002.json").write_text(dump(d))
    # 000003: truncated pixels (the header is intact)
    data = (images / "000003.jpg").read_bytes()
    (images / "000003.jpg").write_bytes(data[:len(data) // 2])
    # 000004: the image's decoded size disagrees with the annotations (a quarter of the size)
    with Image.open(images / "000004.jpg") as im:
        im.resize((40, 32)).save(images / "000004.jpg")
    ds = prepare_detection_dataset(src, tmp_path / "out", workers=1, progress=False)
    check_outputs(ds)  # strict JSON everywhere, items in = out + reported
    rows1 = {(r.item, r.field, r.level) for r in _rows(ds, "000001.json")}
    assert {("item1", "landmarks[0]", "field"), ("item1", "style", "field"), ("item1", "segmentation[1][2]", "field"),
            ("", "pair_id", "field"), ("item8", "bounding_box[0]", "item"),
            ("item9", "bounding_box", "item")} <= rows1
    reasons = {(r.item, r.field): r.reason for r in _rows(ds, "000001.json")}
    assert "Infinity is not a finite number" in reasons[("item1", "landmarks[0]")]
    assert "too large for a float" in reasons[("", "pair_id")]
    assert "1e400 is too large for a float" in reasons[("item1", "segmentation[1][2]")]
    assert reasons[("item9", "bounding_box")].startswith("inverted box: x2 < x1")
    assert "zero area" not in reasons[("item9", "bounding_box")]
    out = annotations_per_file(ds)
    assert out["000001"] == n_items["000001"]  # item1 and the other items kept; item8, item9 reported
    coco = strict_load(ds.coco_json["train"])
    image1 = next(im for im in coco["images"] if im["file_name"] == "000001.jpg")
    assert image1["pair_id"] is None
    first = next(a for a in coco["annotations"] if a["image_id"] == image1["id"])
    assert first["style"] is None and first["num_keypoints"] == 0 and len(first["segmentation"]) == 1
    # the polygon drop is a field of a kept item: not counted under "items skipped"
    frame = ds.report.summary_frame()
    assert frame.loc["train", "items_skipped"] == ds.report.items_skipped("train") == \
        sum(r.level == "item" for r in ds.report.skipped)
    assert {(r.item, r.field, r.level) for r in _rows(ds, "000002.json")} >= {
        ("item1", "item1", "item"), ("itme2", "itme2", "item")}
    assert out["000002"] == n_items["000002"]
    (row3,) = _rows(ds, "000003.jpg")
    assert (row3.level, row3.field) == ("image", "image") and "truncated" in row3.reason
    assert "000003" not in out
    rows4 = _rows(ds, "000004.json")
    assert {r.item for r in rows4} == {k for k in docs["000004"] if k.startswith("item")}
    for item in {r.item for r in rows4}:  # every item clipped or lost, and said so with the decoded size
        assert any("40x32 image" in r.reason for r in rows4 if r.item == item), rows4
    assert out["000004"] + sum(r.level == "item" for r in rows4) == n_items["000004"]
    # the empty validation/ folder of this base set: a warning in the report
    assert any(n.startswith("warning: split folder validation/ exists but holds no images") for n in ds.report.notes)
    assert "warning: split folder validation/" in (ds.root / "report.txt").read_text()


def test_corpus_df2_split_folder_without_annos_is_a_warning(df2_base, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(df2_base, src)
    shutil.rmtree(src / "validation" / "annos")
    ds = prepare_detection_dataset(src, tmp_path / "out", workers=1, progress=False)
    assert ds.num_images == {"train": 4, "val": 0}
    assert any("validation/ exists but has no annos/" in n for n in ds.report.notes)


def test_corpus_pennfudan(pf_base, tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(pf_base, src)
    ann = src / "Annotation"
    stems = sorted(p.stem for p in ann.glob("*.txt"))

    def box_line(stem, fn):
        lines = (ann / f"{stem}.txt").read_text().splitlines()
        i = next(i for i, line in enumerate(lines) if _BOX_LINE.match(line))
        lines[i:i + 1] = fn(lines[i])
        (ann / f"{stem}.txt").write_text("\n".join(lines) + "\n")

    def swap_x(line):
        m = _BOX_LINE.match(line)
        return [f"{m[1]}({m[5]}, {m[4]}) - ({m[3]}, {m[6]})"]

    box_line(stems[0], lambda line: [re.sub(r"\((\s*\d+),", "(NaN,", line, count=1)])
    box_line(stems[1], swap_x)
    box_line(stems[2], lambda line: [line, line])  # duplicate box line
    png = src / "PNGImages" / f"{stems[3]}.png"
    png.write_bytes(png.read_bytes()[:-4000])
    mask = src / "PedMasks" / f"{stems[4]}_mask.png"
    mask.write_bytes(mask.read_bytes()[:len(mask.read_bytes()) // 2])
    from PIL import ImageFile

    # a cut-off mask is refused even where another library told Pillow to load truncated files
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    ds = prepare_detection_dataset(src, tmp_path / "out", workers=1, progress=False)
    check_outputs(ds)
    (r4,) = _rows(ds, f"{stems[4]}_mask.png")
    assert r4.level == "image" and r4.field == "mask" and r4.reason.startswith("unreadable mask"), r4
    r0 = [r for r in _rows(ds, f"{stems[0]}.txt") if r.level == "item"]
    assert [(r.item, r.field) for r in r0] == [("object 1", "Bounding box")] and "Xmin 'NaN'" in r0[0].reason
    (r1,) = [r for r in _rows(ds, f"{stems[1]}.txt") if r.level == "item"]
    assert r1.reason.startswith("inverted box: x2 < x1")
    (r2,) = [r for r in _rows(ds, f"{stems[2]}.txt") if r.level == "item"]
    assert r2.item == "object 1" and r2.reason.startswith("duplicate bounding box line")
    (r3,) = _rows(ds, f"{stems[3]}.png")
    assert r3.level == "image" and "undecodable" in r3.reason


def test_corpus_pennfudan_and_ccp_empty_folders_warn(tmp_path):
    (tmp_path / "pf" / "PNGImages").mkdir(parents=True)
    ds = prepare_detection_dataset(tmp_path / "pf", tmp_path / "pfout", workers=1, progress=False)
    assert any(n.startswith("warning: PNGImages/ exists but holds no .png") for n in ds.report.notes)
    (tmp_path / "ccp" / "annotations" / "pixel-level").mkdir(parents=True)
    ds = prepare_detection_dataset(tmp_path / "ccp", tmp_path / "ccpout", workers=1, progress=False)
    assert any("pixel-level/ exists but holds no .mat" in n for n in ds.report.notes)
    assert sum(ds.num_images.values()) == 0


def test_corpus_ccp(ccp_base, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ccp_base, src)
    mat = src / "annotations" / "pixel-level" / "0001.mat"
    g = loadmat(mat)["groundtruth"].astype(np.float64)
    g[:4, :] = np.nan
    g[4:6, :] = 1e300
    savemat(mat, {"groundtruth": g})
    photo = src / "photos" / "0002.jpg"
    photo.write_bytes(photo.read_bytes()[:600])
    ds = prepare_detection_dataset(src, tmp_path / "out", workers=1, progress=False)
    check_outputs(ds)
    (r1,) = _rows(ds, "0001.mat")
    assert (r1.level, r1.field) == ("field", "groundtruth") and r1.reason.startswith(f"{6 * g.shape[1]} pixels")
    assert "nan" in r1.reason and "treated as background" in r1.reason
    assert annotations_per_file(ds)["0001"] >= 2  # the good garments of the map kept
    (r2,) = _rows(ds, "0002.jpg")
    assert r2.level == "image" and "undecodable image pixels" in r2.reason and "runcated" in r2.reason
