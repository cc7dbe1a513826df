# The embedded default: SQLite, tasks in-process. `make demo` then `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: setup demo test test-postgres lint bench audit

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

demo: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo --base-url http://$(HOST)
	@# --insecure: serve the admin's and API docs' static files with DEBUG off (the embedded default only).
	$(BIN)/python manage.py runserver --insecure $(HOST)

test: setup
	$(BIN)/pytest -q

# The same suite against PostgreSQL and Redis (started if they are down): what CI runs second.
test-postgres: setup
	bash .ci/services.sh
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/oms} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} $(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

audit: setup
	$(BIN)/python manage.py inventory_audit

bench: setup
	$(BIN)/python -m bench
