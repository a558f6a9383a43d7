"""What the API answers while PostgreSQL is away: 503 with Retry-After on reads, 202 for intake
(cached credentials) and for commands (they go through the broker), never a 500."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.ingestion.app import create_server
from services.ingestion.runtime import Runtime
from services.ingestion.security import FRESH_SECONDS
from shared.auth import Role, hash_secret
from shared.config_loader import load_organisation
from shared.db.tokens import Principal
from shared.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "integration" / "organisation.yaml"
KEY, ADMIN, SECURITY = "k" * 32, "a" * 40, "s" * 40
INCIDENT = "INC-2026-03-02-001"

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
]


class _Refusing:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    async def __aenter__(self):
        raise self.failure

    async def __aexit__(self, *exc) -> None:
        return None


class DownPool:
    """A pool whose every connection attempt fails as ``failure``."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def acquire(self, timeout: float | None = None) -> _Refusing:
        return _Refusing(self.failure)


class StubProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, object]] = []
        self.encoded: list[tuple[bytes, bytes]] = []

    async def send(self, topic: str, key: str, message, partition: int | None = None) -> None:
        self.sent.append((topic, key, message))

    async def send_encoded(self, topic: str, items: list[tuple[bytes, bytes]]) -> None:
        self.encoded += items


def _server(failure: Exception):
    settings, org = Settings(), load_organisation(CONFIG)
    server = create_server(settings, org)
    runtime = Runtime(settings=settings, org=org, pool=DownPool(failure), producer=StubProducer(), recorded=None)
    # Checked longer ago than FRESH_SECONDS: the cache would ask PostgreSQL again, finds it away,
    # and keeps what it knew (STALE_SECONDS).
    stale = time.monotonic() - FRESH_SECONDS - 5
    runtime.tokens.entries[hash_secret(KEY)] = (stale, Principal("tok_k", "alertmanager", Role.INTEGRATION))
    runtime.tokens.entries[hash_secret(ADMIN)] = (stale, Principal("tok_a", "ada", Role.PLATFORM_ADMIN))
    runtime.tokens.entries[hash_secret(SECURITY)] = (stale, Principal("tok_s", "sec", Role.SECURITY_ADMIN))
    server.app.state.runtime = runtime
    return server, runtime


def _call(server, method: str, path: str, token: str, **kwargs) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return asyncio.run(go())


READS = ["/v1/incidents", "/v1/incidents?status=triggered&severity=SEV1", f"/v1/incidents/{INCIDENT}",
         f"/v1/incidents/{INCIDENT}/postmortem", f"/v1/incidents/{INCIDENT}/export", "/v1/oncall", "/v1/maintenance",
         "/v1/tokens"]


@pytest.mark.parametrize("failure", OUTAGES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("path", READS)
def test_a_read_answers_503_with_retry_after_and_says_the_database_is_unavailable(failure, path):
    server, _ = _server(failure)
    answer = _call(server, "GET", path, ADMIN)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert "database is unavailable" in answer.json()["error"]


@pytest.mark.parametrize("failure", OUTAGES, ids=lambda e: type(e).__name__)
def test_alerts_are_accepted_with_a_credential_known_before_the_outage(failure):
    server, runtime = _server(failure)
    answer = _call(server, "POST", "/v1/alerts", KEY, json={"service": "connector:CRM", "summary": "down"})
    assert answer.status_code == 202, answer.text
    assert len(runtime.producer.encoded) == 1


def test_an_unknown_credential_cannot_be_checked_and_answers_503():
    server, runtime = _server(OUTAGES[1])
    answer = _call(server, "POST", "/v1/alerts", "u" * 32, json={"service": "connector:CRM", "summary": "down"})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert "database is unavailable" in answer.json()["error"] and not runtime.producer.encoded


@pytest.mark.parametrize("token, unchecked", [(ADMIN, True), (SECURITY, False)])
def test_a_command_goes_to_the_broker_and_answers_202_with_its_id(token, unchecked):
    server, runtime = _server(OUTAGES[0])
    answer = _call(server, "POST", f"/v1/incidents/{INCIDENT}/acknowledge", token, json={})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    [(topic, key, envelope)] = runtime.producer.sent
    assert (topic, key) == ("incident.commands", INCIDENT)
    assert body["command_id"] == envelope.command_id and body["applied"] is False
    # Visibility was not checked: triage refuses a restricted incident to an actor who may not see one.
    assert envelope.unrestricted_only is unchecked


def test_a_database_error_that_is_not_an_outage_stays_a_500():
    server, _ = _server(asyncpg.exceptions.UndefinedTableError('relation "incidents" does not exist'))
    answer = _call(server, "GET", "/v1/incidents", ADMIN)
    assert answer.status_code == 500


def test_the_openapi_document_names_the_outage_answers():
    server, _ = _server(OUTAGES[0])
    document = json.loads(_call(server, "GET", "/openapi.json", ADMIN).text)
    acknowledge = document["paths"]["/v1/incidents/{incident_id}/acknowledge"]["post"]["responses"]
    assert "202" in acknowledge and "503" in acknowledge
    assert "503" in document["paths"]["/v1/incidents"]["get"]["responses"]
