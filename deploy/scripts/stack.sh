#!/usr/bin/env bash
# Local infrastructure of the platform: one Apache Kafka broker (KRaft,
# single node, jars from Maven Central) and one PostgreSQL cluster, with no
# Docker and no system services.
#
# Usage: deploy/scripts/stack.sh <start|stop|status|env|reset> [--profile local|test|cluster]
#
#   start   start what is not running, wait until it is ready, write stack.env
#   stop    stop what `start` of this profile started (by PID), keep the data
#   status  running/stopped per component; exit 0 if all run, 3 otherwise
#   env     print the exports of stack.env (for `eval "$(stack.sh env)"`)
#   reset   stop, then delete the profile's data (not the shared broker jars)
#
# Profiles never share ports or data, so `make test` can run beside `make up`:
#   local  state <repo>/.local       Kafka 127.0.0.1:9092  (controller 9093)   PostgreSQL 127.0.0.1:55432
#   test   state <repo>/.local/test  Kafka 127.0.0.1:19092 (controller 19093)  PostgreSQL 127.0.0.1:55433
#   cluster state <repo>/.local/cluster  three Kafka brokers, 127.0.0.1:29092, 29094, 29096
#          (controllers 29093, 29095, 29097)  PostgreSQL 127.0.0.1:55434
# The cluster profile runs three combined broker+controller nodes (node ids 1-3, a 3-voter
# KRaft quorum): broker n listens on KAFKA_PORT+2(n-1), its controller on
# KAFKA_CONTROLLER_PORT+2(n-1); its state is kafka-n/, logs/kafka-n.log, run/kafka-n.pid.
# stack.env then also sets TOPIC_REPLICATION=3 and TOPIC_MIN_INSYNC_REPLICAS=2, and the
# internal topics (offsets, transactions) have three copies, two in sync.
# Environment overrides: KAFKA_PORT, KAFKA_CONTROLLER_PORT, PG_PORT,
# KAFKA_HEAP_OPTS (default "-Xms256m -Xmx384m"; "-Xms128m -Xmx256m" per broker of the
# cluster), KAFKA_START_TIMEOUT (90 s),
# PG_START_TIMEOUT (60 s), PG_BINDIR (default: newest /usr/lib/postgresql/*/bin).
#
# State dir layout: kafka/data (KRaft log dirs), kafka/server.properties
# (generated at every start), kafka/cluster.id, postgres/ (cluster; may be a
# symlink, see pg_prepare_home), logs/{kafka,postgres}.log, run/*.pid,
# stack.env. Broker jars are shared by the profiles in <repo>/.local/kafka/lib.
set -Eeuo pipefail
shopt -s inherit_errexit
umask 022

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd -P)
STACK_PROG=$(basename -- "$0")
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"
trap 'rc=$?; printf "%s: error: unexpected failure (exit %s) at line %s: %s\n" "$STACK_PROG" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit "$rc"' ERR

# The one place that names the Kafka version. Fallback if 4.1.x ever cannot be
# used: KAFKA_VERSION=3.9.1 (the script then switches the POM to the reload4j
# logging profile and generates a log4j 1.x configuration by itself).
KAFKA_VERSION=${KAFKA_VERSION:-4.1.2}
KAFKA_MAJOR=${KAFKA_VERSION%%.*}

PG_DB=incident
PG_ROLE=incident
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
PG_START_TIMEOUT=${PG_START_TIMEOUT:-60}
# What the broker logs once it is unfenced and serving (Kafka 3.9 and 4.x,
# kafka.server.KafkaRaftServer at INFO):
#   [KafkaRaftServer nodeId=1] Kafka Server started (kafka.server.KafkaRaftServer)
KAFKA_READY_LINE='Kafka Server started'

usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p}' "$0"
}

# ---------------------------------------------------------------- arguments
COMMAND=${1:-}
[[ -n $COMMAND ]] || { usage >&2; exit 2; }
shift
PROFILE=local
while (($#)); do
  case $1 in
    --profile) [[ $# -ge 2 ]] || die "--profile needs a value"; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#--profile=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (usage: $STACK_PROG <start|stop|status|env|reset> [--profile local|test|cluster])" ;;
  esac
done
case $COMMAND in
  -h | --help | help) usage; exit 0 ;;
esac

case $PROFILE in
  local) STATE_DIR=$REPO_ROOT/.local; def_kafka=9092; def_ctrl=9093; def_pg=55432; KAFKA_NODES=1 ;;
  test) STATE_DIR=$REPO_ROOT/.local/test; def_kafka=19092; def_ctrl=19093; def_pg=55433; KAFKA_NODES=1 ;;
  cluster) STATE_DIR=$REPO_ROOT/.local/cluster; def_kafka=29092; def_ctrl=29093; def_pg=55434; KAFKA_NODES=3 ;;
  *) die "unknown profile '$PROFILE' (local, test or cluster)" ;;
esac
# A caller (the benchmark) may keep a profile's state elsewhere: STACK_STATE_DIR.
STATE_DIR=${STACK_STATE_DIR:-$STATE_DIR}
KAFKA_BASE_PORT=${KAFKA_PORT:-$def_kafka}
KAFKA_BASE_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$def_ctrl}
PG_PORT=${PG_PORT:-$def_pg}
for p in "$KAFKA_BASE_PORT" "$KAFKA_BASE_CONTROLLER_PORT" "$PG_PORT"; do
  if [[ ! $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p + 2 * (KAFKA_NODES - 1) > 65535)); then die "invalid port '$p'"; fi
done
# Every broker's port and controller port, and PostgreSQL's: all different.
all_ports=("$PG_PORT")
for ((n = 0; n < KAFKA_NODES; n++)); do
  all_ports+=("$((KAFKA_BASE_PORT + 2 * n))" "$((KAFKA_BASE_CONTROLLER_PORT + 2 * n))")
done
[[ $(printf '%s\n' "${all_ports[@]}" | sort -u | wc -l) -eq ${#all_ports[@]} ]] ||
  die "KAFKA_PORT, KAFKA_CONTROLLER_PORT and PG_PORT must differ (ports in use by this profile: ${all_ports[*]})"

SHARED_KAFKA_DIR=$REPO_ROOT/.local/kafka
KAFKA_LIB=$SHARED_KAFKA_DIR/lib
KAFKA_POM=$REPO_ROOT/deploy/kafka/pom.xml
KAFKA_LOG4J2=$REPO_ROOT/deploy/kafka/log4j2.yaml
PG_LINK=$STATE_DIR/postgres
LOG_DIR=$STATE_DIR/logs
RUN_DIR=$STATE_DIR/run
PG_LOG=$LOG_DIR/postgres.log
PG_PIDFILE=$RUN_DIR/postgres.pid
ENV_FILE=$STATE_DIR/stack.env
DATABASE_URL_VALUE=postgresql://$PG_ROLE@127.0.0.1:$PG_PORT/$PG_DB
# One cluster id for every node of the profile.
if ((KAFKA_NODES == 1)); then KAFKA_CLUSTER_ID_FILE=$STATE_DIR/kafka/cluster.id; else KAFKA_CLUSTER_ID_FILE=$STATE_DIR/kafka-cluster.id; fi
KAFKA_VOTERS="" KAFKA_BOOTSTRAP_ADDR=""
for ((n = 1; n <= KAFKA_NODES; n++)); do
  KAFKA_VOTERS+="${KAFKA_VOTERS:+,}$n@127.0.0.1:$((KAFKA_BASE_CONTROLLER_PORT + 2 * (n - 1)))"
  KAFKA_BOOTSTRAP_ADDR+="${KAFKA_BOOTSTRAP_ADDR:+,}127.0.0.1:$((KAFKA_BASE_PORT + 2 * (n - 1)))"
done
# Copies of every topic: one per broker, up to three; a write needs all but one of them.
KAFKA_REPLICAS=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
KAFKA_MIN_ISR=$((KAFKA_REPLICAS > 1 ? KAFKA_REPLICAS - 1 : 1))

# select_node N: the Kafka globals below name node N (1..KAFKA_NODES). One node keeps the
# names it always had (kafka/, logs/kafka.log, run/kafka.pid); a cluster's are kafka-N.
select_node() {
  local n=$1 name=kafka
  ((KAFKA_NODES == 1)) || name=kafka-$n
  KAFKA_NODE=$n
  KAFKA_NAME=$name
  KAFKA_PORT=$((KAFKA_BASE_PORT + 2 * (n - 1)))
  KAFKA_CONTROLLER_PORT=$((KAFKA_BASE_CONTROLLER_PORT + 2 * (n - 1)))
  KAFKA_DIR=$STATE_DIR/$name
  KAFKA_DATA=$KAFKA_DIR/data
  KAFKA_PROPS=$KAFKA_DIR/server.properties
  KAFKA_LOG4J1=$KAFKA_DIR/log4j.properties # only for a 3.x fallback
  KAFKA_LOG=$LOG_DIR/$name.log
  KAFKA_PIDFILE=$RUN_DIR/$name.pid
}
select_node 1

rel() { printf '%s' "${1#"$REPO_ROOT"/}"; }

# Serialise start/stop/reset of one profile (fd 9; lib.sh's run_as and the
# Kafka launch close it so that no daemon inherits the lock).
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/stack.lock"
  flock -w 300 9 || die "another $STACK_PROG is busy with profile $PROFILE (lock $RUN_DIR/stack.lock)"
}

# =================================================================== Kafka

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    printf '%s\n' "$JAVA_HOME/bin/java"
  elif command -v java >/dev/null; then
    command -v java
  else
    return 1
  fi
}

ensure_java_and_maven() {
  local missing=()
  java_bin >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  ((${#missing[@]} == 0)) || apt_install "$SHARED_KAFKA_DIR/apt.log" "${missing[@]}"
}

# The broker's classpath in .local/kafka/lib, shared by the profiles. The
# marker is written last, after a complete copy; it names the version and the
# POM, so a change of either fetches again.
ensure_kafka_jars() {
  local want marker=$KAFKA_LIB/.complete tmp mvn_log=$SHARED_KAFKA_DIR/mvn.log
  local -a mvn_args
  want="kafka $KAFKA_VERSION pom $(sha256sum <"$KAFKA_POM" | cut -c1-16)"
  if [[ -f $marker && $(<"$marker") == "$want" ]]; then return 0; fi
  mkdir -p "$SHARED_KAFKA_DIR"
  exec 8>"$SHARED_KAFKA_DIR/lib.lock"
  flock -w 600 8 || die "timed out waiting for another download of the Kafka jars"
  if [[ -f $marker && $(<"$marker") == "$want" ]]; then exec 8>&-; return 0; fi
  ensure_java_and_maven
  say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $(rel "$KAFKA_LIB") (once)"
  tmp=$SHARED_KAFKA_DIR/lib.tmp.$$
  rm -rf "$tmp"
  mvn_args=(-B -q -Dstyle.color=never -f "$KAFKA_POM"
    org.apache.maven.plugins:maven-dependency-plugin:3.11.0:copy-dependencies
    -DincludeScope=runtime -DoutputDirectory="$tmp" -Dkafka.version="$KAFKA_VERSION")
  ((KAFKA_MAJOR >= 4)) || mvn_args+=(-Dkafka.logging=reload4j)
  if ! (cd "$REPO_ROOT" && mvn "${mvn_args[@]}") >"$mvn_log" 2>&1 9>&- 8>&-; then
    rm -rf "$tmp"
    die_with_log "$mvn_log" "Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die_with_log "$mvn_log" "kafka_2.13-$KAFKA_VERSION.jar missing after the copy"
  rm -rf "$KAFKA_LIB.old"
  if [[ -d $KAFKA_LIB ]]; then mv "$KAFKA_LIB" "$KAFKA_LIB.old"; fi
  mv "$tmp" "$KAFKA_LIB"
  rm -rf "$KAFKA_LIB.old"
  printf '%s\n' "$want" >"$marker"
  exec 8>&-
}

# Broker configuration, regenerated at every start (ports may be overridden).
write_kafka_props() {
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  cat >"$KAFKA_PROPS.tmp" <<EOF
# Generated by deploy/scripts/stack.sh (profile $PROFILE, Kafka $KAFKA_VERSION)
# at every start: edit the script, not this file.
# KRaft, combined mode: node $KAFKA_NODE of $KAFKA_NODES.
process.roles=broker,controller
node.id=$KAFKA_NODE
controller.quorum.voters=$KAFKA_VOTERS
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA

# Topics: the applications create theirs with explicit partition counts.
auto.create.topics.enable=false
num.partitions=4
default.replication.factor=$KAFKA_REPLICAS
min.insync.replicas=$KAFKA_MIN_ISR

# Internal topics: one replica per broker (up to three), one partition (the
# default 50 partitions make the first group join slow).
offsets.topic.replication.factor=$KAFKA_REPLICAS
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$KAFKA_REPLICAS
transaction.state.log.min.isr=$KAFKA_MIN_ISR
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0

# A small machine: the cleaner's dedupe buffer lives on the heap (default 128 MiB).
log.cleaner.dedupe.buffer.size=8388608
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
# Note: 4.x rejects records stamped more than an hour in the future
# (log.message.timestamp.after.max.ms, default 3600000).
EOF
  if ((KAFKA_MAJOR >= 4)); then
    cat >>"$KAFKA_PROPS.tmp" <<EOF

# Share groups (Kafka 4.x): their state topic, like the others.
share.coordinator.state.topic.replication.factor=$KAFKA_REPLICAS
share.coordinator.state.topic.min.isr=$KAFKA_MIN_ISR
share.coordinator.state.topic.num.partitions=1
EOF
  fi
  mv -f "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
  if ((KAFKA_MAJOR < 4)); then
    cat >"$KAFKA_LOG4J1" <<'EOF'
# Generated by deploy/scripts/stack.sh for a Kafka 3.x fallback (reload4j).
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
EOF
  fi
}

# JVM logging flags for the broker and its tools.
kafka_log_opts() {
  if ((KAFKA_MAJOR >= 4)); then
    printf '%s\n' "-Dlog4j2.configurationFile=$KAFKA_LOG4J2"
  else
    printf '%s\n' "-Dlog4j.configuration=file:$KAFKA_LOG4J1"
  fi
}

# kafka_tool ARGS...: a Kafka command-line class (short-lived JVM).
kafka_tool() {
  local java
  java=$(java_bin) || die "java not found"
  "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "$(kafka_log_opts)" \
    -cp "$KAFKA_LIB/*" "$@" 9>&-
}

# Format the KRaft storage once; the cluster id is kept so that a restart (or
# a re-format after the data was deleted by hand) reuses it.
format_kafka_storage() {
  local id
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  mkdir -p "$(dirname -- "$KAFKA_CLUSTER_ID_FILE")"
  if [[ -s $KAFKA_CLUSTER_ID_FILE ]]; then
    id=$(<"$KAFKA_CLUSTER_ID_FILE")
  else
    id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1) ||
      die_with_log "$KAFKA_LOG" "kafka.tools.StorageTool random-uuid failed"
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die_with_log "$KAFKA_LOG" "unexpected cluster id from StorageTool: '$id'"
    printf '%s\n' "$id" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  kafka_tool kafka.tools.StorageTool format -t "$id" -c "$KAFKA_PROPS" --ignore-formatted >>"$KAFKA_LOG" 2>&1 ||
    die_with_log "$KAFKA_LOG" "kafka.tools.StorageTool format failed"
}

# kafka_pid_is_ours PID: a live JVM running kafka.Kafka on this profile's
# server.properties (guards against a recycled PID).
kafka_pid_is_ours() {
  local a main=0 props=0
  pid_alive "${1:-}" || return 1
  proc_args "$1" || return 1
  for a in "${PROC_ARGS[@]}"; do
    [[ $a == kafka.Kafka ]] && main=1
    [[ $a == "$KAFKA_PROPS" ]] && props=1
  done
  ((main && props))
}

# kafka_pid: the PID of this profile's broker, from its pid file; if the pid
# file is missing or stale, the exact command line is looked for in /proc (a
# broker whose pid file was lost is still found; nothing is matched by name).
kafka_pid() {
  local pid d
  if [[ -f $KAFKA_PIDFILE ]]; then
    pid=$(<"$KAFKA_PIDFILE")
    if kafka_pid_is_ours "$pid"; then printf '%s\n' "$pid"; return 0; fi
  fi
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    if kafka_pid_is_ours "$pid"; then
      printf '%s\n' "$pid" >"$KAFKA_PIDFILE" 2>/dev/null || true
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -qF "$KAFKA_READY_LINE" "$KAFKA_LOG" 2>/dev/null; }

# Poll until the broker accepts connections and has logged that it started.
wait_kafka_ready() {
  local pid=$1 deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until kafka_ready; do
    if ! pid_alive "$pid"; then
      rm -f "$KAFKA_PIDFILE"
      die_with_log "$KAFKA_LOG" "$KAFKA_NAME (pid $pid) exited during startup"
    fi
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$KAFKA_PIDFILE"
      die_with_log "$KAFKA_LOG" "$KAFKA_NAME not ready after ${KAFKA_START_TIMEOUT}s (killed pid $pid)"
    fi
    sleep 0.3
  done
}

# Launch the broker in the background; sets KAFKA_NEW_PID. Readiness is
# awaited later (PostgreSQL starts meanwhile).
launch_kafka() {
  local java i
  local -a heap opts
  java=$(java_bin) || die "java not found"
  if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
    die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is already in use by another process; cannot start $KAFKA_NAME for profile $PROFILE (override with KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
  fi
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  if [[ -s $KAFKA_LOG ]]; then mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"; fi
  : >"$KAFKA_LOG"
  write_kafka_props
  format_kafka_storage
  if ((KAFKA_NODES == 1)); then
    read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx384m}"
  else
    read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms128m -Xmx256m}" # three of them on a small machine
  fi
  opts=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "$(kafka_log_opts)")
  rm -f "$KAFKA_PIDFILE"
  # setsid: own session, so a Ctrl-C in the terminal that ran `start` does not
  # reach the broker. The inner shell writes its PID, then becomes java.
  # shellcheck disable=SC2016 # expanded by the inner shell
  (cd "$KAFKA_DIR" && exec setsid bash -c 'printf "%s\n" "$$" >"$0"; exec "$@"' \
    "$KAFKA_PIDFILE" "$java" "${opts[@]}" -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS") \
    </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
  for ((i = 0; i < 100; i++)); do
    [[ -s $KAFKA_PIDFILE ]] && break
    sleep 0.05
  done
  [[ -s $KAFKA_PIDFILE ]] || die_with_log "$KAFKA_LOG" "$KAFKA_NAME did not start (no pid file)"
  KAFKA_NEW_PID=$(<"$KAFKA_PIDFILE")
}

stop_kafka() {
  local pid
  if ! pid=$(kafka_pid); then
    rm -f "$KAFKA_PIDFILE"
    say "$KAFKA_NAME: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_exit "$pid" "$KAFKA_STOP_TIMEOUT"; then
    warn "$KAFKA_NAME (pid $pid) still running ${KAFKA_STOP_TIMEOUT}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_exit "$pid" 10 || die "$KAFKA_NAME (pid $pid) survived SIGKILL"
  fi
  rm -f "$KAFKA_PIDFILE"
  say "$KAFKA_NAME: stopped (pid $pid)"
}

# stop_kafka_nodes: every node. A cluster's nodes are all sent SIGTERM first, then awaited:
# one by one, the last node's controlled shutdown waits for a quorum that has gone (it hung
# past the 30 s stop timeout and had to be killed).
stop_kafka_nodes() {
  local n pid
  if ((KAFKA_NODES > 1)); then
    for ((n = 1; n <= KAFKA_NODES; n++)); do
      select_node "$n"
      if pid=$(kafka_pid); then kill -TERM "$pid" 2>/dev/null || true; fi
    done
  fi
  for ((n = KAFKA_NODES; n >= 1; n--)); do
    select_node "$n"
    stop_kafka
  done
}

# ============================================================== PostgreSQL
#
# PostgreSQL refuses to run as root. As root, the cluster runs as the system
# user `postgres` if it exists, else as `incident-pg` (created on demand);
# otherwise as the current user. The cluster lives in PG_HOME:
#   PG_HOME/data         the data directory (PGDATA)
#   PG_HOME/run          its Unix socket (never the system's /var/run/postgresql)
# PG_HOME is normally <state>/postgres. When the repository sits below a
# directory the unprivileged user cannot traverse (a clone under a 0700
# `mktemp -d`, a 0700 home), PG_HOME is
# /var/tmp/incident-handling-pg-<hash of the state dir>-<profile> instead, and
# <state>/postgres (and logs/postgres.log) are symlinks to it; stop, status and
# reset follow the symlink, reset deletes its target too.

PG_FALLBACK_PREFIX=/var/tmp/incident-handling-pg-

# pg_home_existing: PG_HOME of an existing cluster location (no creation).
pg_home_existing() {
  if [[ -L $PG_LINK ]]; then
    readlink -- "$PG_LINK"
  elif [[ -d $PG_LINK ]]; then
    printf '%s\n' "$PG_LINK"
  else
    return 1
  fi
}

pg_set_paths() {
  PG_HOME=$1
  PGDATA_DIR=$PG_HOME/data
  PG_SOCK_DIR=$PG_HOME/run
  # A socket path is limited to 107 bytes; keep room for "/.s.PGSQL.NNNNN.lock".
  if ((${#PG_SOCK_DIR} > 80)); then
    PG_SOCK_DIR=/tmp/incident-handling-pg-$(short_hash "$PG_HOME")
  fi
}

# pg_bindir [PGDATA]: the server binaries (matching the cluster's major
# version when PGDATA exists, else the newest installed).
pg_bindir() {
  local ver d
  local -a found=()
  if [[ -n ${PG_BINDIR:-} ]]; then printf '%s\n' "$PG_BINDIR"; return 0; fi
  if [[ -n ${1:-} && -f $1/PG_VERSION ]]; then
    ver=$(<"$1/PG_VERSION")
    if [[ -x /usr/lib/postgresql/$ver/bin/postgres ]]; then
      printf '%s\n' "/usr/lib/postgresql/$ver/bin"
      return 0
    fi
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]] && found+=("$d")
  done
  ((${#found[@]})) || return 1
  printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

ensure_pg_installed() {
  pg_bindir >/dev/null && return 0
  mkdir -p "$LOG_DIR"
  apt_install "$LOG_DIR/apt-postgresql.log" postgresql
  pg_bindir >/dev/null || die "PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin after installing"
}

# The OS user that runs the cluster (sets PG_USER).
pg_choose_user() {
  local owner
  if ((EUID != 0)); then
    PG_USER=$(id -un)
  elif [[ -n ${PGDATA_DIR:-} && -d $PGDATA_DIR ]] && owner=$(stat -c %U -- "$PGDATA_DIR") && [[ $owner != root && $owner != UNKNOWN ]]; then
    PG_USER=$owner
  elif id -u postgres >/dev/null 2>&1; then
    PG_USER=postgres
  else
    if ! id -u incident-pg >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "incident-handling local PostgreSQL" incident-pg ||
        id -u incident-pg >/dev/null 2>&1 || die "could not create the system user incident-pg"
    fi
    PG_USER=incident-pg
  fi
}

# can_reach DIR: PG_USER can traverse into DIR.
pg_user_can_reach() { run_as "$PG_USER" test -x "$1" 2>/dev/null; }

# Decide (and create) PG_HOME and the real path of the server log.
pg_prepare_home() {
  local home fallback
  mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR"
  if home=$(pg_home_existing); then
    pg_set_paths "$home"
    pg_choose_user
  else
    pg_choose_user
    if pg_user_can_reach "$STATE_DIR" && pg_user_can_reach "$LOG_DIR"; then
      home=$PG_LINK
    else
      # The repository is below a directory PG_USER cannot enter: see above.
      fallback=$PG_FALLBACK_PREFIX$(short_hash "$STATE_DIR")-$PROFILE
      if [[ -L $fallback || (-e $fallback && ! -d $fallback) ]]; then
        die "$fallback exists and is not a plain directory; remove it"
      fi
      say "postgres: $PG_USER cannot enter $(rel "$STATE_DIR"); cluster goes to $fallback ($(rel "$PG_LINK") links to it)"
      home=$fallback
      mkdir -p "$home"
      ln -sfn "$home" "$PG_LINK"
    fi
    pg_set_paths "$home"
  fi
  mkdir -p "$PG_HOME"
  chown "$PG_USER": "$PG_HOME"
  chmod 0700 "$PG_HOME"
  pg_user_can_reach "$PG_HOME" ||
    die "PostgreSQL user $PG_USER cannot enter $PG_HOME (a directory above it is closed to it?); run '$STACK_PROG reset --profile $PROFILE'"
  # The server log: logs/postgres.log, unless PG_USER cannot write there.
  if [[ $PG_HOME == "$PG_LINK" ]]; then
    PG_LOG_REAL=$PG_LOG
    [[ -L $PG_LOG ]] && rm -f "$PG_LOG"
  else
    PG_LOG_REAL=$PG_HOME/postgres.log
    ln -sfn "$PG_LOG_REAL" "$PG_LOG"
  fi
  if [[ -f $PG_LOG_REAL ]] && (($(stat -c %s -- "$PG_LOG_REAL") > 10485760)); then
    mv -f "$PG_LOG_REAL" "$PG_LOG_REAL.1"
  fi
  touch "$PG_LOG_REAL"
  chown "$PG_USER": "$PG_LOG_REAL"
  chmod 0640 "$PG_LOG_REAL"
  mkdir -p "$PG_SOCK_DIR"
  chown "$PG_USER": "$PG_SOCK_DIR"
  chmod 0700 "$PG_SOCK_DIR"
}

# Settings regenerated at every start (ports may be overridden), included
# from postgresql.conf.
write_pg_conf() {
  local conf=$PGDATA_DIR/incident_stack.conf
  {
    printf '# Generated by deploy/scripts/stack.sh (profile %s) at every start.\n' "$PROFILE"
    printf "listen_addresses = '127.0.0.1'\n"
    printf 'port = %s\n' "$PG_PORT"
    printf "unix_socket_directories = '%s'\n" "${PG_SOCK_DIR//\'/\'\'}"
    printf 'max_connections = 200\n'
    if [[ $PROFILE == test ]]; then
      # Throw-away data: no fsync. A clean stop still checkpoints everything.
      printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'
    fi
  } >"$conf.tmp"
  chown "$PG_USER": "$conf.tmp"
  chmod 0600 "$conf.tmp"
  mv -f "$conf.tmp" "$conf"
}

pg_init_cluster() {
  local bindir=$1
  [[ -f $PGDATA_DIR/PG_VERSION ]] && return 0
  # No PG_VERSION: never a usable cluster (an interrupted initdb); start over.
  rm -rf "$PGDATA_DIR"
  say "postgres: initialising a cluster in $PGDATA_DIR (user $PG_USER)"
  run_as "$PG_USER" "$bindir/initdb" -D "$PGDATA_DIR" -U "$PG_ROLE" --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$PG_HOME/initdb.log" 2>&1 ||
    die_with_log "$PG_HOME/initdb.log" "initdb failed (user $PG_USER, data $PGDATA_DIR)"
  printf "\n# deploy/scripts/stack.sh\ninclude_if_exists = 'incident_stack.conf'\n" >>"$PGDATA_DIR/postgresql.conf"
}

# pg_pid: PID of this profile's postmaster, from run/postgres.pid or the
# cluster's own postmaster.pid, checked to be a live postgres whose -D is this
# profile's data directory (guards against a recycled PID).
pg_pid() {
  local home pid data i
  home=$(pg_home_existing) || return 1
  data=$(readlink -f -- "$home/data" 2>/dev/null) || return 1
  for pid in "$(cat -- "$PG_PIDFILE" 2>/dev/null || true)" \
    "$(head -n 1 -- "$data/postmaster.pid" 2>/dev/null || true)"; do
    pid_alive "$pid" || continue
    proc_args "$pid" || continue
    [[ ${PROC_ARGS[0]##*/} == postgres ]] || continue
    for ((i = 1; i < ${#PROC_ARGS[@]} - 1; i++)); do
      if [[ ${PROC_ARGS[i]} == -D && $(readlink -f -- "${PROC_ARGS[i + 1]}" 2>/dev/null) == "$data" ]]; then
        printf '%s\n' "$pid"
        return 0
      fi
    done
  done
  return 1
}

# Called when no postmaster of ours runs: if postmaster.pid names a PID that
# still exists (the dead postmaster as a zombie not yet reaped, or a recycled
# PID), PostgreSQL would refuse to start ("lock file already exists").
# Give a zombie and any orphaned backends some seconds to go, then set the
# stale lock file aside.
pg_clear_stale_lock() {
  local f=$PGDATA_DIR/postmaster.pid pid deadline
  [[ -f $f ]] || return 0
  pid=$(head -n 1 -- "$f" 2>/dev/null || true)
  [[ $pid =~ ^[1-9][0-9]*$ && -d /proc/$pid ]] || return 0
  deadline=$((SECONDS + 15))
  while [[ -d /proc/$pid ]] && pid_zombie "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if [[ -d /proc/$pid ]]; then
    warn "postgres: $f names pid $pid, which is not a running postmaster; setting it aside"
    mv -f -- "$f" "$f.stale"
  fi
}

pg_ready() {
  local bindir=$1
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d postgres -t 2 >/dev/null 2>&1
}

start_postgres() {
  local bindir pid deadline exists out
  ensure_pg_installed
  pg_prepare_home
  bindir=$(pg_bindir "$PGDATA_DIR")
  if pid=$(pg_pid); then
    deadline=$((SECONDS + PG_START_TIMEOUT))
    until pg_ready "$bindir"; do
      ((SECONDS < deadline)) || die_with_log "$PG_LOG" "PostgreSQL (pid $pid) runs but does not accept connections on 127.0.0.1:$PG_PORT"
      sleep 0.3
    done
    printf '%s\n' "$pid" >"$PG_PIDFILE"
    say "postgres: already running (pid $pid)"
    PG_STARTED=0
  else
    rm -f "$PG_PIDFILE"
    if port_open "$PG_PORT"; then
      die "port $PG_PORT is already in use by another process; cannot start PostgreSQL for profile $PROFILE (override with PG_PORT)"
    fi
    pg_init_cluster "$bindir"
    pg_clear_stale_lock
    write_pg_conf
    ROLLBACK_PG=1 # from here on, a failure stops this cluster again
    if ! out=$(run_as "$PG_USER" "$bindir/pg_ctl" start -D "$PGDATA_DIR" -l "$PG_LOG_REAL" -w \
      -t "$PG_START_TIMEOUT" -s 2>&1 </dev/null); then
      printf '%s\n' "$out" >&2
      die_with_log "$PG_LOG_REAL" "PostgreSQL did not start (pg_ctl start, user $PG_USER, data $PGDATA_DIR)"
    fi
    deadline=$((SECONDS + PG_START_TIMEOUT))
    until pg_ready "$bindir"; do
      ((SECONDS < deadline)) || die_with_log "$PG_LOG_REAL" "PostgreSQL not ready on 127.0.0.1:$PG_PORT after ${PG_START_TIMEOUT}s"
      sleep 0.2
    done
    pid=$(head -n 1 -- "$PGDATA_DIR/postmaster.pid")
    printf '%s\n' "$pid" >"$PG_PIDFILE"
    PG_STARTED=1
    ROLLBACK_PG=1
  fi
  PG_RUNNING_PID=$pid
  PG_VERSION_MAJOR=$(<"$PGDATA_DIR/PG_VERSION")
  exists=$("$bindir/psql" -X -q -A -t -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d postgres \
    -c "select 1 from pg_database where datname = '$PG_DB'" 2>&1) ||
    die "cannot query PostgreSQL on 127.0.0.1:$PG_PORT: $exists"
  if [[ $exists != 1 ]]; then
    out=$("$bindir/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -O "$PG_ROLE" "$PG_DB" 2>&1) ||
      die "createdb $PG_DB failed: $out"
  fi
}

stop_postgres() {
  local home pid owner bindir out
  if ! home=$(pg_home_existing) || [[ ! -d $home/data ]]; then
    rm -f "$PG_PIDFILE"
    say "postgres: not running (no cluster)"
    return 0
  fi
  if ! pid=$(pg_pid); then
    rm -f "$PG_PIDFILE"
    say "postgres: not running"
    return 0
  fi
  owner=$(stat -c %U -- "$home/data")
  bindir=$(pg_bindir "$home/data") || bindir=""
  if [[ -n $bindir ]] && out=$(run_as "$owner" "$bindir/pg_ctl" stop -D "$home/data" -m fast -w -t 60 -s 2>&1); then
    :
  else
    warn "pg_ctl stop failed (${out:-no pg_ctl}); signalling the postmaster (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true # fast shutdown
    if ! wait_pid_exit "$pid" 30; then
      kill -QUIT "$pid" 2>/dev/null || true # immediate shutdown
      wait_pid_exit "$pid" 10 || { kill -KILL "$pid" 2>/dev/null || true; }
    fi
  fi
  wait_pid_exit "$pid" 10 || die "PostgreSQL (pid $pid) is still running"
  rm -f "$PG_PIDFILE"
  say "postgres: stopped (pid $pid)"
}

# ================================================================ commands

env_lines() {
  printf 'export KAFKA_BOOTSTRAP=%s\nexport DATABASE_URL=%s\n' "$KAFKA_BOOTSTRAP_ADDR" "$DATABASE_URL_VALUE"
  if ((KAFKA_NODES > 1)); then
    printf 'export TOPIC_REPLICATION=%s\nexport TOPIC_MIN_INSYNC_REPLICAS=%s\n' "$KAFKA_REPLICAS" "$KAFKA_MIN_ISR"
  fi
}

write_env_file() {
  {
    printf '# Written by deploy/scripts/stack.sh start --profile %s\n' "$PROFILE"
    env_lines
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# If `start` fails, it stops again what this invocation started (what was
# already running is left alone), so a failed start leaves nothing behind.
ROLLBACK_KAFKA_PIDS=() # node:pid of each broker this start launched
ROLLBACK_PG=0
start_rollback() {
  local rc=$? pid entry
  trap - EXIT
  if ((rc != 0)); then
    for entry in "${ROLLBACK_KAFKA_PIDS[@]}"; do
      select_node "${entry%%:*}"
      pid=${entry#*:}
      if kafka_pid_is_ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_pid_exit "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
        rm -f "$KAFKA_PIDFILE"
        printf '%s: stopped the Kafka broker this start launched (%s, pid %s)\n' "$STACK_PROG" "$KAFKA_NAME" "$pid" >&2
      fi
    done
    if ((ROLLBACK_PG)); then
      stop_postgres >&2 || true
    fi
  fi
  exit "$rc"
}

cmd_start() {
  local n kafka_started=0 t0=$SECONDS
  local -a kpids=() launched=()
  take_lock
  mkdir -p "$STATE_DIR" "$LOG_DIR" "$RUN_DIR"
  trap start_rollback EXIT

  # 1. Kafka: every node not running is launched now, awaited after PostgreSQL is up
  #    (a cluster's nodes together: none is ready before a majority of its quorum runs).
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    select_node "$n"
    if kpids[n]=$(kafka_pid); then
      launched[n]=0
    else
      ensure_kafka_jars
      launch_kafka
      kpids[n]=$KAFKA_NEW_PID
      launched[n]=1
      ROLLBACK_KAFKA_PIDS+=("$n:$KAFKA_NEW_PID")
      kafka_started=1
    fi
  done
  # 2. PostgreSQL.
  start_postgres
  # 1b. Kafka readiness.
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    select_node "$n"
    wait_kafka_ready "${kpids[n]}"
  done
  ROLLBACK_KAFKA_PIDS=()
  ROLLBACK_PG=0
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    select_node "$n"
    ((launched[n])) || say "$KAFKA_NAME: already running (pid ${kpids[n]})"
  done

  # 3. Environment and summary.
  if ((kafka_started || PG_STARTED)) || [[ ! -f $ENV_FILE ]]; then write_env_file; fi
  if ((kafka_started || PG_STARTED)); then
    say "stack '$PROFILE' up in $((SECONDS - t0))s:"
  else
    say "stack '$PROFILE' already running:"
  fi
  if ((KAFKA_NODES == 1)); then
    say "  KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP_ADDR  (Kafka $KAFKA_VERSION, pid ${kpids[1]}, log $(rel "$KAFKA_LOG"))"
  else
    say "  KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP_ADDR  (Kafka $KAFKA_VERSION, quorum $KAFKA_VOTERS)"
    for ((n = 1; n <= KAFKA_NODES; n++)); do
      select_node "$n"
      say "    $KAFKA_NAME  127.0.0.1:$KAFKA_PORT  pid ${kpids[n]}  log $(rel "$KAFKA_LOG")"
    done
    say "  TOPIC_REPLICATION=$KAFKA_REPLICAS  TOPIC_MIN_INSYNC_REPLICAS=$KAFKA_MIN_ISR"
  fi
  say "  DATABASE_URL=$DATABASE_URL_VALUE  (PostgreSQL $PG_VERSION_MAJOR, pid $PG_RUNNING_PID, log $(rel "$PG_LOG"))"
  say "  environment: $(rel "$ENV_FILE")  (eval \"\$($(rel "$SCRIPT_DIR")/$STACK_PROG env --profile $PROFILE)\")"
}

cmd_stop() {
  take_lock
  stop_kafka_nodes
  stop_postgres
}

cmd_status() {
  local pid rc=0 home n label
  say "profile $PROFILE (state $(rel "$STATE_DIR"))"
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    select_node "$n"
    label=$(printf '%-9s' "$KAFKA_NAME")
    if pid=$(kafka_pid); then
      if kafka_ready; then
        say "$label running  pid $pid  127.0.0.1:$KAFKA_PORT"
      else
        say "$label starting pid $pid  (not ready yet)"
        rc=3
      fi
    else
      say "$label stopped"
      rc=3
    fi
  done
  if pid=$(pg_pid); then
    home=$(pg_home_existing)
    if [[ -n $home ]] && "$(pg_bindir "$home/data")/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_ROLE" -d postgres -t 2 >/dev/null 2>&1; then
      say "postgres  running  pid $pid  127.0.0.1:$PG_PORT"
    else
      say "postgres  running  pid $pid  (not accepting connections on 127.0.0.1:$PG_PORT)"
      rc=3
    fi
  else
    say "postgres  stopped"
    rc=3
  fi
  return "$rc"
}

cmd_env() {
  if [[ -f $ENV_FILE ]]; then
    grep '^export ' "$ENV_FILE"
  else
    env_lines
  fi
}

cmd_reset() {
  local home n
  cmd_stop
  if [[ -L $PG_LINK ]]; then
    home=$(readlink -- "$PG_LINK")
    case $home in
      "$PG_FALLBACK_PREFIX"*) rm -rf -- "$home" ;;
      *) warn "not deleting $home ($(rel "$PG_LINK") points there, outside $PG_FALLBACK_PREFIX*)" ;;
    esac
    rm -f -- "$PG_LINK"
  else
    rm -rf -- "$PG_LINK"
  fi
  for ((n = 1; n <= KAFKA_NODES; n++)); do
    select_node "$n"
    rm -rf -- "$KAFKA_DATA"
    rm -f -- "$KAFKA_PROPS" "$KAFKA_LOG4J1" "$KAFKA_LOG" "$KAFKA_LOG.1" "$KAFKA_PIDFILE"
  done
  rm -f -- "$KAFKA_CLUSTER_ID_FILE" "$ENV_FILE" "$PG_LOG" "$PG_LOG.1" "$PG_PIDFILE"
  say "profile $PROFILE reset: data deleted (broker jars kept in $(rel "$KAFKA_LIB"))"
}

case $COMMAND in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status || exit 3 ;;
  env) cmd_env ;;
  reset) cmd_reset ;;
  *) die "unknown command '$COMMAND' (start, stop, status, env or reset)" ;;
esac
