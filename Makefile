# LogMaster: `make run` starts it on the embedded default, `make test` runs every test.
# Both set up what they need (virtual environment, pip packages, Debian packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: run test check format bench install system-deps clean console web-test api-client

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# The web console (web/): npm ci when the lock file changes, a build when its sources change.
WEB_SRC := $(shell find web/src web/public -type f 2>/dev/null) $(wildcard web/*.json web/*.ts \
	web/*.cjs web/index.html)

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	touch $@

web/dist/.built: web/node_modules/.installed $(WEB_SRC)
	cd web && npm run build
	touch $@

console: web/dist/.built

web-test: web/node_modules/.installed
	cd web && npm test

# Regenerates web/openapi.json and the TypeScript client types after an API change.
api-client: install web/node_modules/.installed
	scripts/gen-api-client.sh

# Debian packages the tests talk to: real syslog senders (logger, rsyslog with TLS), openssl.
system-deps:
	scripts/system-deps.sh

run: install console
	$(BIN)/logmaster init --data-dir $(DATA)
	$(BIN)/logmaster run --config $(DATA)/logmaster.toml

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: install system-deps check console web-test
	$(BIN)/pytest

# Figures for the notes; each script prints what it measured (see its docstring).
bench: install system-deps
	$(BIN)/python bench/recv_paths.py
	$(BIN)/python bench/ingest.py --loadgen-procs 2 --rsyslog --verify
	$(BIN)/python bench/index.py --lines 200000
	$(BIN)/python bench/index.py --live 20000 --seconds 60
	$(BIN)/python bench/search.py --events 10000000
	$(BIN)/python bench/seal.py --devices 1000 --lines 10000000
	$(BIN)/python bench/api_load.py
	$(MAKE) console
	LOGMASTER_FRAME_BOUND=1 $(BIN)/pytest -q -s tests/e2e/test_perf.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
