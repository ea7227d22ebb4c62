# clothingrec: every target prints what it does and can be re-run safely.
# `make help` lists them.  Notebook targets run papermill into runs/<notebook>/<timestamp>/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp
DATA_STAMP := data/.data-stamp
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

# Offline- and CI-safe environment: project-local caches, no network from ultralytics.
export TORCH_HOME := $(CURDIR)/.cache/torch
export MPLCONFIGDIR := $(CURDIR)/.cache/matplotlib
export YOLO_CONFIG_DIR := $(CURDIR)/.cache/ultralytics
export HF_HOME := $(CURDIR)/.cache/huggingface
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := 0
export HF_HUB_OFFLINE := 1
export JUPYTER_PLATFORM_DIRS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

# ---- notebook targets: one table, one pattern rule -------------------------------------
NOTEBOOK_env               := 00_environment
NOTEBOOK_analyze-data      := 01_data_analysis
NOTEBOOK_convert           := 02_convert
NOTEBOOK_train-yolo        := 03_train_yolo
NOTEBOOK_train-fasterrcnn  := 04_train_fasterrcnn
NOTEBOOK_train-maskrcnn    := 05_train_maskrcnn
NOTEBOOK_evaluate          := 06_evaluate_detectors
NOTEBOOK_train-person      := 07_train_person
NOTEBOOK_pipeline          := 08_pipeline
NOTEBOOK_train-classifier  := 09_train_classifier
NOTEBOOK_evaluate-classifier := 10_evaluate_classifier
NOTEBOOK_analyze-models    := 11_analyze_models
NOTEBOOK_compare           := 12_compare
# only targets whose notebook exists (later issues add notebooks; their targets appear with them)
NOTEBOOK_TARGETS := $(sort $(foreach v,$(filter NOTEBOOK_%,$(.VARIABLES)),\
	$(if $(wildcard notebooks/$($(v)).ipynb),$(patsubst NOTEBOOK_%,%,$(v)))))

# Make variables → papermill parameters (only those given); PARAMS='-p key value ...' for the rest.
NB_PARAMS := $(if $(PROFILE),-r profile $(PROFILE)) $(if $(DATASET),-r dataset $(DATASET)) \
	$(if $(EPOCHS),-p epochs $(EPOCHS)) $(if $(IMGSZ),-p imgsz $(IMGSZ)) \
	$(if $(MODEL),-r model $(MODEL)) $(if $(DEVICE),-r device $(DEVICE)) \
	$(if $(BATCH),-p batch $(BATCH)) $(if $(CONFIG),-r config $(CONFIG))

.PHONY: help setup browser data all lab serve test test-fast lint bench clean index notebooks-refresh $(NOTEBOOK_TARGETS)

help:
	@echo "make setup        create $(VENV) (Python 3.11), install pinned packages and the clothingrec kernel"
	@echo "make data         link/download datasets into data/, verify counts, write synthetic DF2/Penn-Fudan sets"
	@echo "make all          run every notebook in order (smoke profile) and write runs/index.html"
	@echo "make test         pytest tests/ + nbval over every notebook in notebooks/"
	@echo "make lint         ruff check lib app bench tests (rules in pyproject.toml)"
	@echo "make lab          start JupyterLab with the clothingrec kernel"
	@echo "make serve        web demo on http://127.0.0.1:PORT (PORT=8000; APP_ARGS='--clothing-detector PATH ...')"
	@echo "make bench        run every bench/bench_*.py (full size) into runs/bench/ (BENCH_ARGS=--quick for a smoke)"
	@echo "make clean        remove runs (except runs/results) and caches; never data"
	@echo "notebook targets  $(NOTEBOOK_TARGETS)"
	@echo "  variables       PROFILE=smoke|full DATASET= EPOCHS= IMGSZ= MODEL= DEVICE= BATCH= CONFIG= PARAMS='-p key value'"

# kernel.json's "env": the library's offline environment (clothingrec.paths.offline_environment), so notebooks
# started by JupyterLab, papermill or nbval get it without relying on an import side effect.
define KERNEL_ENV_PY
import json, sys
from clothingrec.paths import offline_environment
path = sys.argv[1]
spec = json.load(open(path))
spec["env"] = {**spec.get("env", {}), **offline_environment(), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
open(path, "w").write(json.dumps(spec, indent=1) + "\n")
endef
export KERNEL_ENV_PY

setup: $(SETUP_STAMP)
$(SETUP_STAMP): pyproject.toml requirements/lock.txt
	@echo "[setup] creating $(VENV) with $(PYTHON)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "[setup] installing $(TORCH_PINS)"
	$(PY) -m pip install --quiet $(TORCH_PINS)
	@echo "[setup] installing pinned requirements (requirements/lock.txt, ruff included)"
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@echo "[setup] registering the Jupyter kernel 'clothingrec' with the offline environment in its kernel.json"
	$(PY) -m ipykernel install --sys-prefix --name clothingrec --display-name "Python (clothingrec)" >/dev/null
	$(PY) -c "$$KERNEL_ENV_PY" $(VENV)/share/jupyter/kernels/clothingrec/kernel.json
	$(PY) -c "from clothingrec.paths import configure_environment; configure_environment()"
	touch $@
	@echo "[setup] done"

# Headless Chromium for the web demo's browser test (Debian packages; Playwright drives the system browser).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "[browser] chromium present"; else \
	  echo "[browser] installing Debian chromium + chromium-driver"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium chromium-driver >/dev/null; fi

data: $(DATA_STAMP)
$(DATA_STAMP): $(SETUP_STAMP) lib/clothingrec/data_setup.py $(wildcard lib/clothingrec/synthetic.py) \
		lib/clothingrec/datasets/ccp_crops.py lib/clothingrec/splits.py configs/splits/ccp.json
	@echo "[data] preparing datasets under data/"
	$(PY) -m clothingrec.data_setup
	touch $@

$(NOTEBOOK_TARGETS): %: $(DATA_STAMP)
	@echo "[$@] running notebooks/$(NOTEBOOK_$@).ipynb"
	$(PY) -m clothingrec.notebooks run $(NOTEBOOK_$@) $(NB_PARAMS) $(PARAMS)

all: $(DATA_STAMP)
	@echo "[all] running every notebook in notebooks/ in order"
	for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	  $(PY) -m clothingrec.notebooks run "$$nb" $(NB_PARAMS) $(PARAMS) || { $(PY) -m clothingrec.notebooks index; echo "[all] FAILED at $$nb (see its latest run)"; exit 1; }; \
	done
	$(PY) -m clothingrec.notebooks index
	@echo "[all] done: open runs/index.html"

index: $(SETUP_STAMP)
	$(PY) -m clothingrec.notebooks index

PORT ?= 8000
serve: $(SETUP_STAMP)
	@echo "[serve] web demo (waitress) on http://127.0.0.1:$(PORT)"
	$(PY) -m app --host 127.0.0.1 --port $(PORT) $(APP_ARGS)

lab: $(DATA_STAMP)
	$(PY) -c "from clothingrec.paths import configure_environment; configure_environment()"
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# The test command (README, CI): unit tests, then every notebook re-executed and compared by nbval.
test: $(DATA_STAMP) browser
	@echo "[test] pytest tests/ and nbval over notebooks/"
	TQDM_DISABLE=1 $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=1200 -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(DATA_STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

# Lint (ruff, configured in pyproject.toml). Not yet part of `make test`.
lint: $(SETUP_STAMP)
	@echo "[lint] ruff check lib app bench tests"
	$(VENV)/bin/ruff check lib app bench tests

# Benchmarks report figures (JSON + markdown under runs/bench/); they are never asserted in tests.
bench: $(DATA_STAMP)
	@echo "[bench] running bench/bench_*.py $(BENCH_ARGS)"
	for script in bench/bench_*.py; do \
	  echo "[bench] $$script"; TQDM_DISABLE=1 $(PY) "$$script" $(BENCH_ARGS); \
	done
	$(PY) bench/summarize.py

# Re-execute every notebook in place with its defaults so the stored outputs match the code.
notebooks-refresh: $(DATA_STAMP)
	for nb in notebooks/[0-9][0-9]_*.ipynb; do \
	  echo "[refresh] $$nb"; \
	  TQDM_DISABLE=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.kernel_name=clothingrec --ExecutePreprocessor.timeout=1800 "$$nb"; \
	done

clean:
	@echo "[clean] removing runs (keeping runs/results) and caches; data/ is kept"
	find runs -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +
	rm -rf .cache .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
