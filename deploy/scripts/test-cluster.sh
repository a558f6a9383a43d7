#!/usr/bin/env bash
# make test-cluster: the tests that need the three-broker cluster (a broker stopped mid-storm),
# on a cluster-profile stack of their own (state .local/test-cluster, ports from TEST_PORT_OFFSET:
# brokers 19092+o, 19094+o, 19096+o, controllers one above each, PostgreSQL 55433+o), started
# fresh and stopped at the end. Longer than make test's tests; not part of it.
# Extra arguments go to pytest (default: the cluster tests, tests/integration -m cluster).
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
bash deploy/scripts/bootstrap.sh
offset=${TEST_PORT_OFFSET:-0}
export KAFKA_PORT=$((19092 + offset)) KAFKA_CONTROLLER_PORT=$((19093 + offset)) PG_PORT=$((55433 + offset))
export TEST_PORT_OFFSET=$offset
export STACK_STATE_DIR=$REPO_ROOT/.local/test-cluster
export INCIDENT_TEST_PROFILE=cluster INCIDENT_TEST_STATE=$STACK_STATE_DIR
bash deploy/scripts/stack.sh reset --profile cluster >/dev/null
cleanup() {
  # Services the test harness started, should pytest have been killed before its teardown.
  local pids=$STACK_STATE_DIR/run/harness.pids pid
  if [[ -f $pids ]]; then
    while read -r pid; do
      # Only this run's children: a recycled PID would not carry this run's marker.
      if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qx "INCIDENT_TEST_RUN=$run_id"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$pids"
    rm -f "$pids"
  fi
  bash deploy/scripts/stack.sh stop --profile cluster >/dev/null || true
}
run_id="$$-$(date +%s)"
export INCIDENT_TEST_RUN=$run_id
mkdir -p "$STACK_STATE_DIR/run"
rm -f "$STACK_STATE_DIR/run/harness.pids"
trap cleanup EXIT
trap 'exit 130' INT TERM
bash deploy/scripts/stack.sh start --profile cluster
# shellcheck disable=SC1091
. "$STACK_STATE_DIR/stack.env"
export INCIDENT_TEST_STACK=1
if (($# == 0)); then set -- -q -s -m cluster tests/integration; fi
.local/venv/bin/python -m pytest "$@"
