#!/usr/bin/env bash
# make soak: the chaos soak (deploy/soak/soak.py) on a broker and database of its own: the
# test profile shifted by SOAK_PORT_OFFSET (default 60) with its state in .local/soak, so
# neither make up, make test nor make bench is touched. Arguments go to soak.py
# (--minutes N, --rate, --seed ...). soak.py stops the services and the stack itself and
# checks that nothing it started is left; the trap below only covers an interrupted run.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
bash deploy/scripts/bootstrap.sh
offset=${SOAK_PORT_OFFSET:-60}
export TEST_PORT_OFFSET=$offset
export KAFKA_PORT=$((19092 + offset)) KAFKA_CONTROLLER_PORT=$((19093 + offset)) PG_PORT=$((55433 + offset))
export STACK_STATE_DIR=$REPO_ROOT/.local/soak
bash deploy/scripts/stack.sh reset --profile test >/dev/null
cleanup() { bash deploy/scripts/stack.sh stop --profile test >/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bash deploy/scripts/stack.sh start --profile test
# shellcheck disable=SC1091
. .local/soak/stack.env
.local/venv/bin/python deploy/soak/soak.py "$@"
