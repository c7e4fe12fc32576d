# Two commands on a fresh machine: `make run` (the app on SQLite, nothing else needed) and
# `make test` (the whole suite, browser tests included). Both are idempotent.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
BUN_VERSION := 1.4.5
# Reflex must not try to download bun or phone home: neither works offline.
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_CHECK_LATEST_VERSION := 0
export REFLEX_TELEMETRY_ENABLED := false
export PYTHONDONTWRITEBYTECODE := 1
# The dev backend reloads when the code changes, and only then: Reflex would watch the whole
# project, where SQLite's -wal/-shm files (which it does not skip) reloaded it on every write.
export REFLEX_HOT_RELOAD_OVERRIDE_PATHS := stream_chat:assets:rxconfig.py

.PHONY: run test setup bun browser db legacy-db seed lint export bench clean

run: setup db
	$(BIN)/reflex run

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/reflex export --frontend-only --no-zip --zip-dest-dir test-artifacts/export
	$(BIN)/pytest

setup: $(VENV)/.installed bun

# Re-installs only when the dependency pins change.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	touch $@

bun:
	@command -v bun >/dev/null || npm install --global --no-fund --no-audit bun@$(BUN_VERSION)

browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Applies the migrations, then loads the demo data into an empty database.
db: setup legacy-db
	$(BIN)/alembic upgrade head
	$(BIN)/python -m seeds --if-empty

# The database used to live at the project root (watched by the dev backend); it moves into
# data/ once, with its WAL files, unless data/ already has one or DATABASE_URL points elsewhere.
legacy-db:
	@if [ -z "$$DATABASE_URL" ] && [ -e stream_chat.db ] && [ ! -e data/stream_chat.db ]; then \
		mkdir -p data && mv stream_chat.db* data/ && echo "Moved stream_chat.db into data/"; fi

seed: setup legacy-db
	$(BIN)/alembic upgrade head
	$(BIN)/python -m seeds

lint: setup
	$(BIN)/ruff check .

export: setup
	$(BIN)/reflex export --frontend-only --no-zip

bench: setup
	$(BIN)/python bench/stream_wire.py

clean:
	rm -rf $(VENV) .web .states
