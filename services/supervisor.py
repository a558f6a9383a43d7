"""Keep one service running: restart it when it crashes or exits unhealthy.

    python -m services.supervisor SERVICE [--worker K] [--child-pidfile PATH]

make up, make run and the test harness start every service through this, so a stall
that the service's liveness watchdog turns into an exit (shared/kafka/liveness.py),
a crash or a SIGKILL is followed by a fresh start, as a container orchestrator would
do. Not restarted: a clean exit (0), and a configuration error (78), which names
the field and would only fail again. SIGTERM or SIGINT stops the service (SIGTERM,
then SIGKILL after a grace period) and then the supervisor. The child dies with the
supervisor even if the supervisor is killed outright (PR_SET_PDEATHSIG).
With ``--worker K`` (WORKERS>1) the child is worker K of its service: its ports and data
directory are its own (services/workers.py).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.workers import worker_env
from shared.kafka.liveness import CONFIG_ERROR

GRACE_SECONDS = 12.0
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 15.0
STABLE_SECONDS = 60.0  # a child that lived this long resets the back-off
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def describe(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return {75: "exit 75 (unhealthy)", CONFIG_ERROR: "exit 78 (configuration error)"}.get(code, f"exit {code}")


def restart_after(code: int) -> bool:
    """Whether a child that ended with ``code`` is started again."""
    return code not in (0, CONFIG_ERROR)


def next_backoff(current: float, lived: float) -> float:
    return FIRST_BACKOFF if lived >= STABLE_SECONDS else min(max(current * 2, FIRST_BACKOFF), MAX_BACKOFF)


class Supervisor:
    def __init__(self, service: str, child_pidfile: Path | None, worker: int = 0) -> None:
        self.service = service
        self.name = service if worker == 0 else f"{service}-{worker}"
        self.child_env = {**os.environ, **worker_env(service, worker, os.environ)} if worker else None
        self.child_pidfile = child_pidfile
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def say(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervisor {self.name}: {text}", flush=True)

    def on_signal(self, signum, _frame) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def start_child(self) -> None:
        self.child = subprocess.Popen([sys.executable, "-m", f"services.{self.service}"], env=self.child_env,
                                      preexec_fn=_die_with_parent)
        if self.child_pidfile is not None:
            self.child_pidfile.write_text(f"{self.child.pid}\n")

    def stop_child(self) -> int:
        assert self.child is not None
        try:
            return self.child.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.say(f"did not stop in {GRACE_SECONDS:.0f}s; SIGKILL")
            self.child.kill()
            return self.child.wait()

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        backoff = FIRST_BACKOFF
        while not self.stopping:
            started = time.monotonic()
            self.start_child()
            code = self.child.wait()
            if self.stopping:
                break
            lived = time.monotonic() - started
            if not restart_after(code):
                self.say(f"ended with {describe(code)}; not restarting")
                return code
            backoff = next_backoff(backoff, lived)
            self.say(f"ended with {describe(code)} after {lived:.1f}s; restarting in {backoff:.1f}s")
            deadline = time.monotonic() + backoff
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.05)  # the back-off itself, cut short by a stop request
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
        if self.child is not None:
            self.stop_child()
        if self.child_pidfile is not None:
            self.child_pidfile.unlink(missing_ok=True)
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=["ingestion", "recorder", "triage", "escalation", "notification", "metrics", "web"])
    parser.add_argument("--worker", type=int, default=0, help="which worker of the service (WORKERS>1); 0: the only one")
    parser.add_argument("--child-pidfile", type=Path)
    args = parser.parse_args()
    sys.exit(Supervisor(args.service, args.child_pidfile, args.worker).run())


if __name__ == "__main__":
    main()
