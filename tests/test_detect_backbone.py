"""A YOLO backbone pretrained here by classification, and a detector started from it (``init_weights``)."""
import json

import numpy as np
import pytest
from PIL import Image

from clothingrec.detect.backbone import merged_folder


def write_folder_set(root, parts=("train", "validation"), classes=("red", "blue"), n=4, size=48):
    """An image-folder classification set: ``root/<part>/<class>/*.jpg``, plain colours with noise."""
    rng = np.random.default_rng(0)
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 220, 30)}
    for part in parts:
        for cls in classes:
            (root / part / cls).mkdir(parents=True)
            for i in range(n):
                pixels = np.clip(np.array(colours[cls]) + rng.integers(-20, 20, (size, size, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(root / part / cls / f"{cls}_{i}.jpg")
    return root


def test_merged_folder_adds_other_train_sets_and_keeps_the_base_val(tmp_path):
    base = write_folder_set(tmp_path / "base")
    crops = write_folder_set(tmp_path / "crops", parts=("train", "test"), n=2)
    out = merged_folder(tmp_path / "merged", base, [crops])
    assert sorted(p.name for p in (out / "train" / "red").iterdir()) == [
        "crops-red_0.jpg", "crops-red_1.jpg", "red_0.jpg", "red_1.jpg", "red_2.jpg", "red_3.jpg"]
    assert sorted(p.name for p in (out / "val" / "blue").iterdir()) == [f"blue_{i}.jpg" for i in range(4)]
    assert not (out / "test").exists()  # the extra set's test part is never read
    assert (out / "train" / "red" / "crops-red_0.jpg").resolve() == (crops / "train" / "red" / "red_0.jpg").resolve()
    other = write_folder_set(tmp_path / "other", parts=("train",), classes=("green",), n=1)
    with pytest.raises(ValueError, match="green"):
        merged_folder(tmp_path / "merged2", base, [other])
    with pytest.raises(FileNotFoundError, match="validation"):
        merged_folder(tmp_path / "merged3", write_folder_set(tmp_path / "noval", parts=("train",)), [])


@pytest.mark.slow
def test_a_detector_starts_from_a_backbone_pretrained_by_classification(tmp_path):
    """The classifier's layers reach the detector: with a zero learning rate the detector's first convolution
    is the backbone's, bit for bit; the config resolves the backbone's folder to its weights."""
    import torch
    from test_detect_yolo import write_yolo_fixture

    from clothingrec.detect.backbone import main
    from clothingrec.detect.config import load_config
    from clothingrec.detect.yolo import checkpoint_task, train_yolo

    folder = write_folder_set(tmp_path / "cls")
    argv = ["--out", str(tmp_path / "backbone"), "--data", str(folder), "--imgsz", "32", "--epochs", "1",
            "--batch", "4", "--device", "cpu"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "backbone" / "backbone.json").read_text())
    assert record["weights"] == "yolo/weights/best.pt" and record["epochs_run"] == 1
    assert 0 <= record["best_val_top1"] <= 1 and record["core_hours"] > 0 and record["extra_train"] == []
    assert record["provenance"]["command"] == "python -m clothingrec.detect.backbone " + " ".join(argv)
    weights = tmp_path / "backbone" / record["weights"]
    assert checkpoint_task(weights) == "classify"
    assert load_config("smoke", init_weights=str(tmp_path / "backbone")).init_weights_file() == str(weights)

    data_yaml, _, _ = write_yolo_fixture(tmp_path / "data")
    detector = train_yolo(data_yaml, tmp_path / "det", model="yolov8n", pretrained=str(weights), epochs=1, imgsz=64,
                          batch=4, workers=0, device="cpu", name="yolo", optimizer="SGD", lr0=0.0, warmup_epochs=0)
    assert checkpoint_task(detector.last) == "detect"

    def first_conv(path):
        return torch.load(path, map_location="cpu", weights_only=False)["model"].state_dict()["model.0.conv.weight"]

    assert torch.equal(first_conv(detector.last), first_conv(weights))
