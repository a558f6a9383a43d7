#!/usr/bin/env bash
# make test: set up, start a broker and a database of the test profile (own
# ports and data, never the make-up stack), run the whole suite, stop them.
# Extra arguments go to pytest (e.g. deploy/scripts/test.sh -k lifecycle).
# TEST_STACK_PROFILE=cluster (make test-cluster, deploy/scripts/test-cluster.sh): the same on
# the three-broker profile, its state in .local/test-cluster.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
bash deploy/scripts/bootstrap.sh
bash deploy/scripts/observability.sh
bash deploy/scripts/browser.sh
# Several checkouts (git worktrees) can test side by side with TEST_PORT_OFFSET=10, 20...
offset=${TEST_PORT_OFFSET:-0}
export KAFKA_PORT=$((19092 + offset)) KAFKA_CONTROLLER_PORT=$((19093 + offset)) PG_PORT=$((55433 + offset))
export TEST_PORT_OFFSET=$offset
profile=${TEST_STACK_PROFILE:-test}
if [[ $profile == cluster ]]; then
  export STACK_STATE_DIR=$REPO_ROOT/.local/test-cluster
  export INCIDENT_TEST_PROFILE=cluster INCIDENT_TEST_STATE=$STACK_STATE_DIR
fi
state=${STACK_STATE_DIR:-$REPO_ROOT/.local/test}
bash deploy/scripts/stack.sh reset --profile "$profile" >/dev/null
cleanup() {
  # Services the test harness started, should pytest have been killed before its teardown.
  local pids=$state/run/harness.pids pid
  if [[ -f $pids ]]; then
    while read -r pid; do
      # Only this run's children: a recycled PID would not carry this run's marker.
      if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qx "INCIDENT_TEST_RUN=$run_id"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$pids"
    rm -f "$pids"
  fi
  bash deploy/scripts/stack.sh stop --profile "$profile" >/dev/null || true
}
run_id="$$-$(date +%s)"
export INCIDENT_TEST_RUN=$run_id
mkdir -p "$state/run"
rm -f "$state/run/harness.pids"
trap cleanup EXIT
trap 'exit 130' INT TERM
bash deploy/scripts/stack.sh start --profile "$profile"
# shellcheck disable=SC1091
. "$state/stack.env"
export INCIDENT_TEST_STACK=1
.local/venv/bin/python -m pytest "$@"
