#!/usr/bin/env bash
# make run: the whole local stack and the seven services (with the recorder and the web console) in the foreground.
# WORKERS=N (make run WORKERS=2) runs N workers of each shared service (services/workers.py).
# Ctrl-C stops everything this started (services, then broker and database).
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO_ROOT"
# make run CLUSTER=3 sets STACK_PROFILE=cluster: the three-broker stack.
profile=${STACK_PROFILE:-local}
stopping=0
tail_pid=
cleanup() {
  ((stopping)) && return
  stopping=1
  # The log follower is a background job: it ignores Ctrl-C, so it is stopped by PID.
  [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null
  echo
  echo "stopping..."
  bash deploy/scripts/services.sh stop || true
  bash deploy/scripts/stack.sh stop --profile "$profile" || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM  # a requested stop is a clean stop
bash deploy/scripts/bootstrap.sh
bash deploy/scripts/stack.sh start --profile "$profile"
bash deploy/scripts/services.sh start --profile "$profile"
echo
echo "Running in the foreground; Ctrl-C stops everything. Service logs follow."
echo
logs=(.local/logs/ingestion.log .local/logs/recorder.log .local/logs/triage.log .local/logs/escalation.log
  .local/logs/notification.log .local/logs/metrics.log .local/logs/web.log)
if ((${WORKERS:-1} > 1)); then
  # One log per worker (triage-1.log, triage-2.log ...): services/workers.py names them.
  mapfile -t logs < <(.local/venv/bin/python -m services.workers names "$WORKERS" | sed 's|.*|.local/logs/&.log|')
fi
tail -n 0 -F "${logs[@]}" &
tail_pid=$!
wait "$tail_pid"
