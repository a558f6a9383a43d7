#!/usr/bin/env bash
# make test-cluster: the tests that need the three-broker cluster (a broker stopped mid-storm,
# replication settings that cannot work), on a cluster-profile stack of their own (state
# .local/test-cluster; ports from TEST_PORT_OFFSET: brokers 19092+o, 19094+o, 19096+o,
# controllers one above each, PostgreSQL 55433+o), started fresh and stopped at the end by
# deploy/scripts/test.sh. Longer than make test's tests; not part of it.
# Extra arguments go to pytest (default: the cluster tests, tests/integration -m cluster).
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
if (($# == 0)); then set -- -q -s -m cluster "$REPO_ROOT/tests/integration"; fi
TEST_STACK_PROFILE=cluster exec bash "$REPO_ROOT/deploy/scripts/test.sh" "$@"
