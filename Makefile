# Two commands on a fresh machine with Python 3.11:
#   make demo   # installs into .venv, then runs the end-to-end demo
#   make test   # installs into .venv with dev extras, then lint, tests and docs
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= akd-demo

.PHONY: install demo test lint pytest docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,efficientnet,onnx]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/captum-akd demo --out $(DEMO_OUT) --overwrite

lint: $(STAMP)
	$(BIN)/ruff check captum_akd tests benchmarks docs

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

test: lint pytest docs

clean:
	rm -rf $(VENV) docs/_build $(DEMO_OUT)
