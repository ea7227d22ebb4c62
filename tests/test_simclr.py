"""Self-supervised pretraining (SimCLR) and starting a supervised run from its weights."""
from __future__ import annotations

import math

import pytest
import torch
from test_classify import CLASSES, make_dataset, tiny_config, train
from torch.nn import functional as F

from clothingrec.classify.augment import AugmentParams, train_batch
from clothingrec.classify.inference import load_classifier
from clothingrec.classify.models import build_classifier, load_matching
from clothingrec.classify.module import ClassifierModule
from clothingrec.classify.simclr import SimCLRModule, knn_predict, nt_xent

torch.set_num_threads(1)


def _nt_xent_by_hand(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1).tolist()
    n2 = len(z)
    total = 0.0
    for i in range(n2):
        sims = [sum(a * b for a, b in zip(z[i], z[j])) / t for j in range(n2)]
        positive = (i + n2 // 2) % n2
        denom = sum(math.exp(s) for j, s in enumerate(sims) if j != i)
        total += -math.log(math.exp(sims[positive]) / denom)
    return total / n2


def test_nt_xent_is_the_simclr_loss_written_out():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    assert float(nt_xent(z1, z2, 0.5)) == pytest.approx(_nt_xent_by_hand(z1, z2, 0.5), rel=1e-5)
    # views that agree (and differ from the other images) cost far less than unrelated ones
    assert float(nt_xent(z1, z1 + 0.01 * z2, 0.2)) < 0.1 * float(nt_xent(z1, z2, 0.2))


def test_knn_votes_of_the_nearest_bank_entries():
    bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = torch.tensor([0, 0, 1, 1])
    scores = knn_predict(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), bank, labels, num_classes=3, k=2)
    assert scores.argmax(1).tolist() == [0, 1]
    assert scores[:, 2].eq(0).all()  # a class with no neighbour gets no vote


def test_grayscale_augmentation_draws_only_when_on():
    images = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8)
    on = train_batch(images, 16, AugmentParams(grayscale=1.0), channels_last=False,
                     generator=torch.Generator().manual_seed(1))
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    pixels = on * std + mean
    assert (torch.allclose(pixels[:, 0], pixels[:, 1], atol=1e-5)
            and torch.allclose(pixels[:, 1], pixels[:, 2], atol=1e-5))
    off = [train_batch(images, 16, AugmentParams(grayscale=0.0), channels_last=False,
                       generator=torch.Generator().manual_seed(1)) for _ in range(2)]
    assert torch.equal(off[0], off[1])
    assert not torch.allclose(off[0] * std + mean, pixels)


def test_simclr_config_rules(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=1)
    with pytest.raises(ValueError, match="'ccp-photos' \\(unlabelled\\) needs objective simclr"):
        tiny_config(root, extra_train="ccp-photos")
    with pytest.raises(ValueError, match="needs sampler shuffle"):
        tiny_config(root, objective="simclr", sampler="weighted")
    with pytest.raises(ValueError, match="does not mix batches"):
        tiny_config(root, objective="simclr", mixup_alpha=0.2)
    with pytest.raises(ValueError, match="objective='byol'"):
        tiny_config(root, objective="byol")


def test_ccp_photos_are_the_train_part_unlabelled():
    from clothingrec.classify.data import with_unlabelled_photos
    from clothingrec.datasets.ccp import part_photos
    from clothingrec.datasets.clothing_small import read_split
    from clothingrec.splits import ccp_split

    small = read_split("train")
    merged = with_unlabelled_photos(small)
    added = merged.records[len(small.records):]
    split = ccp_split()
    assert [r.path.stem for r in added] == split["train"] == [p.stem for p in part_photos("train")]
    assert {r.label for r in added} == {-1}
    assert len(with_unlabelled_photos(small, per_class=3).records) == len(small.records) + 3


@pytest.mark.slow
def test_simclr_run_learns_and_initialises_a_supervised_run(tmp_path):
    root = make_dataset(tmp_path / "data", per_class=6)
    cfg = tiny_config(root, objective="simclr", epochs=6, imgsz=32, batch=20, lr=0.003, aug_scale_min=0.5,
                      aug_hflip=0.5, aug_brightness=0.3, aug_grayscale=0.2, simclr_proj_dim=16)
    result = train(cfg, tmp_path / "simclr")
    hist = result.history()
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert hist["train_loss"].iloc[0] <= math.log(2 * 20 - 1) + 0.5  # starts near chance, not above it
    assert hist["val_macro_f1"].notna().all() and result.best_score > 0.1  # k-NN validation ran every epoch
    with pytest.raises(ValueError, match="projection head, not a classifier"):
        load_classifier(result.weights_path)

    pretrained = torch.load(result.weights_path, weights_only=False)["state_dict"]
    module = ClassifierModule(tiny_config(root, init_weights=str(tmp_path / "simclr")), CLASSES)
    own = module.model.state_dict()
    head = [k for k in own if k not in module.init_loaded]
    assert head and all(k.startswith("classifier.3") for k in head)  # only the new 10-way layer is fresh
    assert all(torch.equal(own[k], pretrained[k]) for k in module.init_loaded)
    # the checkpoint form is read the same way
    ckpt = next((tmp_path / "simclr" / "checkpoints").glob("best-*.ckpt"))
    again = ClassifierModule(tiny_config(root, init_weights=str(ckpt)), CLASSES)
    assert again.init_loaded == module.init_loaded
    assert isinstance(SimCLRModule(cfg, CLASSES).model.classifier[3][-1], torch.nn.Linear)


def test_init_weights_of_another_architecture_is_refused():
    model = build_classifier("mobilenet_v3_small", 10)
    with pytest.raises(ValueError, match="no tensor matches"):
        load_matching(model, {"fc.weight": torch.zeros(10, 2048)})


@pytest.mark.slow
def test_distillation_student_follows_its_teachers_and_stores_none_of_them(tmp_path):
    """teachers=...: the student is fitted to the teachers' softened predictions on the same augmented batch;
    with distill_weight 1 it learns only from them.  Teachers are never part of the student's weights."""
    import numpy as np

    from clothingrec.classify import report

    root = make_dataset(tmp_path / "data", per_class=6)
    teacher = train(tiny_config(root, epochs=6, imgsz=32, lr=0.003), tmp_path / "teacher")
    student_cfg = tiny_config(root, epochs=6, imgsz=32, lr=0.003,
                              teachers=f"{tmp_path / 'teacher'}, {teacher.weights_path}", distill_weight=1.0,
                              distill_temperature=1.0, seed=3)
    assert student_cfg.teacher_list == [str(tmp_path / "teacher"), str(teacher.weights_path)]
    student = train(student_cfg, tmp_path / "student")
    hist = student.history()
    assert hist["train_distill_loss"].iloc[-1] < hist["train_distill_loss"].iloc[0]
    t_pred = report.evaluate(teacher.weights_path, "validation", dataset=root, device="cpu", cache_store=False).y_pred
    s_pred = report.evaluate(student.weights_path, "validation", dataset=root, device="cpu", cache_store=False).y_pred
    assert np.mean(t_pred == s_pred) > 0.4  # chance agreement is about 0.1
    plain = ClassifierModule(tiny_config(root), CLASSES)
    exported = torch.load(student.weights_path, weights_only=False)["state_dict"]
    assert set(exported) == set(plain.model.state_dict())
    ckpt = torch.load(next((tmp_path / "student" / "checkpoints").glob("best-*.ckpt")), weights_only=False)
    assert not any("teacher" in k for k in ckpt["state_dict"])
    with pytest.raises(FileNotFoundError, match="teachers: no file"):
        ClassifierModule(tiny_config(root, teachers=str(tmp_path / "nowhere.pt")), CLASSES)
