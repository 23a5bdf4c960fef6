# Maskwright: `make run` and `make test` are the two set-up commands (README).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-gpu bench package lint clean

# Torch and torchvision are pinned by constraints.txt and installed first, so pip never
# resolves torch on its own; everything else is pinned there too (reproducible installs).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,package]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/maskwright-desktop --sample

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m "not gpu and not package" tests

test-gpu: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -m gpu tests

bench: $(STAMP)
	$(PY) -m tests.bench

# One-folder PyInstaller bundle in dist/Maskwright/, then its checks (engine, trainers, offscreen smoke test).
package: $(STAMP)
	$(PY) packaging/build.py

lint: $(STAMP)
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info
