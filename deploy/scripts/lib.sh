# shellcheck shell=bash
# Helpers for deploy/scripts/stack.sh (sourced, not executed).
# Generic: output, process and port checks, running commands as another user,
# installing Debian packages. Nothing here knows about profiles or paths.

STACK_PROG=${STACK_PROG:-stack.sh}

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$STACK_PROG" "$*" >&2; }
die() {
  printf '%s: error: %s\n' "$STACK_PROG" "$*" >&2
  exit 1
}

# show_log_tail FILE [LINES]: the end of a log on stderr.
show_log_tail() {
  local file=$1 lines=${2:-${LOG_TAIL_LINES:-40}}
  if [[ -r $file ]]; then
    printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
    tail -n "$lines" -- "$file" >&2 || true
    printf -- '----- end of %s -----\n' "$file" >&2
  else
    printf '(no log at %s)\n' "$file" >&2
  fi
}

# die_with_log FILE MESSAGE...: error message, then the log's tail, exit 1.
die_with_log() {
  local file=$1
  shift
  printf '%s: error: %s\n' "$STACK_PROG" "$*" >&2
  show_log_tail "$file"
  exit 1
}

# pid_alive PID: the process exists and is not a zombie.
pid_alive() {
  local pid=${1:-} stat
  [[ $pid =~ ^[1-9][0-9]*$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || [[ -d /proc/$pid ]] || return 1
  if { stat=$(<"/proc/$pid/stat"); } 2>/dev/null; then
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]] || return 1
  fi
  return 0
}

# pid_zombie PID: the process exists but is a zombie (exited, not yet reaped;
# an init that reaps lazily, as in some containers, leaves them for seconds).
pid_zombie() {
  local stat
  { stat=$(<"/proc/$1/stat"); } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat%% *} == Z ]]
}

# wait_pid_exit PID SECONDS: 0 once PID is gone, 1 on timeout.
wait_pid_exit() {
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_alive "$pid"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
  return 0
}

# proc_args PID: fills the global array PROC_ARGS with the argv of PID.
proc_args() {
  PROC_ARGS=()
  [[ -r /proc/$1/cmdline ]] || return 1
  { mapfile -d '' -t PROC_ARGS <"/proc/$1/cmdline"; } 2>/dev/null || return 1
  ((${#PROC_ARGS[@]} > 0))
}

# port_open PORT [HOST]: something accepts TCP connections there.
port_open() {
  local port=$1 host=${2:-127.0.0.1}
  # shellcheck disable=SC2016 # expanded by the inner shell
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
}

# short_hash STRING: 10 hex digits identifying STRING.
short_hash() { printf '%s' "$1" | sha256sum | cut -c1-10; }

# run_as USER CMD...: CMD as USER (directly when USER is the current user),
# from / so that an unreadable current directory cannot bother it, and with
# fd 9 (stack.sh's lock) closed so that no daemon keeps the lock.
run_as() {
  local user=$1
  shift
  if [[ $user == "$(id -un)" ]]; then
    (cd / && exec "$@") 9>&-
  else
    (cd / && exec runuser -u "$user" -- "$@") 9>&-
  fi
}

# apt_install LOGFILE PACKAGE...: non-interactive apt-get install (root only).
# Starting services is forbidden meanwhile through policy-rc.d, so that the
# Debian postgresql package does not start a system cluster.
apt_install() {
  local logfile=$1 rc=0 policy=/usr/sbin/policy-rc.d own_policy=0
  shift
  ((EUID == 0)) || die "missing $*; install it (apt-get install $*) or run as root"
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
  say "installing $* with apt-get (log: $logfile)"
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
      { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
  } >"$logfile" 2>&1 || rc=$?
  ((own_policy == 0)) || rm -f "$policy"
  ((rc == 0)) || die_with_log "$logfile" "apt-get install $* failed"
}
