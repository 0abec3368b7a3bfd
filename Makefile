# The two commands a newcomer needs:  make run  and  make test.
# Both create .venv and install the pinned stack first (idempotent: a stamp file remembers).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed-stamp
export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
# Prefect's temporary API server gives up after 20 s; on 2 busy shared cores it can need more (measured)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: run test test-fast lint typecheck install clean-data autogluon-env

run: $(STAMP) ## run the whole pipeline on the bundled demo challenge
	$(BIN)/mmtc run

test: lint typecheck ## lint and type check, then every test, the slow end-to-end ones included
	$(BIN)/python -m pytest

test-fast: lint typecheck ## lint and type check, then the unit tests only
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP) ## ruff: lint and format check (`ruff format .` fixes the format)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy over tasks/ and flows/ (configured in pyproject.toml)
	$(BIN)/mypy

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "Python 3.11 is required; set PYTHON=/path/to/python3.11")'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# AutoGluon, the reference of benchmarks/baseline_quality.py --reference autogluon, in its own venv:
# AutoGluon 1.6.3 pins pyarrow < 25 and constraints.txt pins 26, so it cannot share .venv.
AUTOGLUON_VENV := benchmarks/.venv-autogluon
autogluon-env: $(AUTOGLUON_VENV)/.installed-stamp ## (benchmarks) AutoGluon 1.6.3 in benchmarks/.venv-autogluon

$(AUTOGLUON_VENV)/.installed-stamp:
	test -x $(AUTOGLUON_VENV)/bin/python || $(PYTHON) -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/python -m pip install --quiet "autogluon.tabular[catboost,lightgbm,xgboost,fastai]==1.6.3"
	touch $@

clean-data: ## remove everything the pipeline produced (DVC's cache stays)
	rm -rf contributions/*/ data/ results/ leaderboard/ metrics/ submissions/baseline-*
