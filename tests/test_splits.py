"""The one train / val / test split: stored, deterministic, leak-free, read the same way by every consumer."""
import json
from itertools import combinations

import pytest

from clothingrec import splits
from clothingrec.convert import SPLITS, prepare_detection_dataset
from clothingrec.splits import (
    CCP_IDS,
    CCP_SPLIT_FILE,
    FRACTIONS,
    PARTS,
    SplitError,
    ccp_image_ids,
    ccp_part_of,
    ccp_split,
    ccp_split_info,
    ccp_split_text,
    check_disjoint,
    seeded_split,
    split_digest,
)


def test_seeded_split_is_deterministic_order_free_and_three_way():
    ids = [f"{i:03d}" for i in range(1, 101)]
    a = seeded_split(ids, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert tuple(a) == PARTS and [len(a[p]) for p in PARTS] == [70, 10, 20]
    assert a == seeded_split(list(reversed(ids)), val_fraction=0.1, test_fraction=0.2, seed=0)
    b = seeded_split([int(i) for i in ids], val_fraction=0.1, test_fraction=0.2, seed=0)
    assert {p: [int(x) for x in a[p]] for p in PARTS} == b  # "007" and 7 are the same id
    assert seeded_split(ids, seed=1)["test"] != a["test"]
    for p in PARTS:
        assert a[p] == sorted(a[p])
    s = seeded_split(["b", "a", "c", "a"], val_fraction=0.34, test_fraction=0.0, seed=0)
    assert sorted(s["train"] + s["val"]) == ["a", "b", "c"] and len(s["val"]) == 1 and s["test"] == []
    with pytest.raises(ValueError):
        seeded_split(ids, val_fraction=0.6, test_fraction=0.5)


def test_ccp_split_sizes_fractions_and_no_overlap():
    split = ccp_split()
    assert [len(split[p]) for p in PARTS] == [703, 100, 201]
    for p in PARTS:
        assert len(split[p]) == pytest.approx(FRACTIONS[p] * len(CCP_IDS), abs=1)
    for a, b in combinations(PARTS, 2):
        assert not set(split[a]) & set(split[b]), (a, b)
    everything = split["train"] + split["val"] + split["test"]
    assert sorted(everything) == list(CCP_IDS) and len(everything) == len(set(everything))  # each id once
    check_disjoint(split)


def test_committed_file_is_what_the_generator_writes():
    """Regenerating configs/splits/ccp.json gives the same bytes; its digest names its id lists."""
    assert CCP_SPLIT_FILE.read_text(encoding="utf-8") == ccp_split_text()
    data = json.loads(CCP_SPLIT_FILE.read_text(encoding="utf-8"))
    assert data["seed"] == 0 and data["fractions"] == {"train": 0.7, "val": 0.1, "test": 0.2}
    assert data["digest"] == split_digest({p: data[p] for p in PARTS}) == ccp_split_info()["digest"]
    assert data["counts"] == {p: len(data[p]) for p in PARTS}
    redrawn = seeded_split(CCP_IDS, val_fraction=0.1, test_fraction=0.2, seed=0)
    assert {p: data[p] for p in PARTS} == redrawn


def test_stored_file_damage_and_unknown_ids_are_refused(tmp_path):
    data = json.loads(CCP_SPLIT_FILE.read_text(encoding="utf-8"))
    data["train"].append(data["test"][0])  # a hand edit that leaks a test photo into train
    bad = tmp_path / "ccp.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SplitError, match="digest"):
        ccp_split(path=bad)
    data["digest"] = split_digest({p: data[p] for p in PARTS})  # even with a matching digest
    bad.write_text(json.dumps(data))
    splits._load_stored.cache_clear()
    with pytest.raises(SplitError, match="both"):
        ccp_split(path=bad)
    with pytest.raises(SplitError, match="not in the stored"):
        ccp_split(["0001", "1005"])


def test_ccp_split_of_given_ids_keeps_their_spelling_and_part():
    full = ccp_split()
    some = ccp_split([int(x) for x in full["test"][:3]] + [full["train"][0]])
    assert some["test"] == [int(x) for x in full["test"][:3]] and some["train"] == [full["train"][0]]
    assert some["val"] == []
    assert ccp_part_of(full["val"][0]) == "val" and ccp_part_of(int(full["test"][-1])) == "test"


def test_previous_two_way_split_is_reproducible():
    """Runs made before the test part used seeded_split(ids, val_fraction=0.2) (803 / 201): still drawable."""
    old = seeded_split(CCP_IDS, val_fraction=0.2, test_fraction=0.0, seed=0)
    assert (len(old["train"]), len(old["val"]), old["test"]) == (803, 201, [])


def test_the_dataset_holds_exactly_the_stored_ids():
    pytest.importorskip("scipy")
    try:
        ids = ccp_image_ids()
    except FileNotFoundError:
        pytest.skip("CCP not available (make data)")
    assert ids == list(CCP_IDS)
    assert ccp_split(ids) == ccp_split()


# ------------------------------------------------------------------ consumers: the converter
@pytest.fixture(scope="module")
def pf_src(tmp_path_factory):
    from clothingrec import synthetic

    return synthetic.write_pennfudan(tmp_path_factory.mktemp("pfsrc"), n=20, seed=3)


def test_pennfudan_three_way_split(pf_src, tmp_path):
    ds = prepare_detection_dataset(pf_src, tmp_path / "pf", workers=1, progress=False)
    assert ds.splits == SPLITS == ("train", "val", "test")
    assert ds.num_images == {"train": 14, "val": 2, "test": 4}
    stored = json.loads((ds.root / "split.json").read_text())
    stems = sorted(p.stem for p in (pf_src / "PNGImages").glob("*.png"))
    assert {p: stored[p] for p in PARTS} == seeded_split(stems, val_fraction=0.1, test_fraction=0.2, seed=0)
    for a, b in combinations(PARTS, 2):
        assert not set(stored[a]) & set(stored[b])
    for p in PARTS:
        coco = json.loads(ds.coco_json[p].read_text())
        names = sorted(im["file_name"].rsplit(".", 1)[0] for im in coco["images"])
        assert names == stored[p]
        assert sorted(f.stem for f in ds.image_dir[p].iterdir()) == stored[p]
        assert sorted(f.stem for f in (ds.root / "labels" / p).glob("*.txt")) == stored[p]
    data_yaml = (ds.root / "data.yaml").read_text()
    assert "test: images/test" in data_yaml and "val: images/val" in data_yaml


def test_deepfashion2_keeps_its_release_folders_and_invents_no_test(tmp_path):
    from clothingrec import synthetic

    src = synthetic.write_deepfashion2(tmp_path / "df2", n_train=6, n_val=3, seed=1)
    ds = prepare_detection_dataset(src, tmp_path / "out", workers=1, progress=False)
    assert ds.splits == ("train", "val") and ds.num_images == {"train": 6, "val": 3}
    assert "test" not in ds.coco_json and not (ds.root / "annotations" / "instances_test.json").exists()
    assert "test:" not in (ds.root / "data.yaml").read_text()
    assert any("no test split" in n for n in ds.report.notes)
    assert "no test split" in (ds.root / "report.txt").read_text()
    # a copy that does have annotated test images gets them as its test split
    (src / "test").mkdir()
    for sub in ("image", "annos"):
        (src / "test" / sub).symlink_to(src / "validation" / sub)
    withtest = prepare_detection_dataset(src, tmp_path / "out2", workers=1, progress=False)
    assert withtest.num_images == {"train": 6, "val": 3, "test": 3} and not withtest.report.notes


def test_old_two_way_prepared_folder_is_rebuilt_not_reused(pf_src, tmp_path):
    import clothingrec.convert as conv

    first = prepare_detection_dataset(pf_src, tmp_path / "pf", workers=1, progress=False)
    manifest = json.loads((first.root / "prepared.json").read_text())
    manifest["key"] = "a-key-from-format-4"  # what an earlier (train/val only) version left behind
    (first.root / "prepared.json").write_text(json.dumps(manifest))
    again = prepare_detection_dataset(pf_src, tmp_path / "pf", workers=1, progress=False)
    assert not again.reused and again.num_images == first.num_images
    assert prepare_detection_dataset(pf_src, tmp_path / "pf", workers=1, progress=False).reused
    assert conv.FORMAT_VERSION >= 5


def _ccp_available():
    from clothingrec.paths import CCP, find_dataset

    return find_dataset(CCP, required=False) is not None


@pytest.mark.skipif(not _ccp_available(), reason="CCP not available (make data)")
@pytest.mark.parametrize("classes", ["garments", "person"])
def test_prepared_ccp_sets_hold_exactly_the_stored_ids(classes, tmp_path):
    """Clothing and person detectors get the same stored split: each COCO set is its part's ids (capped here
    to the first ones by name, as ``max_images`` does; a photo with an empty label map is reported, not kept)."""
    ds = prepare_detection_dataset("ccp", tmp_path / classes, classes=classes, workers=1, progress=False,
                                   max_images=60)
    stored = ccp_split()
    desc = json.loads((ds.root / "split.json").read_text())
    assert desc["digest"] == ccp_split_info()["digest"] and {p: desc[p] for p in PARTS} == stored
    skipped = {i.file.split("/")[-1].split(".")[0] for i in ds.report.skipped if i.level == "image"}
    assert ds.report.images_in == {"train": 42, "val": 6, "test": 12}  # 60 in proportion 70 / 10 / 20
    for p in PARTS:
        coco = json.loads(ds.coco_json[p].read_text())
        ids = sorted(im["file_name"].split(".")[0] for im in coco["images"])
        assert ids == [x for x in stored[p][:ds.report.images_in[p]] if x not in skipped], p
        assert sorted(f.stem for f in ds.image_dir[p].iterdir()) == ids
    assert "test: images/test" in (ds.root / "data.yaml").read_text()
