"""bench/bench_classifier.py --quick runs end to end and writes its JSON and markdown (figures, no timing asserts)."""
import importlib.util
import json

from clothingrec.paths import PROJECT_ROOT


def test_bench_classifier_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_classifier", PROJECT_ROOT / "bench" / "bench_classifier.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "classifier-quick.json").read_text())
    assert len(record["results"]) == 2
    for r in record["results"].values():
        assert r["images"] > 0 and r["images_per_s"] > 0 and 0 < r["fraction_of_matmul_peak"]
    assert record["train_flops_per_image"] > 0 and record["matmul_fp32_peak_gflops"] > 0
    assert "Speed-up" in (tmp_path / "classifier-quick.md").read_text()
