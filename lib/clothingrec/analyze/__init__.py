"""Model analysis: MACs/FLOPs (torchscan, fvcore, thop), receptive fields, activation memory, latency.

See :mod:`.flops` for the counting conventions, :mod:`.receptive_field` for the theoretical and
effective receptive field, :mod:`.memory`, :mod:`.latency` (reusable timing primitive),
:mod:`.models` (what is counted for each model family) and :mod:`.report` (``analysis.json``).
"""
from clothingrec.analyze.flops import (
    CountResult,
    Workload,
    conv2d_macs,
    conv2d_out_size,
    count_all,
    count_fvcore,
    count_thop,
    count_torchscan,
    cross_check_table,
    layer_table,
    linear_macs,
)
from clothingrec.analyze.latency import environment, measure_model, time_callable
from clothingrec.analyze.memory import activation_memory, model_size
from clothingrec.analyze.models import ModelSpec, build_model, parse_spec, workloads
from clothingrec.analyze.receptive_field import (
    RF,
    compose_sequential,
    effective_rf,
    erf_extent,
    sequential_rf,
    theoretical_rf,
)
from clothingrec.analyze.report import (
    PROFILES,
    Settings,
    analysis_plan,
    analyze_model,
    load_analysis,
    summary_table,
    write_analysis,
)

__all__ = [
    "CountResult", "Workload", "conv2d_macs", "conv2d_out_size", "count_all", "count_fvcore", "count_thop",
    "count_torchscan", "cross_check_table", "layer_table", "linear_macs", "environment", "measure_model",
    "time_callable", "activation_memory", "model_size", "ModelSpec", "build_model", "parse_spec", "workloads",
    "RF", "compose_sequential", "effective_rf", "erf_extent", "sequential_rf", "theoretical_rf", "Settings",
    "analyze_model", "load_analysis", "summary_table", "write_analysis", "PROFILES", "analysis_plan",
]
