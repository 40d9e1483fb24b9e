# Two commands on a fresh machine: `make reports` and `make test`.
# .venv is (re)built from requirements.lock (exact versions) when missing or older than the lock or
# pyproject.toml; otherwise a quick no-op. After changing dependencies in pyproject.toml, run
# `make lock` to re-resolve requirements.lock (needs PyPI), then commit both files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
# uv installs .venv from the lock and resolves the lock; it lives in a venv of its own so that it is not
# part of the lock. It installs in a tenth of pip's time (docs/development.md).
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_VERSION := 0.13.9

.PHONY: reports test lab lint bench clean lock

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# Exact versions from the lock (it is complete, so nothing is resolved: --no-deps), then the project
# itself; `uv pip check` fails (naming the package) when pyproject.toml needs something the lock lacks:
# run `make lock`. The venv is Python's own, pip included, for what a user adds by hand.
# --compile-bytecode: pip compiles what it installs, uv does not. Where PYTHONDONTWRITEBYTECODE is set (it
# is on these machines), every process would then compile what it imports from source, each time: 10.6 s
# instead of 4.8 s of CPU to import dbt, dlt, pandas, scipy, statsmodels, papermill and altair.
$(STAMP): pyproject.toml $(LOCK) | $(UV)
	$(PYTHON) -m venv $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --compile-bytecode -r $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(UV) pip check --python $(BIN)/python || { echo "requirements.lock is out of date with pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $(STAMP)

# Re-resolve every dependency of pyproject.toml (all extras) to exact versions for Python 3.11. Versions
# already in the lock are kept where they still fit; `make lock LOCK_FLAGS=--upgrade` takes the newest.
# rfc3987-syntax (and lark, its only use) stays out: jsonschema imports it when present for the `iri`
# format, which none of our schemas use, and it builds 39 Earley parsers at import, 3.5 s in every
# process that imports jsonschema (dbt, papermill, altair in each kernel; python-jsonschema/jsonschema#1428).
LOCK_FLAGS ?=
LOCK_OMIT := --no-emit-package rfc3987-syntax --no-emit-package lark
lock: | $(UV)
	$(UV) pip compile pyproject.toml --all-extras --python-version 3.11 --quiet \
		--custom-compile-command 'make lock' --output-file $(LOCK) $(LOCK_OMIT) $(LOCK_FLAGS)

reports: $(STAMP)
	$(BIN)/statex-bi demo
	# two weeks of growth KPIs: the demo's campaign week (a mix change) and the week the conversion drop compares with
	$(BIN)/statex-bi backfill weekly --periods 2 --only growth_revenue
	# the operations weeks from the demo's planted week (at most four weeks back) on: its alerts open, then resolve
	$(BIN)/statex-bi backfill weekly --periods 4 --only operations
	$(BIN)/statex-bi run weekly
	$(BIN)/statex-bi run monthly

test: $(STAMP)
	$(BIN)/ruff check statex_bi tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 3 --dist loadfile -q

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python bench/bench_runner.py
	$(BIN)/python bench/bench_build.py
	$(BIN)/python bench/bench_kernel_start.py
	$(BIN)/python bench/bench_incremental_build.py
	# the 100x demo over 30 days (13 months takes long on a small machine; the peak does not grow with the days)
	$(BIN)/python bench/bench_demo_scale.py --scales 1,100 --days 30

# Keeps data/ (the warehouse: real loads cannot always be fetched again) and the lock.
clean:
	rm -rf $(VENV) $(UV_VENV) outputs
