# thinkedit — developer entry points. `make demo` runs a tiny edit; `make test` runs the tests; `make bench` the benchmarks.
VENV       ?= .venv
PYTHON     ?= python3
PY         := $(VENV)/bin/python
# The CPU build of torch; set TORCH_SPEC (e.g. "torch>=2.8") on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
PIP        := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test venv bench clean

$(VENV)/.stamp-dev: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[dev]"
	touch $@

venv: $(VENV)/.stamp-dev

demo: venv
	$(VENV)/bin/thinkedit edit examples/chelsea.png "put a red party hat on the cat" --profile tiny --out out/demo

test: venv
	$(PY) -m pytest

# Every benchmark, one table of ratios measured side by side (tiny models, a few minutes on 2 cores).
bench: venv
	PYTHONPATH=. $(PY) bench/run_all.py

clean:
	rm -rf out .pytest_cache
