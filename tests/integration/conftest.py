"""Fixtures for the integration suite: the running platform, credentials, API clients."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from harness import REPO, SERVICES, TEST_PROFILE, TEST_STATE, Platform, remember_secret, test_environment
from shared.auth import Role
from shared.db.migrate import migrate
from shared.db.tokens import create_token

# The three-broker tests need the cluster profile: collected by make test-cluster only, neither
# run nor reported as skipped by make test.
collect_ignore = [] if TEST_PROFILE == "cluster" else ["test_cluster_failover.py"]


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: needs the three-broker cluster of make test-cluster (not collected by make test)")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def platform() -> Platform:
    env = test_environment()
    logs = TEST_STATE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    Path(env["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    (logs.parent / "run").mkdir(parents=True, exist_ok=True)
    # SIGTERM (a CI timeout, an impatient developer) still runs the teardown below.
    signal.signal(signal.SIGTERM, _interrupt)
    running = Platform(env=env, logs=logs)
    os.environ.update({k: env[k] for k in ("INCIDENT_CONFIG",)})
    # Every topic, Faust's own included, exists with a leader before any service starts.
    subprocess.run([sys.executable, "-m", "services.topology"], cwd=REPO, env=env, check=True, timeout=120)
    for name in SERVICES:
        running.start(name)
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="session")
def tokens(platform: Platform) -> dict[str, str]:
    """A token per role and an integration key, made the way `incidentctl token create` does."""

    async def make() -> dict[str, str]:
        conn = await asyncpg.connect(os.environ["DATABASE_URL"])
        try:
            await migrate(conn)
            made = {}
            for role in Role:
                _, secret = await create_token(conn, role, f"test-{role.value}")
                made[role.value] = remember_secret(secret)
            return made
        finally:
            await conn.close()

    return asyncio.run(make())


def _client(platform: Platform, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=platform.api_url, headers=headers, timeout=30)


@pytest.fixture(scope="session")
def intake(platform: Platform, tokens: dict[str, str]) -> httpx.Client:
    return _client(platform, tokens["integration"])


@pytest.fixture(scope="session")
def admin(platform: Platform, tokens: dict[str, str]) -> httpx.Client:
    return _client(platform, tokens["platform-admin"])


@pytest.fixture(scope="session")
def client_for(platform: Platform, tokens: dict[str, str]):
    return lambda role: _client(platform, tokens[role] if role else None)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
