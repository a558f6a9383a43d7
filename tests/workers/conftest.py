"""Fixtures for the several-workers tests (make test-workers): a platform started with a chosen
number of workers per shared service, on the broker and database deploy/scripts/test.sh started.

Not part of make test: collected only when INCIDENT_WORKERS_TESTS is set (test-workers.sh sets it).
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

collect_ignore_glob = [] if os.environ.get("INCIDENT_WORKERS_TESTS") else ["test_*.py"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class Cluster:
    """The platform with N workers of each shared service; ``run(n)`` stops the running one first."""

    def __init__(self) -> None:
        from harness import REPO, test_environment

        self.repo = REPO
        self.env = test_environment()
        self.logs = REPO / ".local" / "test" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs.parent / "run").mkdir(parents=True, exist_ok=True)
        Path(self.env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        os.environ["INCIDENT_CONFIG"] = self.env["INCIDENT_CONFIG"]
        self.platform = None
        self.workers = 0
        self.ready_seconds: dict[int, float] = {}

    def run(self, workers: int):
        from harness import Platform
        from services.workers import process_names

        if self.platform is not None and self.workers == workers:
            return self.platform
        self.stop()
        platform = Platform(env=self.env, logs=self.logs)
        subprocess.run([sys.executable, "-m", "services.topology"], cwd=self.repo, env=self.env, check=True, timeout=120)
        started = time.monotonic()
        self.platform, self.workers = platform, workers
        for name, _, _ in process_names(workers):
            platform.start(name)
        platform.wait_ready(timeout=300)
        self.ready_seconds[workers] = round(time.monotonic() - started, 1)
        print(f"\nWORKERS {workers}: {len(platform.procs)} processes ready in {self.ready_seconds[workers]}s", flush=True)
        return platform

    def stop(self) -> None:
        if self.platform is not None:
            self.platform.stop_all()
        self.platform, self.workers = None, 0


@pytest.fixture(scope="session")
def cluster():
    signal.signal(signal.SIGTERM, _interrupt)
    running = Cluster()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def tokens(cluster) -> dict[str, str]:
    from harness import remember_secret
    import asyncpg
    from shared.auth import Role
    from shared.db.migrate import migrate
    from shared.db.tokens import create_token

    async def make() -> dict[str, str]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            await migrate(conn)
            made = {}
            for role in Role:
                _, secret = await create_token(conn, role, f"workers-{role.value}")
                made[role.value] = remember_secret(secret)
            return made
        finally:
            await conn.close()

    return asyncio.run(make())
