# Incident Handling: the commands a user types. See README.md.
SHELL := /bin/bash
PY := .local/venv/bin/python
# make up CLUSTER=3 (and run, down, status): the platform on a three-broker Kafka cluster
# (stack.sh --profile cluster: replication 3, min.insync.replicas 2). Default: one broker.
CLUSTER ?=
ifneq ($(filter-out 3,$(CLUSTER)),)
$(error CLUSTER=$(CLUSTER): only CLUSTER=3, a three-broker cluster, is supported)
endif
STACK_PROFILE := $(if $(CLUSTER),cluster,local)

.PHONY: help setup run up down status test test-cluster test-workers test-openapi-volume unit demo bench soak clean topics screenshots

help:
	@echo "make run     start everything in the foreground (Ctrl-C stops it)"
	@echo "make up      start the local stack and the five services in the background (CLUSTER=3: on three brokers)"
	@echo "make down    stop what make up started (data kept in .local/)"
	@echo "make test    the whole suite against a real broker and database of its own"
	@echo "make test-cluster  the three-broker tests: a broker stopped mid-storm (a stack of its own, minutes)"
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
	@STACK_PROFILE=$(STACK_PROFILE) bash deploy/scripts/run.sh

up: setup
	@bash deploy/scripts/stack.sh start --profile $(STACK_PROFILE)
	@bash deploy/scripts/services.sh start --profile $(STACK_PROFILE)

down:
	@bash deploy/scripts/services.sh stop
	@bash deploy/scripts/stack.sh stop --profile $(STACK_PROFILE)

status:
	@bash deploy/scripts/stack.sh status --profile $(STACK_PROFILE) || true
	@bash deploy/scripts/services.sh status --profile $(STACK_PROFILE) || true

test:
	@bash deploy/scripts/test.sh

test-cluster:
	@bash deploy/scripts/test-cluster.sh

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
	@bash deploy/scripts/stack.sh reset --profile cluster >/dev/null
	rm -rf .local
