# Quick start: `make demo` (a real failover drill on the embedded AWS emulator) and `make test`.
# Everything a target needs is installed here, into .venv, from pinned requirement files.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every part's pinned requirements and every part's package are picked up by pattern, so a new
# part (its own requirements.txt and pyproject.toml) joins the environment without editing this file.
REQS := $(sort $(wildcard requirements/*.txt) $(wildcard */requirements.txt))
PKGS := $(sort $(dir $(wildcard */pyproject.toml)))
PYTEST_ARGS ?=
TEST_PREREQS :=

# Per-area targets (terraform tooling, checkov's own venv, benchmarks...) live in mk/*.mk.
-include $(sort $(wildcard mk/*.mk))

.PHONY: help venv test demo lint clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv with the pinned dependencies and the project's packages

$(STAMP): $(REQS) $(addsuffix pyproject.toml,$(PKGS))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQS))
	$(PY) -m pip install --quiet --no-deps $(addprefix -e ./,$(PKGS))
	touch $@

test: $(STAMP) $(TEST_PREREQS) ## Run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP) $(LAMBDA_ZIP) ## Whole-system failover drill against the embedded AWS emulator (no account needed)
	$(PY) -m hfo_drill

lint: $(STAMP) ## ruff and mypy (strict, settings in pyproject.toml) over the Python code
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) .venv-* .hypothesis
