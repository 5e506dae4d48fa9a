# watchfloor: `make up` (the Compose stack) and `make test` (the whole suite) are the two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SOURCES := libs exporters services provisioning tests benchmarks

# The pinned Go servers (stdlib-only builder: no virtualenv needed).
GOTOOLS := PYTHONPATH=libs $(PYTHON) -m watchfloor_stack.gotools

DOCKER ?= docker
# WATCHFLOOR_MEMORY_LOCK=1 locks Elasticsearch's heap in RAM (engines that allow the ulimit).
COMPOSE := $(DOCKER) compose -f docker-compose.monitoring.yml \
	$(if $(filter 1 true yes,$(WATCHFLOOR_MEMORY_LOCK)),-f docker-compose.memory-lock.yml)
# `make up-scale`: the scale profile merged over it, as its own project (docs/scale-profile.md).
SCALE_PROJECT := watchfloor-scale
COMPOSE_SCALE := $(DOCKER) compose -f docker-compose.monitoring.yml -f docker-compose.scale.yml \
	$(if $(filter 1 true yes,$(WATCHFLOOR_MEMORY_LOCK)),-f docker-compose.memory-lock.yml -f docker-compose.scale.memory-lock.yml)
# `make up`'s helpers get their own small virtualenv: PyYAML and bcrypt, not the dev
# tools (.venv is for tests and linters). It lives under .venv, which git and Docker ignore.
STACK_VENV ?= .venv/stack
STACK_STAMP := $(STACK_VENV)/.installed-stamp
STACK := PYTHONPATH=libs $(STACK_VENV)/bin/python -m watchfloor_stack.compose --env-file .env \
	--example .env.example --compose-file docker-compose.monitoring.yml --docker $(DOCKER)
# The scale profile merged over it, as COMPOSE_SCALE does (its memory-lock files change no limits).
STACK_SCALE := $(STACK) --compose-file docker-compose.scale.yml

.PHONY: help install test test-unit test-integration lint format bench lock clean-venv \
	test-lowest local-up local-down local-status dashboards up down ps logs clean validate tools tools-env \
	up-scale down-scale

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

up: $(STACK_STAMP) ## the whole stack with Docker Compose: .env, pre-flight checks, start, wait healthy, provision
	$(STACK) env
	$(STACK) preflight
	$(COMPOSE) up -d --build --wait --wait-timeout 600
	@# Prometheus and Alertmanager re-read their mounted and rendered files on SIGHUP (Compose
	@# restarts Alertmanager itself when a changed .env re-renders its receivers).
	$(COMPOSE) kill --signal SIGHUP prometheus alertmanager
	$(COMPOSE) run --rm kibana-setup
	$(STACK) urls

$(STACK_STAMP): pyproject.toml requirements.lock libs/watchfloor_stack/compose/requirements.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make up needs Python >= 3.11 on this machine (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(STACK_VENV)
	$(STACK_VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements.lock \
	  $$($(PYTHON) libs/watchfloor_stack/compose/requirements.py pyproject.toml)
	@touch $@

down: ## stop the stack, keep its data
	$(COMPOSE) --profile setup down --remove-orphans

up-scale: $(STACK_STAMP) ## the scale profile instead (3 Elasticsearch nodes, HA Prometheus/Alertmanager, VictoriaMetrics, Kafka; 32 GB)
	$(STACK_SCALE) env
	@# The project name lets pre-flight tell the profile's own running containers from others.
	COMPOSE_PROJECT_NAME=$(SCALE_PROJECT) $(STACK_SCALE) preflight
	$(COMPOSE_SCALE) up -d --build --wait --wait-timeout 900
	$(COMPOSE_SCALE) kill --signal SIGHUP prometheus prometheus-b alertmanager alertmanager-2 alertmanager-3
	$(COMPOSE_SCALE) run --rm kibana-setup
	$(STACK_SCALE) urls

down-scale: ## stop the scale profile, keep its data
	$(COMPOSE_SCALE) --profile setup down --remove-orphans

ps: ## the stack's containers and their health
	$(COMPOSE) ps --all

logs: ## follow the stack's logs (SERVICE=name for one service)
	$(COMPOSE) logs --follow --tail 200 $(SERVICE)

clean: ## stop the stack and delete its volumes (all stored logs, metrics, traces, alerts), after asking
	@read -r -p "Delete every watchfloor volume (Elasticsearch, Prometheus, Grafana, alert hub data)? [y/N] " answer; \
	  [ "$$answer" = y ] || [ "$$answer" = Y ] || { echo "kept everything"; exit 1; }
	$(COMPOSE) --profile setup down --volumes --remove-orphans

validate: install tools ## every static check of the stack's configuration (no Docker needed)
	WATCHFLOOR_REQUIRE_TOOLS=1 $(BIN)/pytest -m static -q
	@if docker compose version >/dev/null 2>&1; then \
	  env_file=$$(mktemp) && rm "$$env_file" && \
	  PYTHONPATH=libs $(BIN)/python -m watchfloor_stack.compose --env-file "$$env_file" env >/dev/null && \
	  $(COMPOSE) --env-file "$$env_file" --profile setup config --quiet && \
	  $(COMPOSE_SCALE) --env-file "$$env_file" --profile setup config --quiet && rm -f "$$env_file" && \
	  echo "docker compose config: ok (single-node and scale profile)"; \
	else echo "docker compose config: skipped (no Compose v2 here; tests/static validated the file)"; fi

install: $(STAMP) ## create .venv and install watchfloor with its pinned dependencies

$(STAMP): pyproject.toml libs/pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "watchfloor needs Python >= 3.11 (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ./libs -e '.[provisioning,dev]'
	@touch $(STAMP)

test: install tools ## run the whole suite (unit, integration; e2e skips without Docker)
	WATCHFLOOR_REQUIRE_TOOLS=1 $(BIN)/pytest

# The library's unit tests at the lowest versions its ranges allow (uv's lowest-direct resolution
# of libs/pyproject.toml's dependencies and extras); the test tools themselves come from the lock.
LOWEST_VENV ?= .venv/lowest
LIBRARY_TESTS := tests/unit --ignore=tests/unit/stack --ignore=tests/unit/alerthub \
	--ignore=tests/unit/exporters
test-lowest: install ## the library's unit tests at the lowest dependency versions its ranges allow
	rm -rf $(LOWEST_VENV)
	$(BIN)/uv venv --quiet --python $(PYTHON) $(LOWEST_VENV)
	$(BIN)/uv pip install --quiet --python $(LOWEST_VENV)/bin/python -c requirements.lock \
	  pytest pytest-asyncio hypothesis httpx uvicorn requests
	$(PYTHON) -c 'import tomllib; p = tomllib.load(open("libs/pyproject.toml", "rb"))["project"]; \
	  print(*p["dependencies"], *sum(p["optional-dependencies"].values(), []), sep="\n")' \
	  > $(LOWEST_VENV)/library-requirements.txt
	$(BIN)/uv pip install --quiet --python $(LOWEST_VENV)/bin/python --resolution lowest-direct \
	  -r $(LOWEST_VENV)/library-requirements.txt
	$(BIN)/uv pip install --quiet --python $(LOWEST_VENV)/bin/python --no-deps -e ./libs
	@$(BIN)/uv pip list --python $(LOWEST_VENV)/bin/python 2>/dev/null | \
	  grep -iE '^(prometheus-client|orjson|python-logstash-async|opentelemetry-(api|sdk|exporter-otlp-proto-http|instrumentation-fastapi)|fastapi) '
	$(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LIBRARY_TESTS)

test-unit: install ## unit tests only
	$(BIN)/pytest tests/unit

test-integration: install tools ## integration tests against the pinned binaries
	WATCHFLOOR_REQUIRE_TOOLS=1 $(BIN)/pytest tests/integration

tools: ## build the Go servers at the releases Compose pins (Prometheus, Alertmanager, Jaeger, ...)
	@$(GOTOOLS) build

tools-env: ## print `export PROMETHEUS_BIN=...` lines: eval "$$(make -s tools-env)"
	@$(GOTOOLS) env

lint: install ## ruff check, ruff format --check, mypy (strict) on libs/
	$(BIN)/ruff check --no-cache $(SOURCES)
	$(BIN)/ruff format --no-cache --check $(SOURCES)
	$(BIN)/mypy

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

bench: install ## run the benchmarks, each figure with its 95% interval (see benchmarks/README.md; BENCH_ARGS=...)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

lock: ## re-resolve requirements.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e ./libs -e '.[provisioning,dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^watchfloor' > requirements.lock
	rm -rf .lock-venv

local-up: install ## local mode: Prometheus, pushgateway, node-exporter, Alertmanager, Jaeger, exporters, alert hub on 127.0.0.1
	@$(GOTOOLS) build --if-go
	$(BIN)/watchfloor-local up

local-down: ## stop exactly what local-up started
	@if [ -x $(BIN)/watchfloor-local ]; then $(BIN)/watchfloor-local down; else echo "nothing to stop (no .venv)"; fi

local-status: ## show local mode's processes and their health
	$(BIN)/watchfloor-local status

dashboards: install ## regenerate provisioning/grafana/dashboards/ from provisioning/watchfloor_provisioning
	$(BIN)/python -m watchfloor_provisioning.grafana.generate

clean-venv: ## remove the virtualenv
	rm -rf $(VENV)
