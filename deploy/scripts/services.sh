#!/usr/bin/env bash
# The seven services (five, the recorder and the web console) as background processes (make up /
# make down) or in the foreground (make run), each under services/supervisor.py,
# which restarts it when it crashes or its liveness watchdog finds it stalled.
# Stops exactly what it started, by PID.
#
# Usage: [WORKERS=N] deploy/scripts/services.sh <start|stop|status|urls> [--profile local|cluster]
# (--profile cluster: on the three-broker stack of `stack.sh --profile cluster`, make up CLUSTER=3;
# the services, their ports, logs and PIDs are the same either way, one platform at a time).
# Logs: .local/logs/<name>.log   PIDs: .local/run/<name>.pid (the supervisor),
# .local/run/<name>.child.pid (the service process itself). The name is the service's
# (triage), or with WORKERS=N>1 the worker's (triage-1 .. triage-N): see services/workers.py.
set -Eeuo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
STATE_DIR=$REPO_ROOT/.local
PY=$STATE_DIR/venv/bin/python
READY_TIMEOUT=${READY_TIMEOUT:-120}
PROFILE=local
WORKERS_FILE=$STATE_DIR/run/workers

COMMAND=${1:-}
shift || true
while (($#)); do
  case $1 in
    --profile)
      [[ ${2:-} == local || ${2:-} == cluster ]] ||
        { echo "services.sh: only the local and cluster profiles run here (tests start their own)" >&2; exit 2; }
      PROFILE=$2
      shift 2 ;;
    *) echo "services.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$STATE_DIR/logs" "$STATE_DIR/run"
if [[ $PROFILE == cluster ]]; then STACK_ENV=$STATE_DIR/cluster/stack.env; else STACK_ENV=$STATE_DIR/stack.env; fi
# The number of workers per shared service: WORKERS at start; afterwards what the last start used.
if [[ $COMMAND == start ]]; then
  WORKERS=${WORKERS:-1}
else
  WORKERS=$(cat "$WORKERS_FILE" 2>/dev/null || echo "${WORKERS:-1}")
fi
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || { echo "services.sh: WORKERS must be a whole number from 1 (got '$WORKERS')" >&2; exit 2; }
SERVICES=(ingestion recorder triage escalation notification metrics web)
if ((WORKERS > 1)); then
  mapfile -t SERVICES < <(cd "$REPO_ROOT" && "$PY" -m services.workers names "$WORKERS")
fi
WORKER_PORT_STEP=${WORKER_PORT_STEP:-1000}

# service_of NAME / worker_of NAME: triage-2 -> triage / 2; triage -> triage / 0.
service_of() { if [[ $1 =~ ^(.+)-([0-9]+)$ ]]; then printf '%s' "${BASH_REMATCH[1]}"; else printf '%s' "$1"; fi; }
worker_of() { if [[ $1 =~ ^(.+)-([0-9]+)$ ]]; then printf '%s' "${BASH_REMATCH[2]}"; else printf 0; fi; }
# shift_of NAME: what worker k adds to each of its service's ports (worker 1 keeps them).
shift_of() { local k; k=$(worker_of "$1"); ((k >= 2)) && printf '%s' $(((k - 1) * WORKER_PORT_STEP)) || printf 0; }
supervisor_args() {
  local k
  k=$(worker_of "$1")
  if ((k > 0)); then printf -- '-m services.supervisor %s --worker %s ' "$(service_of "$1")" "$k"; else printf -- '-m services.supervisor %s ' "$1"; fi
}
pidfile() { printf '%s/run/%s.pid' "$STATE_DIR" "$1"; }

running_pid() {
  # The PID from the file, if that process is alive and is this service of this checkout.
  local file pid
  file=$(pidfile "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(supervisor_args "$1")" || return 1
  grep -q "^State:.*Z" "/proc/$pid/status" 2>/dev/null && return 1
  printf '%s' "$pid"
}

load_env() {
  [[ -f $STACK_ENV ]] || { echo "services.sh: no $STACK_ENV: start the stack first (make up)" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$STACK_ENV"
  export DATA_DIR=${DATA_DIR:-$STATE_DIR/data}
  export INGESTION_PORT=${INGESTION_PORT:-8080} METRICS_PORT=${METRICS_PORT:-9108} WEB_PORT=${WEB_PORT:-8090}
  export RECORDER_PORT=${RECORDER_PORT:-8091}
}

readyz_url() {
  # Each service's end-to-end readiness: a probe through its own producer and consumer.
  local shift base
  shift=$(shift_of "$1")
  base=$((${FAUST_WEB_PORT_BASE:-6066} + shift))
  case $(service_of "$1") in
    ingestion) echo "http://127.0.0.1:$((INGESTION_PORT + shift))/readyz" ;;
    recorder) echo "http://127.0.0.1:$((RECORDER_PORT + shift))/readyz" ;;
    triage) echo "http://127.0.0.1:$base/readyz" ;;
    escalation) echo "http://127.0.0.1:$((base + 1))/readyz" ;;
    notification) echo "http://127.0.0.1:$((base + 2))/readyz" ;;
    metrics) echo "http://127.0.0.1:$((METRICS_PORT + shift))/readyz" ;;
    web) echo "http://127.0.0.1:$WEB_PORT/readyz" ;;
  esac
}

ready() { curl -fsS -m 8 "$(readyz_url "$1")" >/dev/null 2>&1; }

start_one() {
  local name=$1 pid
  if pid=$(running_pid "$name"); then
    echo "  $name already running (pid $pid)"
    return 0
  fi
  : >"$STATE_DIR/logs/$name.log"
  local worker_args=()
  (($(worker_of "$name") > 0)) && worker_args=(--worker "$(worker_of "$name")")
  (cd "$REPO_ROOT" && exec setsid "$PY" -m services.supervisor "$(service_of "$name")" "${worker_args[@]}" \
    --child-pidfile "$STATE_DIR/run/$name.child.pid" >>"$STATE_DIR/logs/$name.log" 2>&1) &
  echo $! >"$(pidfile "$name")"
}

wait_ready() {
  local name deadline=$((SECONDS + READY_TIMEOUT)) pending
  while :; do
    pending=()
    for name in "${SERVICES[@]}"; do
      running_pid "$name" >/dev/null || { echo "services.sh: $name exited; last lines of its log:" >&2; tail -n 30 "$STATE_DIR/logs/$name.log" >&2; return 1; }
      ready "$name" || pending+=("$name")
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS > deadline)); then
      echo "services.sh: not ready after ${READY_TIMEOUT}s: ${pending[*]}" >&2
      for name in "${pending[@]}"; do
        echo "  $name: $(curl -sS -m 8 "$(readyz_url "$name")" 2>&1)" >&2
        tail -n 20 "$STATE_DIR/logs/$name.log" >&2
      done
      return 1
    fi
    sleep 0.5 # polling for readiness, bounded by the deadline above
  done
}

stop_one() {
  local name=$1 pid
  if ! pid=$(running_pid "$name"); then
    rm -f "$(pidfile "$name")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do
    running_pid "$name" >/dev/null || break
    sleep 0.1
  done
  if running_pid "$name" >/dev/null; then
    echo "  $name did not stop in 15 s; killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
  echo "  $name stopped"
}

# Prometheus is optional: started when Debian's binary is there (make test installs it),
# scraping every service (every worker of it) with deploy/prometheus/prometheus.yml's
# settings and its alert rules.
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}

prometheus_pid() {
  local file=$STATE_DIR/run/prometheus.pid pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--storage.tsdb.path=$STATE_DIR/prometheus" || return 1
  printf '%s' "$pid"
}

start_prometheus() {
  command -v prometheus >/dev/null 2>&1 || return 0
  prometheus_pid >/dev/null && return 0
  mkdir -p "$STATE_DIR/prometheus"
  # deploy/prometheus/prometheus.yml with one target per worker (services/workers.py).
  (cd "$REPO_ROOT" && "$PY" -m services.workers prometheus "$WORKERS" "$STATE_DIR/run/prometheus.yml") || return 1
  (cd "$REPO_ROOT/deploy/prometheus" && exec setsid prometheus --config.file="$STATE_DIR/run/prometheus.yml" \
    --storage.tsdb.path="$STATE_DIR/prometheus" --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
    >>"$STATE_DIR/logs/prometheus.log" 2>&1) &
  echo $! >"$STATE_DIR/run/prometheus.pid"
}

stop_prometheus() {
  local pid
  if pid=$(prometheus_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "  prometheus stopped"
  fi
  rm -f "$STATE_DIR/run/prometheus.pid"
}

cmd_start() {
  load_env
  local started=$SECONDS
  "$PY" -m services.cli.credentials >/dev/null
  # Every topic, Faust's internal ones included, exists with a leader before any service starts.
  (cd "$REPO_ROOT" && "$PY" -m services.topology)
  echo "$WORKERS" >"$WORKERS_FILE"
  for name in "${SERVICES[@]}"; do start_one "$name"; done
  start_prometheus
  wait_ready
  echo "services ready in $((SECONDS - started))s (each passed its end-to-end probe):"
  print_urls
}

print_urls() {
  cat <<EOT
  web console       http://127.0.0.1:$WEB_PORT   (sign in with a token from the credentials file)
  API (ingestion)   http://127.0.0.1:$INGESTION_PORT   (OpenAPI: /openapi.json, health: /healthz, /readyz)
  recorder          http://127.0.0.1:$RECORDER_PORT   (/readyz, /metrics: the PostgreSQL writer's own)
  metrics           http://127.0.0.1:$METRICS_PORT/metrics
  Kafka             $KAFKA_BOOTSTRAP
  PostgreSQL        $DATABASE_URL
  credentials       $STATE_DIR/credentials.env   (source it: . .local/credentials.env)
EOT
  if ((WORKERS > 1)); then
    local k
    for ((k = 2; k <= WORKERS; k++)); do
      echo "  worker $k          API http://127.0.0.1:$((INGESTION_PORT + (k - 1) * WORKER_PORT_STEP)), recorder :$((RECORDER_PORT + (k - 1) * WORKER_PORT_STEP)), Faust web from :$((${FAUST_WEB_PORT_BASE:-6066} + (k - 1) * WORKER_PORT_STEP)), metrics :$((METRICS_PORT + (k - 1) * WORKER_PORT_STEP))"
    done
    echo "  one process only  the web console (every metrics worker exports every incident's numbers)"
  fi
  if prometheus_pid >/dev/null; then
    echo "  Prometheus        http://127.0.0.1:$PROMETHEUS_PORT   (scrapes every service; alert rules loaded)"
  fi
  cat <<EOT
  logs              $STATE_DIR/logs/
EOT
}

cmd_stop() {
  local i
  stop_prometheus
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do stop_one "${SERVICES[i]}"; done
  rm -f "$WORKERS_FILE"
}

cmd_status() {
  local rc=0 name pid child health
  load_env
  for name in "${SERVICES[@]}"; do
    if pid=$(running_pid "$name"); then
      child=$(cat "$STATE_DIR/run/$name.child.pid" 2>/dev/null || echo "?")
      health=$(curl -sS -m 8 "$(readyz_url "$name")" 2>&1) || rc=4
      echo "  $name running (supervisor $pid, process $child): $health"
    else
      echo "  $name stopped"
      rc=3
    fi
  done
  # Which worker owns which partitions (each consumer group's description from the broker).
  if ((WORKERS > 1)); then
    echo "  partitions owned (consumer groups on $KAFKA_BOOTSTRAP):"
    (cd "$REPO_ROOT" && "$PY" -m services.group_status) || rc=4
  fi
  return $rc
}

case $COMMAND in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls) load_env; print_urls ;;
  *) echo "usage: services.sh <start|stop|status|urls>" >&2; exit 2 ;;
esac
