"""Copy a real classifier run into ``runs/results/<name>/`` with a PROVENANCE.md.

``python -m clothingrec.classify.curate --train-run runs/09_train_classifier/<stamp>
--eval-run runs/10_evaluate_classifier/<stamp> --command "<exact command>"``

Copies the executed notebooks, metrics.json (from the evaluation run), the confusion matrix,
misclassified grid, history/LR-finder plots, CSV tables, config and training summary, and
the exported weights when they are at most 10 MB.  Checkpoints (``.ckpt``) are not copied.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

from clothingrec.paths import PROJECT_ROOT, RESULTS_DIR, from_project

MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
TRAIN_FILES = ("09_train_classifier.ipynb", "config.yaml", "train_summary.json", "history.csv", "history.png",
               "lr_finder.png")
EVAL_FILES = ("10_evaluate_classifier.ipynb", "metrics.json", "classification_report.csv",
              "comparison_published.csv", "confusion_matrix.png", "misclassified.png")


def _run(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unavailable ({exc})"
    return out.stdout.strip() if out.returncode == 0 else f"unavailable: {out.stderr.strip()[:200]}"


def _lscpu() -> dict[str, str]:
    info = {}
    for line in _run(["lscpu"]).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    return info


def curate(train_run: Path, eval_run: Path, command: str, eval_command: str, name: str | None = None,
           notes: str = "", machine_note: str = "") -> Path:
    train_run, eval_run = Path(train_run).resolve(), Path(eval_run).resolve()
    summary = json.loads((train_run / "train_summary.json").read_text())
    metrics = json.loads((eval_run / "metrics.json").read_text())
    name = name or summary["name"]
    dest = RESULTS_DIR / name
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for folder, files in ((train_run, TRAIN_FILES), (eval_run, EVAL_FILES)):
        for f in files:
            if (folder / f).is_file():
                shutil.copy2(folder / f, dest / f)
                copied.append(f)
    weights = from_project(summary["weights"]) if summary.get("weights") else None
    weights_note = "none exported"
    if weights and weights.is_file():
        size = weights.stat().st_size
        if size <= MAX_WEIGHTS_BYTES:
            shutil.copy2(weights, dest / weights.name)
            copied.append(weights.name)
            weights_note = f"{weights.name} ({size / 1e6:.1f} MB, fp32, best validation checkpoint)"
        else:
            weights_note = f"{weights.name} not copied: {size / 1e6:.1f} MB > 10 MB"
    cpu = _lscpu()
    status = _run(["git", "-C", str(PROJECT_ROOT), "status", "--short"])
    status_lines = [] if status.startswith("unavailable") else status.splitlines()
    started = dt.datetime.fromisoformat(summary["started"]) if summary.get("started") else None
    ended = dt.datetime.fromisoformat(summary["ended"]) if summary.get("ended") else None
    cfg = summary["config"]
    text = [
        f"# {name}", "",
        f"Curated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC from `{train_run.relative_to(PROJECT_ROOT)}` "
        f"and `{eval_run.relative_to(PROJECT_ROOT)}`.", "",
        "## Commands", "", "```", command, eval_command, "```", "",
        "## Code", "",
        f"- `git rev-parse HEAD`: {_run(['git', '-C', str(PROJECT_ROOT), 'rev-parse', 'HEAD'])}",
        f"- `git status --short`: {len(status_lines)} entries "
        f"({sum(1 for s in status_lines if s.startswith('??'))} untracked, "
        f"{sum(1 for s in status_lines if not s.startswith('??'))} modified/staged)", "",
        "## Hardware", "",
        f"- CPU: {cpu.get('Model name', '?')}, {cpu.get('CPU(s)', '?')} logical CPUs "
        f"({cpu.get('Core(s) per socket', '?')} cores per socket)",
        f"- torch threads: {cfg.get('threads')}; device {summary.get('device')}; precision {summary.get('precision')}",
        f"- {machine_note or 'what else ran on the machine: not recorded'}", "",
        "## Timing", "",
        f"- training started {summary.get('started')}, ended {summary.get('ended')}, wall "
        f"{(ended - started).total_seconds() / 60:.1f} min" if started and ended else "- times unavailable",
        f"- fit {summary['fit_seconds'] / 60:.1f} min, {summary['epochs_run']} epochs, "
        f"stopped: {summary['stopped_reason']}",
        f"- training throughput {summary['train_images_per_s']:.1f} images/s ({cfg['imgsz']} px, batch {cfg['batch']})",
        f"- one-time image store build {summary['store_seconds']:.1f} s", "",
        "## Selection and result", "",
        f"- checkpoint selected on validation `{summary['monitor']}` = {summary['best_score']:.4f} "
        f"(epoch {summary['best_epoch']}); test read only afterwards",
        f"- test: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
        f"weighted-F1 {metrics['weighted_f1']:.4f} ({metrics.get('num_images', '?')} images)",
        f"- weights: {weights_note}", "",
    ]
    if notes:
        text += ["## Notes", "", notes, ""]
    text += ["## Files", ""] + [f"- {f}" for f in copied]
    (dest / "PROVENANCE.md").write_text("\n".join(text) + "\n")
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m clothingrec.classify.curate", description=__doc__)
    p.add_argument("--train-run", required=True)
    p.add_argument("--eval-run", required=True)
    p.add_argument("--command", required=True, help="exact command of the training run")
    p.add_argument("--eval-command", required=True, help="exact command of the evaluation run")
    p.add_argument("--name", default=None)
    p.add_argument("--notes", default="")
    p.add_argument("--machine-note", default="", help="what else ran on the machine during the run")
    args = p.parse_args(argv)
    dest = curate(args.train_run, args.eval_run, args.command, args.eval_command, args.name, args.notes,
                  args.machine_note)
    print(f"curated into {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
