# Incident Handling: the commands a user types. See README.md.
SHELL := /bin/bash
PY := .local/venv/bin/python

.PHONY: help setup run up down status test test-workers test-openapi-volume unit demo bench soak clean topics screenshots

help:
	@echo "make run     start everything in the foreground (Ctrl-C stops it)"
	@echo "make up      start the local stack and the five services in the background"
	@echo "make down    stop what make up started (data kept in .local/)"
	@echo "make test    the whole suite against a real broker and database of its own"
	@echo "make test-workers  one and two workers per service: the same storm, and a triage worker killed mid-storm (minutes)"
	@echo "             (make up WORKERS=2 / make run WORKERS=2: two workers of each shared service)"
	@echo "make demo    drive one incident through its life on the running stack"
	@echo "make bench   the benchmark beside Alertmanager (prints a table, writes .local/bench/results.json; BENCH_ARGS=...)"
	@echo "make test-openapi-volume  schemathesis at full volume: 2,000 requests per intake operation, 500 per other (long)"
	@echo "make soak    the chaos soak: load, random SIGKILLs, a broker restart, then the invariants (MINUTES=10)"
	@echo "make screenshots  PNGs of the web console (desktop and phone) in .local/screenshots/"

setup:
	@bash deploy/scripts/bootstrap.sh

run:
	@bash deploy/scripts/run.sh

up: setup
	@bash deploy/scripts/stack.sh start --profile local
	@bash deploy/scripts/services.sh start

down:
	@bash deploy/scripts/services.sh stop
	@bash deploy/scripts/stack.sh stop --profile local

status:
	@bash deploy/scripts/stack.sh status --profile local || true
	@bash deploy/scripts/services.sh status || true

test:
	@bash deploy/scripts/test.sh

test-workers:
	@bash deploy/scripts/test-workers.sh

unit: setup
	@$(PY) -m pytest tests/unit -q

demo: setup
	@$(PY) -m services.cli.demo

bench: setup
	@bash deploy/scripts/bench.sh $(BENCH_ARGS)

test-openapi-volume:
	@OPENAPI_INTAKE_EXAMPLES=2000 OPENAPI_EXAMPLES=500 bash deploy/scripts/test.sh -q -s tests/integration/test_openapi.py

# The chaos soak on a stack of its own (SOAK_ARGS=... for soak.py's other options).
MINUTES ?= 10
soak: setup
	@bash deploy/scripts/soak.sh --minutes $(MINUTES) $(SOAK_ARGS)

screenshots:
	@bash deploy/scripts/screenshots.sh

topics: setup
	@$(PY) -m shared.catalogue

clean: down
	@bash deploy/scripts/stack.sh reset --profile local >/dev/null
	@bash deploy/scripts/stack.sh reset --profile test >/dev/null
	rm -rf .local
