"""Write notebooks/09_train_classifier.ipynb and 10_evaluate_classifier.ipynb (nbformat v4).

``python -m clothingrec.classify._notebooks`` regenerates both (unexecuted); execute them
afterwards with ``jupyter nbconvert --execute --inplace`` so the stored outputs match.
"""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from clothingrec.classify.config import ClassifierConfig, config_fields
from clothingrec.paths import NOTEBOOKS_DIR

KERNELSPEC = {"name": "clothingrec", "display_name": "Python (clothingrec)", "language": "python"}
IGNORE = "# NBVAL_IGNORE_OUTPUT\n"


def _params_cell(lines: list[str]) -> nbformat.NotebookNode:
    cell = new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["parameters"]
    return cell


def _notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def notebook_09() -> nbformat.NotebookNode:
    defaults = ClassifierConfig()
    width = max(len(f) for f in config_fields())
    params = [
        'profile = "smoke"     # smoke: configs/classifier/smoke.yaml | full: mobilenet_v3_small_scratch.yaml',
        "config = None        # a YAML config (configs/classifier/*.yaml); overrides the profile's file",
        "output_dir = None    # set by `make train-classifier` to runs/09_train_classifier/<timestamp>",
        "# Every config field; None = as in the YAML. Make: MODEL= EPOCHS= IMGSZ= BATCH= DEVICE=, the rest PARAMS='-p lr 0.003'",
    ]
    params += [f"{f.ljust(width)} = None  # default {getattr(defaults, f)!r}" for f in config_fields()]
    cells = [
        new_markdown_cell(
            "# 09 · Train the clothing classifier\n\n"
            "clothing-dataset-small (10 classes): fit on **train**, select the checkpoint with the best "
            "**validation** macro-F1, and only then evaluate that checkpoint on **test**. Backbone by name "
            "(torchvision or timm), class-balanced sampling, batch augmentation on the device, optional "
            "LR finder / SWA / EMA, early stopping, TensorBoard and CSV logs in the output folder.\n\n"
            "Every image is decoded and resized once into a uint8 tensor store; training reads that store. "
            "Defaults are the smoke profile (a few images per class, 64 px, 2 epochs). Real run: "
            "`make train-classifier PROFILE=full` or `CONFIG=configs/classifier/<experiment>.yaml`."),
        _params_cell(params),
        new_code_cell(
            "import json\n\n"
            "import matplotlib.pyplot as plt\n"
            "import pandas as pd\n\n"
            "from clothingrec.classify import config_fields, resolve_config, train\n"
            "from clothingrec.classify import report\n"
            "from clothingrec.classify.training import provenance, read_history\n"
            "from clothingrec.classify.visual import plot_lr_finder, preview_augmentation\n"
            "from clothingrec.datasets import clothing_small\n"
            "from clothingrec.paths import resolve_output_dir\n\n"
            "plt.rcParams[\"figure.dpi\"] = 72  # keeps the stored notebook small\n"
            'out = resolve_output_dir("09_train_classifier", output_dir)\n'
            "cfg = resolve_config(profile, config, {k: globals()[k] for k in config_fields()})\n"
            "shown = (\"name\", \"model\", \"pretrained\", \"imgsz\", \"epochs\", \"batch\", \"optimizer\", \"lr\",\n"
            "         \"sampler\", \"averaging\", \"precision\", \"monitor\", \"max_time_min\", \"threads\")\n"
            "pd.Series({k: cfg.to_dict()[k] for k in shown}, name=\"value\", dtype=object).to_frame()"),
        new_markdown_cell("## Data\nThe dataset's own splits; the fixed class order is the label order everywhere."),
        new_code_cell(
            "indexes = clothing_small.read_all(cfg.dataset)\n"
            "print(\"skipped files:\", sum(len(i.skipped) for i in indexes.values()))\n"
            "clothing_small.counts_table(indexes)"),
        new_markdown_cell(
            "## Augmentation\nRandom resized crop, flip, rotation (one affine resample per batch) and colour "
            "jitter, drawn from the stored images; evaluation is a centre crop."),
        new_code_cell("fig = preview_augmentation(cfg, n=8, seed=cfg.seed)\nplt.show()"),
        new_markdown_cell(
            "## Training\nLR finder first when `lr_find` is on (its suggestion is applied only with "
            "`lr_find_apply`), and Lightning's batch-size finder when `batch_find` is on (power mode; reported, "
            "not applied). `mixup_alpha` / `cutmix_alpha` mix batches on label-smoothed soft targets. "
            "`checkpoints/last.ckpt` is written after every epoch; `max_time_min` ends a sitting at an epoch "
            "boundary and `resume` (this run folder, or `-r output_dir <run> -p resume True`) continues it with "
            "the same per-step cosine schedule, EMA and best-checkpoint state (the finders are skipped then). "
            "Volatile output (losses, speed), so nbval does not compare it."),
        new_code_cell(
            IGNORE +
            "result = train(cfg, out)\n"
            "summary = {k: v for k, v in result.summary().items() if k not in (\"config\", \"skipped\")}\n"
            "pd.Series(summary, name=\"value\", dtype=object).to_frame()"),
        new_code_cell(
            IGNORE +
            "if result.batch_found is not None:\n"
            "    print(f\"batch-size finder (power, from {cfg.batch}, {cfg.batch_find_trials} doublings): \"\n"
            "          f\"{result.batch_found} fits; training used batch {cfg.batch}\")\n"
            "if result.lr_finder is not None:\n"
            "    fig = plot_lr_finder(result.lr_finder, result.lr_used)\n"
            "    fig.savefig(out / \"lr_finder.png\", dpi=100, bbox_inches=\"tight\")\n"
            "    display(fig)"),
        new_code_cell(
            IGNORE +
            "history = read_history(out)\n"
            "fig = report.plot_history(history)\n"
            "fig.savefig(out / \"history.png\", dpi=100, bbox_inches=\"tight\")\n"
            "plt.show()\n"
            "history.to_csv(out / \"history.csv\", index=False)\n"
            "cols = [c for c in (\"epoch\", \"train_loss\", \"train_acc\", \"val_loss\", \"val_acc\", \"val_macro_f1\", \"train_img_per_s\") if c in history]\n"
            "history[cols].round(4)"),
        new_markdown_cell(
            "## Test on the best validation checkpoint\nThe exported weights are the checkpoint with the best "
            "validation score; test is read here for the first time. Details, the published comparison and "
            "plots: `10_evaluate_classifier`."),
        new_code_cell(
            IGNORE +
            "ev = report.evaluate(result.weights_path, \"test\", cfg.dataset, cfg.eval_per_class,\n"
            "                     batch_size=cfg.eval_batch_size, device=cfg.device, threads=cfg.threads)\n"
            "record = report.metrics_record(ev, name=cfg.name, model=cfg.model, imgsz=cfg.imgsz, params=result.params,\n"
            "                               provenance=provenance(result, command=f\"09_train_classifier profile={profile} config={config}\"))\n"
            "report.write_metrics(record, out)\n"
            "print(f\"test accuracy {record['accuracy']:.4f}  macro-F1 {record['macro_f1']:.4f}  (best val epoch {result.best_epoch})\")\n"
            "ev.table()"),
        new_code_cell(
            "print(\"test images evaluated:\", len(ev.y_true), \"| skipped:\", len(ev.skipped))\n"
            "print(\"selected on:\", result.monitor, \"(validation) | weights file:\", result.weights_path.name)\n"
            "print(\"wrote:\", \", \".join(sorted(p.name for p in out.iterdir() if p.is_file())))"),
    ]
    return _notebook(cells)


def notebook_10() -> nbformat.NotebookNode:
    params = [
        'profile = "smoke"       # kept for a uniform interface (the run evaluated decides the rest)',
        "output_dir = None       # set by `make evaluate-classifier`",
        "run_dir = None          # a 09_train_classifier output folder (None: its latest run)",
        "weights = None          # a weights file, .pt export or .ckpt (None: the one in run_dir)",
        'split = "test"          # test | validation',
        'published_model = "mobilenet_v3_small"  # published table to compare with: mobilenet_v3_small | resnet50',
        'device = "auto"',
        "threads = None",
        "batch = 64",
        "max_misclassified = 12",
    ]
    cells = [
        new_markdown_cell(
            "# 10 · Evaluate the clothing classifier\n\n"
            "The best-validation weights of a `09_train_classifier` run on the test split: accuracy, "
            "per-class precision / recall / F1 with weighted / micro / macro averages and support "
            "(scikit-learn `classification_report`, laid out like the published table so rows compare), "
            "the confusion matrix, the misclassified images, and a per-class comparison with the published "
            "table (**published, ImageNet-pretrained, GPU**: SamirGouda/YOLOX-Clothing_Classifier)."),
        _params_cell(params),
        new_code_cell(
            "import json\nfrom pathlib import Path\n\n"
            "import matplotlib.pyplot as plt\n"
            "import pandas as pd\n\n"
            "from clothingrec.classify import load_classifier, report\n"
            "from clothingrec.paths import latest_run, resolve_output_dir\n\n"
            "plt.rcParams[\"figure.dpi\"] = 72  # keeps the stored notebook small\n"
            'out = resolve_output_dir("10_evaluate_classifier", output_dir)\n'
            'run = Path(run_dir) if run_dir else latest_run("09_train_classifier")\n'
            "weights_file = Path(weights) if weights else sorted(run.glob(\"*.pt\"))[0]\n"
            "train_cfg = json.loads((run / \"train_summary.json\").read_text())[\"config\"] if (run / \"train_summary.json\").is_file() else {}\n"
            "loaded = load_classifier(weights_file)\n"
            "print(\"weights:\", weights_file.name, \"| classes:\", len(loaded.classes), \"| input:\", loaded.imgsz, \"px\")\n"
            "print(loaded.transform)"),
        new_code_cell(
            "ev = report.evaluate(weights_file, split, train_cfg.get(\"dataset\"), train_cfg.get(\"eval_per_class\"),\n"
            "                     batch_size=batch, device=device, threads=threads)\n"
            "print(split, \"images:\", len(ev.y_true), \"| skipped:\", len(ev.skipped))"),
        new_markdown_cell("## Classification report\nSame rows and columns as the published table (percent)."),
        new_code_cell(IGNORE + "table = ev.table()\ntable.to_csv(out / \"classification_report.csv\")\ntable"),
        new_markdown_cell(
            "## Against the published table\n"
            f"Published numbers are from ImageNet-pretrained models fine-tuned on a GPU "
            "(and evaluated on their last SWA weights); ours follow the run's config (from scratch by default)."),
        new_code_cell(
            IGNORE +
            "comparison = report.compare_with_published(table, published_model)\n"
            "comparison.to_csv(out / \"comparison_published.csv\")\n"
            "comparison"),
        new_code_cell(
            "report.published_table(published_model)"),
        new_markdown_cell("## Confusion matrix\nRows are true classes, columns predictions; ours left, published right."),
        new_code_cell(
            IGNORE +
            "fig, axes = plt.subplots(1, 2, figsize=(14, 5.6))\n"
            "report.plot_confusion(ev.confusion(), ev.classes, f\"ours ({split})\", ax=axes[0])\n"
            "report.plot_confusion(report.PUBLISHED[published_model][\"confusion\"], ev.classes,\n"
            "                      f\"{published_model}, {report.PUBLISHED_LABEL}\", ax=axes[1])\n"
            "fig.tight_layout()\n"
            "fig.savefig(out / \"confusion_matrix.png\", dpi=110, bbox_inches=\"tight\")\n"
            "plt.show()"),
        new_markdown_cell("## Misclassified test images\nMost confident mistakes first."),
        new_code_cell(
            IGNORE +
            "fig = report.plot_misclassified(ev, max_images=max_misclassified)\n"
            "fig.savefig(out / \"misclassified.png\", dpi=100, bbox_inches=\"tight\")\n"
            "plt.show()\n"
            "ev.misclassified().assign(path=lambda d: d.path.map(lambda p: Path(p).name)).head(max_misclassified)"),
        new_code_cell(
            IGNORE +
            "summary = json.loads((run / \"train_summary.json\").read_text()) if (run / \"train_summary.json\").is_file() else {}\n"
            "record = report.metrics_record(ev, name=train_cfg.get(\"name\", weights_file.stem), model=train_cfg.get(\"model\", \"?\"),\n"
            "                               imgsz=loaded.imgsz, params=sum(p.numel() for p in loaded.model.parameters()),\n"
            "                               provenance={\"weights\": str(weights_file), \"run\": str(run),\n"
            "                                           \"best_epoch\": summary.get(\"best_epoch\"), \"selected_on\": summary.get(\"monitor\"),\n"
            "                                           \"eval_images_per_s\": round(ev.images_per_s, 1)})\n"
            "report.write_metrics(record, out)\n"
            "print(f\"accuracy {record['accuracy']:.4f} | macro-F1 {record['macro_f1']:.4f} | weighted-F1 {record['weighted_f1']:.4f}\")"),
        new_code_cell("print(\"wrote:\", \", \".join(sorted(p.name for p in out.iterdir() if p.is_file())))"),
    ]
    return _notebook(cells)


def write(path_dir=NOTEBOOKS_DIR) -> None:
    nbformat.write(notebook_09(), path_dir / "09_train_classifier.ipynb")
    nbformat.write(notebook_10(), path_dir / "10_evaluate_classifier.ipynb")


if __name__ == "__main__":
    write()
    print("wrote notebooks/09_train_classifier.ipynb and notebooks/10_evaluate_classifier.ipynb")
