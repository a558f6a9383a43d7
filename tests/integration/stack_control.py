"""Stop and start the test profile's broker or database mid-test, by PID, as an outage would.

``make test`` (deploy/scripts/test.sh) started both with ``stack.sh start --profile test``
and exported their ports; starting again runs the same command, which starts only the
part that is not running. ``make test-cluster`` does the same with ``--profile cluster``
(three brokers, kafka-1..3). Fault tests use this; nothing else should.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

from harness import REPO, TEST_PROFILE, TEST_STATE, wait_until

RUN_DIR = TEST_STATE / "run"


def _pid(name: str) -> int:
    return int((RUN_DIR / f"{name}.pid").read_text().split()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(name: str, sig: int, timeout: float) -> float:
    """Signal the process and wait for it to exit; returns when it stopped (time.monotonic())."""
    pid = _pid(name)
    os.kill(pid, sig)
    wait_until(lambda: not _alive(pid), timeout=timeout, interval=0.2, what=f"{name} (pid {pid}) to exit")
    return time.monotonic()


def stop_broker(timeout: float = 60.0) -> float:
    """SIGTERM the Kafka broker (a clean shutdown) and wait until it has exited."""
    return _stop("kafka", signal.SIGTERM, timeout)


def stop_cluster_broker(node: int, timeout: float = 60.0) -> float:
    """SIGTERM broker ``node`` (1..3) of the cluster profile and wait until it has exited."""
    return _stop(f"kafka-{node}", signal.SIGTERM, timeout)


def stop_postgres(timeout: float = 60.0) -> float:
    """SIGINT the postmaster: PostgreSQL's fast shutdown (clients are disconnected)."""
    return _stop("postgres", signal.SIGINT, timeout)


def start_stack(timeout: float = 180.0) -> float:
    """Start whatever of the test stack is not running and wait until it is ready."""
    subprocess.run(["bash", str(REPO / "deploy" / "scripts" / "stack.sh"), "start", "--profile", TEST_PROFILE],
                   cwd=REPO, check=True, timeout=timeout, capture_output=True)
    return time.monotonic()
