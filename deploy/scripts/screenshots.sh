#!/usr/bin/env bash
# make screenshots: a broker and database of their own (the test profile shifted by
# SCREENSHOTS_PORT_OFFSET, default 30, so neither make up nor make test is touched), the
# seven services (the recorder among them) with the example organisation, a few incidents, then PNGs of the web
# console at desktop and phone widths in .local/screenshots/. Stops what it started.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
bash deploy/scripts/bootstrap.sh
bash deploy/scripts/browser.sh
offset=${SCREENSHOTS_PORT_OFFSET:-30}
export TEST_PORT_OFFSET=$offset
export KAFKA_PORT=$((19092 + offset)) KAFKA_CONTROLLER_PORT=$((19093 + offset)) PG_PORT=$((55433 + offset))
export STACK_STATE_DIR=$REPO_ROOT/.local/screenshots-stack
bash deploy/scripts/stack.sh reset --profile test >/dev/null
cleanup() { bash deploy/scripts/stack.sh stop --profile test >/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bash deploy/scripts/stack.sh start --profile test
# shellcheck disable=SC1091
. .local/screenshots-stack/stack.env
.local/venv/bin/python deploy/screenshots/screenshots.py "$@"
