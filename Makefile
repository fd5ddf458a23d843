# Two commands do everything: `make run` and `make test`. The rest are for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install run test test-fast lint format bench infra-up infra-down clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## install uv, the workspace, Kafka's jars and the Debian tools
	@bash deploy/local/install.sh

run: install ## start Kafka, PostgreSQL and the five services, feed them, show KPIs
	@$(UV) run python deploy/local/run.py $(RUN_ARGS)

test: install ## the whole suite, against a real broker and database it starts
	@$(UV) run pytest $(PYTEST_ARGS)

test-fast: ## unit tests only (no broker, no database)
	@$(UV) run pytest tests/unit $(PYTEST_ARGS)

lint: ## ruff and mypy, as CI would
	@$(UV) run ruff format --check .
	@$(UV) run ruff check .
	@$(UV) run mypy shared/src services/*/src tests

format: ## apply ruff's formatting and safe fixes
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

bench: install ## run the benchmarks under bench/ one after another
	@$(UV) run python bench/run_all.py $(BENCH_ARGS)

infra-up: install ## start only Kafka and PostgreSQL (for running services by hand)
	@bash deploy/local/kafka.sh start
	@bash deploy/local/postgres.sh start

infra-down: ## stop the local Kafka and PostgreSQL
	@bash deploy/local/kafka.sh stop || true
	@bash deploy/local/postgres.sh stop || true

clean: infra-down ## remove local state (broker data, database, caches)
	@rm -rf .local .pytest_cache .mypy_cache .ruff_cache
