#!/usr/bin/env bash
# make bench: start a broker and database of their own (the test profile shifted by
# BENCH_PORT_OFFSET, default 40, so neither make up nor make test is touched), run
# the five services and the recorder, measure, print a table, write .local/bench/results.json, stop.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
bash deploy/scripts/bootstrap.sh
offset=${BENCH_PORT_OFFSET:-40}
export TEST_PORT_OFFSET=$offset
export KAFKA_PORT=$((19092 + offset)) KAFKA_CONTROLLER_PORT=$((19093 + offset)) PG_PORT=$((55433 + offset))
# The bench has its own state directory so its data never mixes with the tests'.
export STACK_STATE_DIR=$REPO_ROOT/.local/bench
bash deploy/scripts/stack.sh reset --profile test >/dev/null
cleanup() { bash deploy/scripts/stack.sh stop --profile test >/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bash deploy/scripts/stack.sh start --profile test
# shellcheck disable=SC1091
. .local/bench/stack.env
.local/venv/bin/python deploy/bench/bench.py "$@"
