# logalyse: every target creates (or reuses) its own virtualenv in .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB ?= .demo/logalyse.duckdb
# MaxMind's test database: the sample logs' addresses are in its test networks.
DEMO_GEOIP ?= --geoip tests/data/maxmind/GeoIP2-City-Test.mmdb
export TERM := unknown

.PHONY: all check test fuzz lint fmt demo bench bench-big clean samples docker wheel

all: check

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@

## test: the whole test suite (what CI runs)
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

## fuzz: the property tests (any value in any field, a log's whole life) at length
FUZZ ?= 50
fuzz: $(BIN)/.installed
	LOGALYSE_FUZZ=$(FUZZ) $(BIN)/python -m pytest -q tests/test_ingest_values.py tests/test_log_life.py

## lint: format check, ruff, mypy (strict on the package, not on tests, bench and scripts)
## and the import-layer contracts
lint: $(BIN)/.installed
	$(BIN)/ruff format --check logalyse tests bench scripts
	$(BIN)/ruff check logalyse tests bench scripts
	$(BIN)/mypy
	$(BIN)/mypy tests bench scripts --allow-untyped-defs --allow-untyped-calls --allow-incomplete-defs
	$(BIN)/lint-imports

check: lint test

fmt: $(BIN)/.installed
	$(BIN)/ruff format logalyse tests bench scripts
	$(BIN)/ruff check --fix logalyse tests bench scripts

## wheel: the installable package, in dist/ (`pipx install dist/logalyse-*.whl`)
wheel: $(BIN)/.installed
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

## docker: the container image (see deploy/compose.yaml)
docker:
	docker build -t logalyse .

## demo: import the bundled sample logs (twice: the second run adds nothing), print reports
demo: $(BIN)/.installed
	rm -rf $(dir $(DEMO_DB))
	$(BIN)/logalyse --db $(DEMO_DB) import $(DEMO_GEOIP) sample_logs/access.log*
	$(BIN)/logalyse --db $(DEMO_DB) import $(DEMO_GEOIP) - < sample_logs/docker-compose.log
	@echo "--- again: nothing is imported twice"
	$(BIN)/logalyse --db $(DEMO_DB) import $(DEMO_GEOIP) sample_logs/access.log*
	$(BIN)/logalyse --db $(DEMO_DB) import $(DEMO_GEOIP) - < sample_logs/docker-compose.log
	@echo "--- reports (see the README for more)"
	$(BIN)/logalyse --db $(DEMO_DB) report overview --since 2026-11-03 --until 2026-11-03
	$(BIN)/logalyse --db $(DEMO_DB) report referrers --limit 5
	$(BIN)/logalyse --db $(DEMO_DB) report sessions --limit 3
	$(BIN)/logalyse --db $(DEMO_DB) report dashboard -q --since 2026-11-01 --until 2026-11-04 -o .demo/dashboard.html
	@echo "--- the dashboard: $(CURDIR)/.demo/dashboard.html (open it in a browser)"

## bench: import speed and memory (1M lines; and with a new user agent on every line), reports
## on a 5M store, tail's memory over a stream, issue 19's table beside GoAccess, exports,
## and the ceiling: the fastest pipelines DuckDB allows on the same log
bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet maxminddb-geolite2
	@# Bytecode as an installed package has it, even where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q logalyse
	$(BIN)/python bench/bench.py
	@# An attacker rotating user agents: every line's is new to the store.
	$(BIN)/python bench/bench.py --distinct-agents --runs 1
	$(BIN)/python bench/bench_reports.py
	$(BIN)/python bench/bench_machines.py
	$(BIN)/python bench/bench_tail.py --minutes 3
	$(BIN)/python bench/bench_light.py
	$(BIN)/python bench/bench_exchange.py
	$(BIN)/python bench/bench_floor.py
	$(BIN)/python bench/bench_floor.py --variant bulk --threads 1 --memory-limit 150MB

samples: $(BIN)/.installed
	$(BIN)/python -m logalyse.loggen --samples sample_logs

clean:
	rm -rf $(VENV) .demo bench/.data .pytest_cache .mypy_cache .ruff_cache
