# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv if it is missing and install the package with what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench sample clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,mqtt,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iotlab demo

# ruff, mypy (strict on the public API, see [tool.mypy] in pyproject.toml; incremental via
# .mypy_cache), headless Chromium for the browser tests (installed with apt-get if missing),
# then a real Cassandra node and Mosquitto broker around pytest and the notebooks (nbval on
# the embedded store, then on Cassandra); the services stop even on failure. Screenshots of
# the browser tests are kept in test-artifacts/.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy iotlab
	scripts/browser install
	PATH="$(abspath $(BIN)):$$PATH" PYTHON=$(BIN)/python scripts/with-services \
	  sh -c '$(BIN)/python -m pytest $(PYTEST_ARGS) && scripts/test-notebooks'

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" scripts/with-services sh -c 'for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done'

sample: $(STAMP)
	$(BIN)/python -m iotlab.datasets --write data/

clean:
	rm -rf $(VENV) .iotlab reports .pytest_cache .mypy_cache
