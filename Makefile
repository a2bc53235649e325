# thinkedit — developer entry points. `make demo` runs a tiny edit; `make test` runs the tests; `make bench` the benchmarks;
# `make docs` builds the documentation site strictly, `make docs-serve` serves it on 127.0.0.1.
VENV       ?= .venv
PYTHON     ?= python3
PY         := $(VENV)/bin/python
# torch goes in first, so the extras keep the build chosen here (README, Install). On Linux, public PyPI's torch
# is a CUDA build (several GB of NVIDIA wheels). TORCH_SPEC picks the version ("torch>=2.8"); TORCH_INDEX the
# build: https://download.pytorch.org/whl/cpu for CPU only, .../whl/cu128 (or your CUDA version) for a GPU.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PIP        := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test venv bench docs docs-serve clean

# $(call install,EXTRA): make the venv, install torch, then thinkedit with EXTRA (demo: only what the demo runs).
define install
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -e ".[$(1)]"
	touch $@
endef

$(VENV)/.stamp-demo: pyproject.toml Makefile
	$(call install,demo)

$(VENV)/.stamp-dev: pyproject.toml Makefile
	$(call install,dev)

venv: $(VENV)/.stamp-dev

# The docs extra (MkDocs, Material, mkdocstrings) on top of the dev environment.
$(VENV)/.stamp-docs: $(VENV)/.stamp-dev pyproject.toml
	$(PIP) install -e ".[docs]"
	touch $@

demo: $(VENV)/.stamp-demo
	$(VENV)/bin/thinkedit edit examples/chelsea.png "put a red party hat on the cat" --profile tiny --out out/demo

test: venv
	$(PY) -m pytest

# Every benchmark, one table of ratios measured side by side (tiny models, a few minutes on 2 cores).
bench: venv
	PYTHONPATH=. $(PY) bench/run_all.py

# The site, into site/: a broken link, a missing page or a reference that cannot be generated fails the build.
docs: $(VENV)/.stamp-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Port 8010: 8000 is the thinker server's default.
docs-serve: $(VENV)/.stamp-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8010

clean:
	rm -rf out .pytest_cache site build/docs-src
