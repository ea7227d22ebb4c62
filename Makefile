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
# disk the new environment takes (torch 2.14.1 brings its CUDA libraries even on a CPU machine)
SETUP_FREE_GB ?= 8

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

.PHONY: help setup browser data all lab serve test test-fast lint bench clean index notebooks-refresh tensorboard pretrain-backbone $(NOTEBOOK_TARGETS)

help:
	@echo "make setup        create $(VENV) (Python 3.11), install pinned packages and the clothingrec kernel"
	@echo "make data         link/download datasets into data/, verify counts, write synthetic DF2/Penn-Fudan sets"
	@echo "make all          run every notebook in order (smoke profile) and write runs/index.html"
	@echo "make test         pytest tests/ + nbval over every notebook in notebooks/"
	@echo "make tensorboard  TensorBoard over runs/ (PORT=6006 IP=127.0.0.1 LOGDIR=runs)"
	@echo "make notebooks-refresh [NB='03_train_yolo ...']  re-execute notebooks in place (stored outputs nbval checks)"
	@echo "make lint         ruff check lib app bench tests (rules in pyproject.toml)"
	@echo "make lab          JupyterLab with the clothingrec kernel (PORT=8888 IP=127.0.0.1 TOKEN=random; root ok)"
	@echo "make serve        web demo on http://127.0.0.1:PORT (PORT=8000; APP_ARGS='--clothing-detector PATH ...')"
	@echo "make pretrain-backbone BACKBONE_ARGS='--out DIR [--add-train data/ccp-crops] [--hours H]'  a YOLO backbone"
	@echo "                  pretrained by classification on clothing-dataset-small; a detector starts from it with"
	@echo "                  PARAMS='-p init_weights DIR'"
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

# detectron2 is not on PyPI: a wheel built for this exact stack may lie in ../shared/wheels (its SOURCE.md).
DETECTRON2_WHEEL := $(lastword $(sort $(wildcard ../shared/wheels/detectron2-*.whl)))

setup: $(SETUP_STAMP)
$(SETUP_STAMP): pyproject.toml requirements/lock.txt requirements/detectron2.txt $(DETECTRON2_WHEEL)
	@echo "[setup] creating $(VENV) with $(PYTHON)"
	@if [ ! -d $(VENV)/lib ]; then avail=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  if [ "$$avail" -lt $(SETUP_FREE_GB) ]; then \
	    echo "[setup] error: $(CURDIR) has $$avail GB free; the environment (torch with its CUDA libraries) needs about $(SETUP_FREE_GB) GB"; exit 1; fi; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "[setup] installing $(TORCH_PINS)"
	$(PY) -m pip install --quiet $(TORCH_PINS)
	@echo "[setup] installing pinned requirements (requirements/lock.txt, ruff included)"
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@$(if $(DETECTRON2_WHEEL),echo "[setup] installing $(DETECTRON2_WHEEL) and its pinned requirements (requirements/detectron2.txt)",\
	  echo "[setup] detectron2 not installed (optional, backend=detectron2): put a wheel in ../shared/wheels/ or build it from source (README, 'detectron2')")
	$(if $(DETECTRON2_WHEEL),$(PY) -m pip install --quiet -r requirements/detectron2.txt $(DETECTRON2_WHEEL))
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

# A YOLO backbone pretrained here by classification (no outside weights): python -m clothingrec.detect.backbone --help
pretrain-backbone: $(DATA_STAMP)
	$(PY) -m clothingrec.detect.backbone $(BACKBONE_ARGS)

index: $(SETUP_STAMP)
	$(PY) -m clothingrec.notebooks index

PORT ?= 8000
serve: $(SETUP_STAMP)
	@echo "[serve] web demo (waitress) on http://127.0.0.1:$(PORT)"
	$(PY) -m app --host 127.0.0.1 --port $(PORT) $(APP_ARGS)

# JupyterLab on IP:PORT (127.0.0.1:8888; IP=0.0.0.0 to reach it from outside a container), TOKEN= or a random
# one, root allowed (containers), clothingrec the default kernel, no network-only extras (news, update check, PyPI extension manager).
LAB_PORT = $(if $(filter command line environment,$(origin PORT)),$(PORT),8888)
IP ?= 127.0.0.1
lab: $(DATA_STAMP)
	$(PY) -c "from clothingrec.paths import configure_environment; configure_environment()"
	@token="$${TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')}"; \
	echo "[lab] JupyterLab: http://$(IP):$(LAB_PORT)/lab/tree/notebooks?token=$$token (Ctrl-C stops it)"; \
	echo "[lab] explore in a copy (runs/scratch/, gitignored); run 'make notebooks-refresh NB=<name>' before committing a notebook"; \
	exec $(VENV)/bin/jupyter lab --no-browser --ip=$(IP) --port=$(LAB_PORT) --ServerApp.port_retries=0 \
	  --ServerApp.root_dir=$(CURDIR) --IdentityProvider.token="$$token" \
	  $(if $(filter 0,$(shell id -u)),--allow-root) \
	  --MappingKernelManager.default_kernel_name=clothingrec \
	  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	  --LabApp.extension_manager=readonly $(LAB_ARGS)

# The test command (README, CI): lint, unit tests, then every notebook re-executed and compared by nbval.
test: $(DATA_STAMP) browser lint
	@echo "[test] pytest tests/ and nbval over notebooks/"
	TQDM_DISABLE=1 $(PY) -m pytest tests notebooks --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=1200 -p no:cacheprovider $(PYTEST_ARGS)

test-fast: $(DATA_STAMP)
	TQDM_DISABLE=1 $(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

# Lint (ruff, configured in pyproject.toml); `make test` runs it first.
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

# TensorBoard over every run's event files (classifier tb/, torchvision detectors tb/, ultralytics' own).
TB_PORT = $(if $(filter command line environment,$(origin PORT)),$(PORT),6006)
tensorboard: $(SETUP_STAMP)
	@echo "[tensorboard] http://$(IP):$(TB_PORT)/ over $(or $(LOGDIR),runs) (Ctrl-C stops it)"
	$(VENV)/bin/tensorboard --logdir $(or $(LOGDIR),runs) --host $(IP) --port $(TB_PORT)

# Re-execute every notebook (or only NB='03_train_yolo 08_pipeline') in place with its defaults so the stored
# outputs match the code; `make test` names the stale ones.
REFRESH_NBS = $(if $(NB),$(foreach n,$(NB),notebooks/$(basename $(notdir $(n))).ipynb),notebooks/[0-9][0-9]_*.ipynb)
notebooks-refresh: $(DATA_STAMP)
	for nb in $(REFRESH_NBS); do \
	  test -f "$$nb" || { echo "[refresh] no notebook $$nb"; exit 1; }; \
	  echo "[refresh] $$nb"; \
	  TQDM_DISABLE=1 $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.kernel_name=clothingrec --ExecutePreprocessor.timeout=1800 "$$nb"; \
	done

clean:
	@echo "[clean] removing runs (keeping runs/results) and caches; data/ is kept"
	find runs -mindepth 1 -maxdepth 1 ! -name results -exec rm -rf {} +
	rm -rf .cache .pytest_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
