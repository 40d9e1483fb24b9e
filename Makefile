# Two commands on a fresh machine: `make reports` and `make test`.
# .venv is (re)built from pyproject.toml when missing or older than it; otherwise a quick no-op.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reports test lab lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

reports: $(STAMP)
	$(BIN)/statex-bi demo
	$(BIN)/statex-bi run weekly
	$(BIN)/statex-bi run monthly

test: $(STAMP)
	$(BIN)/ruff check statex_bi tests bench
	$(BIN)/python -m pytest -n 2 -q

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python bench/bench_runner.py
	$(BIN)/python bench/bench_build.py

clean:
	rm -rf $(VENV) outputs data
