"""The model zoo: committed weights for ``auto``, relative names, untrained stand-ins flagged as such."""
from __future__ import annotations

import numpy as np
import pytest

from clothingrec import zoo
from clothingrec.paths import RESULTS_DIR
from clothingrec.structures import Classifier, Predictor


def test_auto_finds_the_committed_classifier_and_names_it_relative():
    if zoo.committed("classifier") is None:
        pytest.fail("the committed classifier weights under runs/results/ are missing")
    clf, info = zoo.resolve("classifier", "auto")
    assert isinstance(clf, Classifier) and info.trained and info.role == "classifier"
    # the one trained with CCP garment crops: the demo classifies crops of street photos
    assert info.source == "runs/results/classifier-mobilenet_v3_small-scratch-mix-ccp/mobilenet_v3_small.pt"
    assert info.to_dict()["weights"] == "trained" and info.categories == list(clf.classes)
    # the committed YOLO run is the clothing detector's "auto" (a folder: load_detector finds its checkpoint)
    assert zoo.committed("clothing-detector") == RESULTS_DIR / "detector-yolo-ccp"
    assert zoo.committed("clothing-detector", "fasterrcnn") is None  # committed without its checkpoint


def test_committed_lookup_per_role_and_family(tmp_path):
    (tmp_path / "detector-maskrcnn-x").mkdir()                        # no weights: skipped
    (tmp_path / "detector-yolo-x" / "weights").mkdir(parents=True)
    (tmp_path / "detector-yolo-x" / "weights" / "best.pt").write_bytes(b"")
    (tmp_path / "classifier-resnet50-x").mkdir()
    (tmp_path / "classifier-resnet50-x" / "resnet50.ckpt").write_bytes(b"")
    assert zoo.committed("clothing-detector", root=tmp_path) == tmp_path / "detector-yolo-x"
    assert zoo.committed("clothing-detector", "maskrcnn", root=tmp_path) is None
    assert zoo.committed("classifier", root=tmp_path) == tmp_path / "classifier-resnet50-x" / "resnet50.ckpt"
    assert zoo.committed("person-detector", root=tmp_path) is None
    # AUTO's run comes first when it has weights, whatever its name sorts as; without weights it is passed over
    preferred = tmp_path / zoo.AUTO["classifier"]
    preferred.mkdir()
    assert zoo.committed("classifier", root=tmp_path) == tmp_path / "classifier-resnet50-x" / "resnet50.ckpt"
    (preferred / "mobilenet_v3_small.pt").write_bytes(b"")
    assert zoo.committed("classifier", root=tmp_path) == preferred / "mobilenet_v3_small.pt"
    assert zoo.committed("classifier", "resnet50", root=tmp_path) == (
        tmp_path / "classifier-resnet50-x" / "resnet50.ckpt")
    with pytest.raises(ValueError, match="unknown role"):
        zoo.resolve("garment-detector", "untrained")


def test_untrained_stand_ins_are_flagged():
    person, info = zoo.resolve("person-detector", "untrained", min_size=96, box_detections_per_img=3)
    assert isinstance(person, Predictor) and not info.trained and info.source == zoo.UNTRAINED
    assert info.categories == ["person"] and info.architecture == "fasterrcnn mobilenet_v3_large_fpn @96px"
    assert len(person.predict(np.zeros((80, 60, 3), np.uint8))) <= 3
    clf, cinfo = zoo.resolve("classifier", "untrained", imgsz=32)
    assert isinstance(clf, Classifier) and not cinfo.trained and cinfo.architecture == "mobilenet_v3_small @32px"
    with pytest.raises(zoo.ModelLoadError, match="person-detector: .*missing-run does not exist"):
        zoo.resolve("person-detector", "missing-run")


def test_a_fresh_clone_serves_only_trained_models():
    """`make serve` on a fresh clone: every role's `auto` is a committed run whose weights git tracks (a weights
    file kept only on the machine that trained it would leave a clone with an untrained stand-in)."""
    import subprocess

    from clothingrec.paths import PROJECT_ROOT

    for role in zoo.ROLES:
        found = zoo.committed(role)
        assert found is not None, f"{role}: no committed run with weights under runs/results/"
        files = [found] if found.is_file() else sorted(p for p in found.rglob("*") if p.suffix in zoo.WEIGHT_SUFFIXES)
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", *map(str, files)], cwd=PROJECT_ROOT,
                                 capture_output=True, text=True)
        assert tracked.returncode == 0, f"{role}: {files} not tracked by git: {tracked.stderr.strip()}"
