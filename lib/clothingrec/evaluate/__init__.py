"""The one detector evaluation (pycocotools), shared by YOLO, torchvision and detectron2 detectors.

    from clothingrec.evaluate import evaluate_predictor
    evals, run = evaluate_predictor(predictor, coco_json["val"], image_dir["val"])
    evals["bbox"].stats["AP50"], evals["bbox"].per_category
"""
from clothingrec.evaluate.coco import (
    STAT_NAMES,
    CocoEvalResult,
    coco_evaluate,
    ground_truth_as_results,
    load_coco,
)
from clothingrec.evaluate.curves import labelled, learning_curve, plot_learning_curves
from clothingrec.evaluate.results import (
    EXPORT_SCORE_THRESHOLD,
    PredictionRun,
    confusion_matrix,
    detections_to_results,
    detector_metrics,
    encode_mask,
    evaluate_predictions,
    evaluate_predictor,
    predict_coco,
    read_image,
    results_table,
    write_json,
)

__all__ = [
    "STAT_NAMES", "CocoEvalResult", "coco_evaluate", "ground_truth_as_results", "load_coco",
    "EXPORT_SCORE_THRESHOLD", "PredictionRun", "confusion_matrix", "detections_to_results",
    "detector_metrics", "encode_mask", "evaluate_predictions", "evaluate_predictor", "predict_coco",
    "read_image", "results_table", "write_json", "labelled", "learning_curve", "plot_learning_curves",
]
