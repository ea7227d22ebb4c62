"""Fast inference: ONNX Runtime (fp32 / int8) and OpenVINO serving paths, chosen by measurement among those
that agree with eager.

- :func:`serving_classifier` (weights path or ``ImageClassifier``) → :class:`ServingClassifier`
  (the ``ImageClassifier`` with its logits from the fastest backend that agrees; ``.backend``,
  ``.agreement``, ``.latency``, ``.candidates``; ``.predict(images)``, ``.classify_crops(image, boxes)``).
- :func:`fastest_predictor` (an eager detector predictor, validation images) → a predictor of the same
  class with ``.serving`` / ``.serving_backend`` (torchvision R-CNN hybrid in ORT; YOLO in ORT or OpenVINO).
- :func:`serve_detectors` (person, clothing, images, serving="fastest"|"eager") → both pipeline detectors
  served (the person detector fp32 only: see :mod:`~clothingrec.serve.pipeline`); the app and notebook 08.
- :mod:`~clothingrec.serve.agreement` — the agreement criteria and their tolerances.
- untrained stand-ins to serve without trained weights: :mod:`clothingrec.zoo` (``untrained_*``, BatchNorm
  re-estimated on real images); :func:`validation_images` (the zoo's) — images to check agreement on.

Wiring a pipeline or a server (once, at start; exports are cached under ``.cache/serve`` by a hash of
the weights)::

    from clothingrec import serve
    images = serve.validation_images(4)                     # or a few real photos / person crops
    person = serve.fastest_predictor(person, images)       # same class as before, + .serving
    clothing = serve.fastest_predictor(clothing, images)
    classifier = serve.serving_classifier(weights_path)    # .classify_crops(image, boxes), .predict(paths)
    pipeline = Pipeline(person, clothing, ...)

On an accelerator (predictor/model not on the CPU) the eager model is served unchanged.
"""
from clothingrec.serve.agreement import classifier_agreement, detector_agreement, match_detections
from clothingrec.serve.classifier import ServingClassifier, serving_classifier
from clothingrec.serve.detector import fastest_predictor, hybrid_rcnn
from clothingrec.serve.onnx import OrtModule, cpu_flags, export_onnx, ort_session
from clothingrec.serve.pipeline import SERVING_MODES, agreement_images, backend_of, person_backends, serve_detectors
from clothingrec.serve.timing import compare_latency
from clothingrec.zoo import validation_images

__all__ = ["classifier_agreement", "detector_agreement", "match_detections", "ServingClassifier",
           "serving_classifier", "fastest_predictor", "hybrid_rcnn", "validation_images", "OrtModule",
           "cpu_flags", "export_onnx", "ort_session", "compare_latency", "person_backends", "SERVING_MODES",
           "agreement_images", "backend_of", "serve_detectors"]
