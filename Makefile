# segx: `make demo` and `make test` each set themselves up from a fresh clone.
# The virtual environment is keyed by a hash of the dependency files and kept in
# ~/.cache/segx/venvs/<hash> (one at a time: older ones are removed), .venv links to it.

PY        ?= python3
# only the dependency lists, pins and install lines count: editing other parts of pyproject.toml keeps the environment
HASH      := $(shell { sed -n '/^dependencies/,/^\[project.scripts\]/p' pyproject.toml; cat constraints.txt; grep -F 'pip" install' Makefile; } | sha256sum | cut -c1-12)
VENV_HOME ?= $(HOME)/.cache/segx/venvs
VENV      := $(VENV_HOME)/$(HASH)
BIN       := .venv/bin
DEMO_OUT  ?= runs/demo

.PHONY: install test test-slow test-gpu demo bench clean help

help:
	@echo "make demo   - set up, then run the whole job on the synthetic VOC set (segx demo)"
	@echo "make test   - set up, then run the test suite (make test-slow: the slow tests; .ci/run runs both)"
	@echo "make bench  - CPU benchmark of the mobile archs at 512x512 (docs/benchmarks.md)"

install:
	@if [ ! -f "$(VENV)/.complete" ]; then \
	  echo "segx: building environment $(VENV)"; \
	  rm -rf "$(VENV)" && mkdir -p "$(VENV_HOME)" && \
	  $(PY) -m venv "$(VENV)" && \
	  "$(VENV)/bin/pip" install -q --upgrade pip setuptools wheel && \
	  "$(VENV)/bin/pip" install -q -c constraints.txt -e ".[cpu,edge,serve,test]" && \
	  "$(VENV)/bin/pip" install -q -c constraints.txt --no-deps "nvidia-pytriton==0.7.0" && \
	  touch "$(VENV)/.complete" && \
	  find "$(VENV_HOME)" -mindepth 1 -maxdepth 1 ! -name "$(HASH)" -exec rm -rf {} + ; \
	fi
	@ln -sfn "$(VENV)" .venv
	@if [ "$$($(BIN)/python -c 'import segx,os;print(os.path.dirname(os.path.dirname(os.path.realpath(segx.__file__))))' 2>/dev/null)" != "$$(pwd -P)" ]; then \
	  $(BIN)/pip install -q --no-deps --no-build-isolation -e . ; \
	fi

test: install
	$(BIN)/python -m pytest -q -m "not slow" tests

test-slow: install  # every arch x format export, bench matrix, demo, Mask R-CNN, torch.compile, torchrun (README: Tests)
	$(BIN)/python -m pytest -q -m slow tests

test-gpu: install  # the CUDA tests (skip without a GPU); bench/gpu_check.py runs every GPU path installed
	$(BIN)/python -m pytest -q -m gpu tests

demo: install
	$(BIN)/segx demo --out $(DEMO_OUT)

bench: install
	$(BIN)/segx bench --archs lraspp_mobilenet_v3_large deeplabv3_mobilenet_v3_large --imgsz 512 --batch 1 --out runs/bench

clean:
	rm -rf runs .pytest_cache .venv
