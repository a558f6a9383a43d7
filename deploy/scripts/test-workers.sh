#!/usr/bin/env bash
# make test-workers: the several-workers tests (tests/workers/) on a test-profile broker and
# database of their own, as make test runs its suite: the same storm with one and with two
# workers per service, and a triage worker SIGKILLed mid-storm (a few minutes; not in make test).
# Extra arguments go to pytest (e.g. deploy/scripts/test-workers.sh -k hands_over).
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
export INCIDENT_WORKERS_TESTS=1
exec bash "$REPO_ROOT/deploy/scripts/test.sh" -q -s -p no:cacheprovider "$@" "$REPO_ROOT/tests/workers"
