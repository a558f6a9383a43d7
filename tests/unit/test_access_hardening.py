"""Access hardening: failed authentication slowed per client (429, Retry-After), unknown keys
kept out of PostgreSQL, expired tokens answered 401 naming the expiry."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from services.ingestion.app import create_server
from services.ingestion.runtime import Runtime
from shared.auth import Role, hash_secret
from shared.config_loader import load_organisation
from shared.db.tokens import Principal
from shared.domain.auth_failures import FailedAuthentications
from shared.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "integration" / "organisation.yaml"
KEY = "k" * 32
ALERT = {"service": "billing-worker", "summary": "down"}


def test_a_client_may_fail_a_burst_then_one_try_per_refill():
    failures = FailedAuthentications(burst=3, per_minute=6)  # one more try every 10 s
    for _ in range(3):
        assert failures.wait("10.0.0.1", 0.0) == 0.0
        failures.failed("10.0.0.1", 0.0)
    assert failures.wait("10.0.0.1", 0.0) == pytest.approx(10.0)
    assert failures.wait("10.0.0.2", 0.0) == 0.0  # another client is not slowed
    assert failures.wait("10.0.0.1", 4.0) == pytest.approx(6.0)
    assert failures.wait("10.0.0.1", 10.0) == 0.0
    failures.failed("10.0.0.1", 10.0)
    assert failures.wait("10.0.0.1", 10.0) == pytest.approx(10.0)
    assert failures.wait("10.0.0.1", 1000.0) == 0.0  # refilled, never beyond the burst
    for _ in range(3):
        failures.failed("10.0.0.1", 1000.0)
    assert failures.wait("10.0.0.1", 1000.0) > 0


def test_the_clients_remembered_are_bounded():
    failures = FailedAuthentications(burst=1, per_minute=1, max_clients=100)
    for i in range(1000):
        failures.failed(f"client-{i}", 0.0)
    assert len(failures.allowance) <= 100
    assert failures.wait("client-999", 0.0) > 0  # the latest are the ones kept


class CountingPool:
    """PostgreSQL as the credential check sees it: every secret unknown, each query counted."""

    def __init__(self) -> None:
        self.queries = 0

    @asynccontextmanager
    async def acquire(self, timeout=None):
        pool = self

        class Conn:
            async def fetchrow(self, query, *args):
                pool.queries += 1
                return None

        yield Conn()


class StubProducer:
    def __init__(self) -> None:
        self.sent: list = []

    async def send_encoded(self, topic, items) -> None:
        self.sent += items


@pytest.fixture
def edge():
    settings, org = Settings(), load_organisation(CONFIG)
    server = create_server(settings, org)
    runtime = Runtime(settings=settings, org=org, pool=CountingPool(), producer=StubProducer(), recorded=None)
    runtime.tokens.put(hash_secret(KEY), Principal("tok_1", "am-throttled", Role.INTEGRATION))
    server.app.state.runtime = runtime
    return server, runtime


def _send(server, requests: list[tuple[str, dict]], client=("203.0.113.7", 40000)) -> list[httpx.Response]:
    async def go():
        transport = httpx.ASGITransport(app=server, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
            return [await http.post(path, json=ALERT, headers=headers) for path, headers in requests]

    return asyncio.run(go())


def _bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_guessing_keys_is_slowed_with_429_and_never_a_query_per_guess(edge):
    server, runtime = edge
    burst = runtime.tokens.failures.burst
    answers = _send(server, [("/v1/alerts", _bearer(f"guess-{i:04d}")) for i in range(burst + 30)])
    assert [a.status_code for a in answers[:burst]] == [401] * burst
    slowed = answers[burst:]
    assert {a.status_code for a in slowed} == {429}
    assert int(slowed[0].headers["Retry-After"]) >= 1
    assert "too many failed authentications" in slowed[0].json()["error"]
    assert runtime.pool.queries == burst  # the slowed guesses never reached PostgreSQL
    # A known key from the same address still gets in; another address is not slowed.
    (good,) = _send(server, [("/v1/alerts", _bearer(KEY))])
    assert good.status_code == 202 and runtime.producer.sent
    (other,) = _send(server, [("/v1/alerts", _bearer("guess-other"))], client=("198.51.100.2", 1))
    assert other.status_code == 401
    # Alertmanager drops a group answered 429: its webhook says 503, with Retry-After, instead.
    (webhook,) = _send(server, [("/v1/integrations/alertmanager", _bearer("guess-am"))])
    assert webhook.status_code == 503 and webhook.headers["Retry-After"]


def test_an_unknown_key_sent_again_is_answered_from_memory(edge):
    server, runtime = edge
    answers = _send(server, [("/v1/alerts", _bearer("not-a-key"))] * 50)
    # One query; and the same wrong key again guesses nothing, so it is not what gets slowed.
    assert {a.status_code for a in answers} == {401}
    assert runtime.pool.queries == 1


def test_an_expired_token_answers_401_naming_its_expiry(edge):
    server, runtime = edge
    expired_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    runtime.tokens.put(hash_secret("old-key"), Principal("tok_2", "old", Role.INTEGRATION, expires_at=expired_at))
    future = datetime.now(timezone.utc) + timedelta(days=1)
    runtime.tokens.put(hash_secret("new-key"), Principal("tok_3", "new", Role.INTEGRATION, expires_at=future))
    (expired, valid) = _send(server, [("/v1/alerts", _bearer("old-key")), ("/v1/alerts", _bearer("new-key"))])
    assert expired.status_code == 401 and expired.headers["WWW-Authenticate"] == "Bearer"
    assert expired.json()["error"].startswith(f"credentials expired at {expired_at.isoformat()}")
    assert valid.status_code == 202


def test_a_revoked_token_is_forgotten_at_once_by_the_process_that_revoked_it(edge):
    _, runtime = edge
    runtime.tokens.forget("tok_1")
    assert runtime.tokens.get(hash_secret(KEY)) == (False, None)
