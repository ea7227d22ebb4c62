"""The comparison table is built from results files (fixtures here), never from hand-typed numbers."""
import json
import math

import pytest

from clothingrec import compare
from clothingrec.reference import references


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def _classifier(name, model, acc, f1, **kw):
    return {"kind": "classifier", "name": name, "model": model, "dataset": "clothing-dataset-small",
            "split": "test", "accuracy": acc, "macro_f1": f1, "weighted_f1": f1, "per_class": {},
            "imgsz": 224, "params": 1, "provenance": kw.pop("provenance", {}), **kw}


def _detector(name, family, model, ap, ap50, segm=None):
    return {"kind": "detector", "name": name, "family": family, "model": model, "dataset": "deepfashion2-synth",
            "split": "val", "bbox_AP": ap, "bbox_AP50": ap50, "segm_AP": segm, "segm_AP50": segm,
            "imgsz": 320, "params": 1, "provenance": {}}


def _analysis_record(name, macs, params, p50, size=224):
    return {"name": name, "macs": macs, "flops": 2 * macs, "params": params, "input_size": [size, size],
            "latency": {"batch1_p50_ms": p50, "batch1_p95_ms": p50 * 1.2, "images_per_s": 1000 / p50},
            "threads": 2, "device": "cpu"}


@pytest.fixture()
def tree(tmp_path):
    results = tmp_path / "runs" / "results"
    runs = tmp_path / "runs"
    _write(results / "mnv3" / "metrics.json", _classifier("mnv3-real", "mobilenet_v3_small", 0.70, 0.65))
    _write(results / "r50" / "metrics.json", _classifier("r50-real", "resnet50", 0.74, 0.69))
    _write(results / "yolo" / "metrics.json", _detector("yolo-real", "yolo", "yolov8n.yaml", 0.20, 0.41))
    _write(results / "mask" / "metrics.json",
           _detector("mask-real", "maskrcnn", "resnet50_fpn", 0.15, 0.33, segm=0.12))
    # a smoke run beside them, and broken files that must be skipped with a reason
    smoke = runs / "09_train_classifier" / "20260101-000000"
    _write(smoke / "metrics.json", _classifier("mnv3-smoke", "mobilenet_v3_small", 0.20, 0.10))
    (runs / "09_train_classifier" / "latest").symlink_to(smoke.name)
    _write(results / "broken" / "metrics.json", "{not json")
    _write(results / "nofield" / "metrics.json", {"kind": "classifier", "name": "x", "model": "resnet50",
                                                   "macro_f1": 0.5})
    _write(results / "percent" / "metrics.json", _classifier("p", "resnet50", 74.0, 0.69))
    analysis = {"schema": 1, "models": {
        "mobilenet_v3_small": _analysis_record("mobilenet_v3_small", 55.5e6, 1.53e6, 5.0),
        "resnet50": _analysis_record("resnet50", 4.09e9, 23.5e6, 60.0),
        "yolov8n": _analysis_record("yolov8n", 4.1e9, 3.0e6, 80.0, 640),
        "maskrcnn_resnet50_fpn": _analysis_record("maskrcnn_resnet50_fpn", 130e9, 44e6, 3000.0, 512),
    }}
    _write(tmp_path / "runs" / "results" / "analysis" / "analysis.json", analysis)
    return tmp_path


def test_collect_skips_bad_files_with_reasons(tree):
    col = compare.collect_results(tree / "runs" / "results", tree / "runs")
    names = sorted(r.data["name"] for r in col.results)
    assert names == ["mask-real", "mnv3-real", "mnv3-smoke", "r50-real", "yolo-real"]
    assert {r.source for r in col.results if r.data["name"].endswith("real")} == {"committed"}
    assert [r.source for r in col.results if r.data["name"] == "mnv3-smoke"] == ["smoke"]
    joined = "\n".join(col.skipped)
    assert "broken/metrics.json: cannot read JSON" in joined
    assert "nofield/metrics.json: field 'accuracy' missing" in joined
    assert "percent/metrics.json: field 'accuracy' = 74.0 is outside [0, 1]" in joined


def test_classifier_table_joins_analysis_and_adds_reference_rows(tree):
    col = compare.collect_results(tree / "runs" / "results", tree / "runs")
    analysis = compare.load_analysis_models(compare.find_analysis(tree / "runs" / "results", tree / "runs"))
    table = compare.classifier_table(col, analysis)
    real = table[table["run"] == "mnv3-real"].iloc[0]
    assert real["source"] == "committed" and real["from"] == "results/mnv3"
    assert table[table["run"] == "mnv3-smoke"].iloc[0]["from"] == "09_train_classifier"
    assert real["accuracy (%)"] == pytest.approx(70.0) and real["macro-F1 (%)"] == pytest.approx(65.0)
    assert real["GMACs"] == pytest.approx(0.0555) and real["GFLOPs"] == pytest.approx(0.111)
    assert real["params (M)"] == pytest.approx(1.53) and real["latency p50 (ms)"] == pytest.approx(5.0)
    refs = table[table["source"] == "reference"]
    assert list(refs["model"]) == ["mobilenet_v3_small", "resnet50"]
    published = {r.model: r.metrics for r in references("classifier")}
    assert refs.iloc[0]["accuracy (%)"] == pytest.approx(100 * published["mobilenet_v3_small"]["accuracy"])
    assert refs.iloc[1]["macro-F1 (%)"] == pytest.approx(100 * published["resnet50"]["macro_f1"])
    # the published models' own compute (1000-class heads), not this project's 10-class figures
    assert refs.iloc[0]["GMACs"] == pytest.approx(0.0625) and refs.iloc[0]["params (M)"] == pytest.approx(2.54)
    assert refs.iloc[1]["GMACs"] == pytest.approx(4.13) and refs.iloc[1]["params (M)"] == pytest.approx(25.6)
    assert all("MACs and parameters as published (1000-class head, 224 px)" in n for n in refs["note"])
    # committed first, smoke next, reference last
    assert list(table["source"]) == ["committed", "committed", "smoke", "reference", "reference"]


def test_detector_table_matches_family_and_model_names(tree):
    col = compare.collect_results(tree / "runs" / "results", tree / "runs")
    analysis = compare.load_analysis_models(tree / "runs" / "results" / "analysis" / "analysis.json")
    table = compare.detector_table(col, analysis)
    yolo = table[table["run"] == "yolo-real"].iloc[0]
    assert yolo["GFLOPs"] == pytest.approx(8.2)            # "yolov8n.yaml" joined to "yolov8n"
    mask = table[table["run"] == "mask-real"].iloc[0]
    assert mask["GFLOPs"] == pytest.approx(260.0)          # family + backbone → maskrcnn_resnet50_fpn
    assert mask["segm AP"] == pytest.approx(0.12)
    ref = table[table["run"] == "torchvision tutorial Mask R-CNN (Penn-Fudan)"].iloc[0]
    assert ref["bbox AP"] == pytest.approx(0.799) and "other task" in ref["note"]
    assert math.isnan(table[table["run"] == "yolo-real"].iloc[0]["segm AP"])


def test_verdict_is_computed_from_the_table(tree):
    col = compare.collect_results(tree / "runs" / "results", tree / "runs")
    analysis = compare.load_analysis_models(compare.find_analysis(tree / "runs" / "results", tree / "runs"))
    cls, det = compare.classifier_table(col, analysis), compare.detector_table(col, analysis)
    lines = compare.verdict(cls, det)
    text = "\n".join(lines)
    assert "best accuracy 74.0% by resnet50" in text
    assert "resnet50 costs 73.7× the FLOPs and 12.0× the latency of mobilenet_v3_small for +4.0 points accuracy" in text
    assert "Pareto front (fewer FLOPs, higher accuracy): mobilenet_v3_small, resnet50" in text
    assert "best bbox AP 0.200 by yolov8n.yaml" in text
    assert "clothing detectors on deepfashion2-synth/val (split not recorded) (committed runs)" in text
    assert "person detectors: only reference rows" in text
    assert "maskrcnn_resnet50_fpn" in set(det["model"])            # backbone-only model names get their family
    assert "+14.4 points versus ours" in text                   # published resnet50 88.44 vs our 74.0


def test_verdict_ranks_within_one_data_split(tmp_path):
    """A run scored on another split (an earlier split's val) is never ranked against today's test split."""
    results = tmp_path / "runs" / "results"
    old = {**_detector("frcnn-old", "fasterrcnn", "mobilenet_v3_large_fpn", 0.30, 0.50), "dataset": "ccp"}
    new = {**_detector("yolo-new", "yolo", "yolov8n", 0.20, 0.45), "dataset": "ccp", "split": "test",
           "provenance": {"split_digest": "937ab4a3ffff"}}
    new2 = {**_detector("frcnn-new", "fasterrcnn", "mobilenet_v3_large_fpn", 0.15, 0.40), "dataset": "ccp",
            "split": "test", "provenance": {"split_digest": "937ab4a3ffff"}}
    for d in (old, new, new2):
        _write(results / d["name"] / "metrics.json", d)
    det = compare.detector_table(compare.collect_results(results, None), {}, refs=[])
    assert set(det["dataset"]) == {"ccp/val (split not recorded)", "ccp/test [937ab4a3]"}
    lines = compare.verdict(compare.classifier_table(compare.collect_results(results, None), {}, refs=[]), det)
    text = "\n".join(lines)
    assert "clothing detectors on ccp/test [937ab4a3] (committed runs): best bbox AP 0.200 by yolov8n" in text
    assert ("clothing detectors on ccp/val (split not recorded) (committed runs): "
            "best bbox AP 0.300 by fasterrcnn") in text
    assert text.index("ccp/test [937ab4a3]") < text.index("ccp/val")  # the split named by its digest first
    test_lines = [line for line in lines if "ccp/test" in line]
    assert not any("0.300" in line for line in test_lines)


def test_a_detectron2_run_is_named_by_its_backend_and_not_given_torchvisions_compute_figures(tree):
    results = tree / "runs" / "results"
    d2 = {k: v for k, v in _detector("mask-d2", "maskrcnn", "resnet50_fpn", 0.05, 0.12, segm=0.04).items()
          if k != "provenance"}
    _write(results / "d2" / "run.json", {"task": "detect", "backend": "detectron2", "metrics": d2,
                                         "split": {"val": {"digest": "cccc"}}})
    col = compare.collect_results(results, tree / "runs")
    analysis = compare.load_analysis_models(results / "analysis" / "analysis.json")
    table = compare.detector_table(col, analysis).set_index("run")
    assert table.loc["mask-d2", "model"] == "maskrcnn_resnet50_fpn (detectron2)"
    assert math.isnan(table.loc["mask-d2", "GFLOPs"]) and "no analysis record" in table.loc["mask-d2", "note"]
    assert table.loc["mask-real", "model"] == "maskrcnn_resnet50_fpn"  # torchvision's keeps its figures
    assert table.loc["mask-real", "GFLOPs"] == pytest.approx(260.0)


def test_a_run_with_a_scored_test_part_is_listed_by_its_test_score(tmp_path):
    results = tmp_path / "runs" / "results"
    digests = {"train": "aaaa", "val": "937ab4a3ffff", "test": "b174a9efffff"}
    val = {k: v for k, v in _detector("yolo-ho", "yolo", "yolov8n", 0.35, 0.56).items() if k != "provenance"}
    _write(results / "ho" / "run.json", {"task": "detect", "metrics": {**val, "dataset": "ccp"},
                                         "split": {k: {"digest": v} for k, v in digests.items()}})
    _write(results / "ho" / "test_metrics.json",
           {**_detector("yolo-ho", "yolo", "yolov8n", 0.30, 0.49), "dataset": "ccp", "split": "test",
            "provenance": {"split_digest": digests["test"]}})
    _write(results / "valonly" / "run.json", {"task": "detect", "metrics": {
        **_detector("frcnn-v", "fasterrcnn", "mobilenet_v3_large_fpn", 0.1, 0.2), "dataset": "ccp"},
        "split": {k: {"digest": v} for k, v in digests.items()}})
    det = compare.detector_table(compare.collect_results(results, None), {}, refs=[])
    rows = {(r["run"], r["dataset"]): r["bbox AP50"] for _, r in det.iterrows()}
    assert rows == {("yolo-ho", "ccp/test [b174a9ef]"): 0.49, ("frcnn-v", "ccp/val [937ab4a3]"): 0.2}


def test_verdict_compares_costs_among_analysed_models_only(tree):
    """The best run has no analysis record at its size: no "n/a ×" sentence, the analysed ones are compared."""
    results = tree / "runs" / "results"
    _write(results / "big" / "metrics.json", _detector("yolo-big", "yolo", "yolov8x", 0.9, 0.95))
    col = compare.collect_results(results, tree / "runs")
    analysis = compare.load_analysis_models(results / "analysis" / "analysis.json")
    text = "\n".join(compare.verdict(compare.classifier_table(col, analysis), compare.detector_table(col, analysis)))
    assert "best bbox AP 0.900 by yolov8x" in text and "n/a×" not in text and "costs n/a" not in text
    assert "Cost below among the analysed models" in text


def test_smoke_only_verdict_says_so(tmp_path):
    runs = tmp_path / "runs"
    run = runs / "09_train_classifier" / "a"
    _write(run / "metrics.json", _classifier("s", "resnet50", 0.3, 0.2))
    (runs / "09_train_classifier" / "latest").symlink_to("a")
    col = compare.collect_results(runs / "results", runs)
    cls = compare.classifier_table(col, {})
    lines = compare.verdict(cls, compare.detector_table(col, {}))
    assert "smoke runs only" in lines[0]
    assert lines[-1].startswith("person detectors: only reference rows")
    assert cls.iloc[0]["note"] == "no analysis record for this model"


def test_duplicate_of_committed_run_is_not_listed_twice(tree):
    runs = tree / "runs"
    full = runs / "10_evaluate_classifier" / "b"
    _write(full / "metrics.json", _classifier("r50-real", "resnet50", 0.74, 0.69, provenance={"profile": "full"}))
    (runs / "10_evaluate_classifier" / "latest").symlink_to("b")
    col = compare.collect_results(runs / "results", runs)
    assert sum(r.data["name"] == "r50-real" for r in col.results) == 1


def test_bad_analysis_file_is_reported(tmp_path):
    skipped = []
    p = _write(tmp_path / "analysis.json", {"schema": 1})
    assert compare.load_analysis_models(p, skipped) == {}
    assert "analysis.json" in skipped[0] and "'models'" in skipped[0]


def test_markdown_and_outputs(tree, tmp_path):
    col = compare.collect_results(tree / "runs" / "results", tree / "runs")
    analysis = compare.load_analysis_models(compare.find_analysis(tree / "runs" / "results", tree / "runs"))
    cls, det = compare.classifier_table(col, analysis), compare.detector_table(col, analysis)
    md = compare.to_markdown(cls, ["model", "source", "accuracy (%)", "GFLOPs"])
    assert md.splitlines()[0] == "| model | source | accuracy (%) | GFLOPs |"
    assert "| resnet50 | committed | 74 | 8.18 |" in md
    summary = compare.write_comparison(tmp_path / "out", cls, det, compare.verdict(cls, det), col, None)
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert text.startswith("# Model comparison")
    assert len(summary["skipped"]) == 3
    # detectors are named by their folder: two runs of one recipe share a record name, never a folder
    assert "| model | from | source | dataset | bbox AP |" in text and "| results/yolo | committed |" in text
    # the cost columns say what they count (R-CNN heads at their caps), under the table
    assert text.index(compare.DETECTOR_COST_NOTE) > text.index("| model | from |")


def test_model_key_normalisation():
    assert compare.model_key("weights/yolov8n.yaml") == "yolov8n"
    assert compare.model_key("YOLOv8n-seg.pt") == "yolov8n_seg"


def test_same_architecture_for_two_tasks_joins_by_dataset():
    analysis = {
        "fasterrcnn_resnet50_fpn": {**_analysis_record("fasterrcnn_resnet50_fpn", 60e9, 41.3e6, 900.0, 512),
                                    "dataset": "deepfashion2"},
        "person fasterrcnn_resnet50_fpn": {**_analysis_record("fasterrcnn_resnet50_fpn", 59e9, 41.0e6, 850.0, 512),
                                           "dataset": "person"},
    }
    person = {**_detector("p", "fasterrcnn", "resnet50_fpn", 0.5, 0.8), "dataset": "PennFudanPed", "imgsz": 512}
    df2 = {**_detector("d", "fasterrcnn", "fasterrcnn_resnet50_fpn", 0.1, 0.2), "dataset": "deepfashion2-synthetic"}
    assert compare.match_analysis(person, analysis)["macs"] == 59e9
    assert compare.match_analysis(df2, analysis)["macs"] == 60e9
    assert compare.match_analysis({"model": "resnet18"}, analysis) is None


def test_identical_results_from_two_notebooks_are_listed_once(tmp_path):
    runs = tmp_path / "runs"
    for nb in ("09_train_classifier", "10_evaluate_classifier"):
        _write(runs / nb / "a" / "metrics.json", _classifier("same", "resnet50", 0.3, 0.2))
        (runs / nb / "latest").symlink_to("a")
    _write(runs / "10_evaluate_classifier" / "a" / "val" / "metrics.json",
           {**_classifier("same", "resnet50", 0.35, 0.25), "split": "validation"})
    col = compare.collect_results(runs / "results", runs)
    assert sorted((r.data["split"], r.data["accuracy"]) for r in col.results) == [("test", 0.3), ("validation", 0.35)]


def test_detector_rows_name_the_photos_of_their_split(tmp_path):
    """Two runs scored on a part called `val` of different stored splits: the table says which photos each saw."""
    import json

    for name, digest in (("old", "b174a9efc950a3d8"), ("new", "937ab4a320c97dac")):
        folder = tmp_path / "results" / name
        folder.mkdir(parents=True)
        record = {"task": "detect", "split": {"val": {"digest": digest, "images": 100}},
                  "metrics": _detector(name, "yolo", "yolov8n", 0.3, 0.5), "provenance": {}}
        (folder / "run.json").write_text(json.dumps(record))
    table = compare.detector_table(compare.collect_results(tmp_path / "results", None), {}, refs=[])
    labels = dict(zip(table["run"], table["dataset"]))
    assert labels["old"].endswith("/val [b174a9ef]") and labels["new"].endswith("/val [937ab4a3]")


def test_results_inside_the_project_are_read_from_any_working_directory(tree, monkeypatch):
    """Skip reasons name repository paths; the files themselves are still read (a notebook's cwd is notebooks/)."""
    from clothingrec import paths

    monkeypatch.setattr(paths, "PROJECT_ROOT", tree)
    elsewhere = tree / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    col = compare.collect_results(tree / "runs" / "results", None)
    assert sorted(r.data["name"] for r in col.results) == ["mask-real", "mnv3-real", "r50-real", "yolo-real"]
    assert any(s.startswith("runs/results/broken/metrics.json: cannot read JSON") for s in col.skipped)


def test_a_held_out_rcnn_joins_the_analysis_at_its_shorter_side_with_its_heads(tmp_path):
    # the recipe's imgsz is an R-CNN's longer side (533: shorter side 320); the run trained with light heads
    results = tmp_path / "runs" / "results"
    frcnn = {**_detector("frcnn-ho", "fasterrcnn", "mobilenet_v3_large_fpn", 0.2, 0.43), "imgsz": 533,
             "dataset": "ccp", "split": "test"}
    _write(results / "ho" / "test_metrics.json", frcnn)
    _write(results / "ho" / "run.json", {"task": "detect", "config": {"imgsz": 533, "light_heads": True},
                                         "metrics": {**frcnn, "split": "val"}})
    _write(results / "norecord" / "metrics.json", {**frcnn, "name": "frcnn-old", "imgsz": 320})
    collection = compare.collect_results(results, None)
    by_name = {r.data["name"]: r.data for r in collection.results}
    assert by_name["frcnn-ho"]["analysis_imgsz"] == 320 and by_name["frcnn-ho"]["light_heads"] is True
    assert "analysis_imgsz" not in by_name["frcnn-old"]
    name = "fasterrcnn_mobilenet_v3_large_fpn"
    sizes = ((f"{name}@533", 9e9, 300.0, 533), (f"{name}@320", 3e9, 90.0, 320),
             (f"{name}@320 (light heads)", 2e9, 60.0, 320))
    analysis = {label: {**_analysis_record(name, macs, 19e6, ms, size), "label": label}
                for label, macs, ms, size in sizes}
    assert compare.match_analysis(by_name["frcnn-ho"], analysis)["label"] == f"{name}@320 (light heads)"
    from clothingrec.analyze.report import specs_from_results
    (spec,) = specs_from_results([r for r in collection.results if r.data["name"] == "frcnn-ho"])
    assert spec.key == f"{name}@320 (light heads)" and spec.input_size == 320
