# LogMaster: `make run` starts it on the embedded default, `make test` runs every test.
# Both set up what they need (virtual environment, pip packages, Debian packages).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= data

.PHONY: run test check format bench install system-deps clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Debian packages the tests talk to: real syslog senders (logger, rsyslog with TLS), openssl.
system-deps:
	scripts/system-deps.sh

run: install
	$(BIN)/logmaster init --data-dir $(DATA)
	$(BIN)/logmaster run --config $(DATA)/logmaster.toml

check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

test: install system-deps check
	$(BIN)/pytest

# Figures for the notes; each script prints what it measured (see its docstring).
bench: install system-deps
	$(BIN)/python bench/recv_paths.py
	$(BIN)/python bench/ingest.py --loadgen-procs 2 --rsyslog --verify
	$(BIN)/python bench/index.py --lines 200000
	$(BIN)/python bench/index.py --live 20000 --seconds 60
	$(BIN)/python bench/search.py --events 10000000

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
