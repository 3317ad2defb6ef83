# The two commands a new user needs: `make train` and `make test`. Both install first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install install-extras train test test-yours test-full bench gpu-check stress clean lint format tensorboard mlflow rename slurm slurm-down postgres postgres-down

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	@echo "Installing trainlab into $(VENV): 2 to 3 minutes the first time, and pip is quiet meanwhile."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)  ## Create .venv and install trainlab and runkit, its run machinery (editable), with the dev extras

# .venv-extras holds only what the `all` extra adds (MLflow, W&B, matplotlib, the CMA-ES and GP samplers'
# packages) and sees the rest of .venv through a .pth file. They stay out of .venv because torchmetrics
# imports scipy and matplotlib whenever they are installed (MLflow needs both): about 1 s more on every run's
# start. `make train` needs none of them: TensorBoard, CSV and trainlab-summarize (its summary.svg too) are in .venv.
EXTRAS_VENV := .venv-extras
EXTRAS_BIN := $(EXTRAS_VENV)/bin
EXTRAS_INSTALLED := $(EXTRAS_VENV)/.installed
PURELIB := import sysconfig; print(sysconfig.get_path("purelib"))

$(EXTRAS_INSTALLED): $(INSTALLED)
	rm -rf $(EXTRAS_VENV)
	$(BIN)/python -m venv $(EXTRAS_VENV)
	echo "import site; site.addsitedir('$$($(BIN)/python -c '$(PURELIB)')')" \
		> "$$($(EXTRAS_BIN)/python -c '$(PURELIB)')/trainlab_base_venv.pth"
	$(EXTRAS_BIN)/pip install --quiet -e ".[all]"
	touch $(EXTRAS_INSTALLED)

install-extras: $(EXTRAS_INSTALLED)  ## Create .venv-extras: .venv plus MLflow, W&B, matplotlib and the extra samplers

train: $(INSTALLED)  ## Train the default experiment (CNN on synthetic images); pass ARGS="key=value ..."
	$(BIN)/trainlab-train $(ARGS)

# The tests marked extras run in .venv-extras, the others in .venv (scripts/run_tests.sh says how).
test: $(INSTALLED) $(EXTRAS_INSTALLED)  ## Run the fast test suite
	BIN=$(BIN) EXTRAS_BIN=$(EXTRAS_BIN) bash scripts/run_tests.sh quick $(ARGS)

# Your tests alone: tests/trainlab/ runs your code with Hydra and plain Lightning, never the engine (tests/runkit/).
test-yours: $(INSTALLED)  ## Run only your tests (tests/trainlab/: nets, models, data, callbacks); under a minute
	$(BIN)/python -m pytest -n auto --dist loadfile tests/trainlab $(ARGS)

test-full: $(INSTALLED) $(EXTRAS_INSTALLED)  ## Run every test, slow ones included
	BIN=$(BIN) EXTRAS_BIN=$(EXTRAS_BIN) bash scripts/run_tests.sh full $(ARGS)

lint: $(INSTALLED)  ## Check style with ruff (lint rules and formatting), changing nothing
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)  ## Fix what ruff can fix and format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

LOGDIR ?= logs
TB_HOST ?= 127.0.0.1
TB_PORT ?= 6006
tensorboard: $(INSTALLED)  ## Serve logs/ with TensorBoard on http://127.0.0.1:6006, opening on train-vs-val charts (LOGDIR=, TB_HOST=, TB_PORT= to change)
	$(BIN)/python -m runkit.tensorboard --logdir $(LOGDIR) --host $(TB_HOST) --port $(TB_PORT)

MLFLOW_PORT ?= 5000
mlflow: $(EXTRAS_INSTALLED)  ## Serve the MLflow store of logs/ (runs with logger=mlflow or many) on http://127.0.0.1:5000, printing each experiment's runs link (MLFLOW_PORT= to change)
	$(EXTRAS_BIN)/python -m runkit.mlflow_ui sqlite:///$(abspath $(LOGDIR))/mlflow.db $(TB_HOST) $(MLFLOW_PORT)

rename: $(INSTALLED)  ## Rename the package trainlab to NAME everywhere: make rename NAME=mypkg
	$(BIN)/python scripts/rename.py $(NAME)

clean:  ## Remove caches (keeps logs/ and data/)
	rm -rf .pytest_cache build dist src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

bench: $(INSTALLED)  ## Measure the template against a hand-written loop, start-up and data speed
	$(BIN)/python scripts/benchmark.py $(ARGS)

# Everything that needs a GPU, in one command on a machine with one: the tests marked gpu (the DDP ones need two
# GPUs, the rest one), then make bench, within GPU_CHECK_LIMIT seconds together. The log (GPUs first), pytest's
# JUnit XML and the benchmark's results.json and results.md go to benchmarks/gpu_check/. make bench measures its
# epoch and time-to-accuracy sections on the GPU (--accelerator gpu). Without a GPU the target stops at once.
GPU_CHECK_DIR := benchmarks/gpu_check
GPU_CHECK_LIMIT ?= 480
GPU_BENCH_ARGS ?= --accelerator gpu --only epoch,accuracy --out $(GPU_CHECK_DIR)
GPU_NAMES := import sys, torch; torch.cuda.is_available() or sys.exit(1); \
	print(*(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())), sep=chr(10))

gpu-check: SHELL := /bin/bash
gpu-check: $(INSTALLED)  ## With a CUDA GPU: the gpu tests, then make bench (8 minutes at most), into benchmarks/gpu_check/
	@gpus=$$($(BIN)/python -c "$(GPU_NAMES)" 2>/dev/null) || \
		{ echo "make gpu-check needs a CUDA GPU and torch finds none here (torch.cuda.is_available() is False)."; exit 1; }; \
	mkdir -p $(GPU_CHECK_DIR); log=$(GPU_CHECK_DIR)/gpu_check.txt; deadline=$$((SECONDS + $(GPU_CHECK_LIMIT))); \
	{ echo "make gpu-check $$(date -u +%FT%TZ), commit $$(git rev-parse --short HEAD 2>/dev/null)"; echo "$$gpus"; \
		nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>/dev/null; } | tee $$log; \
	timeout -k 10 $(GPU_CHECK_LIMIT) $(BIN)/pytest -m gpu --junitxml=$(GPU_CHECK_DIR)/pytest.xml 2>&1 | tee -a $$log; \
	tests=$${PIPESTATUS[0]}; left=$$((deadline - SECONDS)); ((left > 0)) || left=1; \
	timeout -k 10 $$left $(MAKE) --no-print-directory bench ARGS="$(GPU_BENCH_ARGS)" 2>&1 | tee -a $$log; \
	bench=$${PIPESTATUS[0]}; \
	echo "gpu-check: tests exit $$tests, bench exit $$bench (0: passed, 124: out of time); log: $$log" | tee -a $$log; \
	((tests == 0 && bench == 0))

stress: $(INSTALLED)  ## Fault drill: kill -9 runs, a multirun and checkpoint writes, a full disk; resume, compare (ARGS="--kills 5")
	$(BIN)/python scripts/stress.py $(ARGS)

# A single-node SLURM cluster on this machine (Debian, as root, no systemd needed): hydra/launcher=slurm runs
# on it, and `make test-full` runs the slurm tests through it. docs/slurm.md says how to use a real cluster.
slurm:  ## Start a one-node SLURM cluster here (root on Debian; installs slurm-wlm and munge when missing)
	bash scripts/slurm_cluster.sh up

slurm-down:  ## Stop the daemons that make slurm started
	bash scripts/slurm_cluster.sh down

# A PostgreSQL server on this machine (root on Debian, no systemd), listening on a Unix socket only: a search's
# study can live there (hydra.sweeper.storage=<the URL it prints>), and `make test-full` runs a search against it.
postgres:  ## Start a PostgreSQL server here for search studies (root on Debian; installs postgresql when missing)
	bash scripts/postgres_server.sh up

postgres-down:  ## Stop the server that make postgres started
	bash scripts/postgres_server.sh down
