"""The intake edge in front of FastAPI, with a stub producer: what it answers, what it publishes,
and that everything but the intake POSTs still reaches the application."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import KafkaTimeoutError

from services.ingestion.app import create_server
from services.ingestion.runtime import Runtime
from shared.auth import Role, hash_secret
from shared.config_loader import load_organisation
from shared.db.tokens import Principal
from shared.domain.alerts import correlation_key, fingerprint
from shared.messages import NativeAlert
from shared.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "integration" / "organisation.yaml"
KEY = "k" * 32


class StubProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.failure: Exception | None = None

    async def send_encoded(self, topic: str, items: list[tuple[bytes, bytes]]) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent += items


@pytest.fixture
def edge():
    settings, org = Settings(), load_organisation(CONFIG)
    server = create_server(settings, org)
    runtime = Runtime(settings=settings, org=org, pool=None, producer=StubProducer(), recorded=None)
    runtime.tokens.put(hash_secret(KEY), Principal("tok_1", "am-throttled", Role.INTEGRATION))
    server.app.state.runtime = runtime
    return server, runtime


def _post(server, path: str, **kwargs) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            return await client.request(kwargs.pop("method", "POST"), path, **kwargs)

    return asyncio.run(go())


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_an_alert_with_its_own_dedup_key_is_published_stamped_and_keyed_by_that_key(edge):
    server, runtime = edge
    answer = _post(server, "/v1/alerts", headers=AUTH, json={"service": "billing-worker", "summary": "down",
                                                            "dedup_key": "billing-1"})
    assert answer.status_code == 202 and answer.json() == {"status": "accepted", "dedup_keys": ["billing-1"]}
    ((key, value),) = runtime.producer.sent
    alert = NativeAlert.model_validate_json(value)
    assert key == b"billing-1" and alert.integration == "am-throttled" and alert.source == "api"
    assert alert.received_at is not None and len(alert.alert_id) == 36


def test_a_labelled_alert_is_keyed_by_its_correlation_key_so_triage_folds_it_where_it_lands(edge):
    server, runtime = edge
    hosts = [{"service": "billing-worker", "summary": "down", "labels": {"alertname": "Down", "instance": f"h{i}"}}
             for i in range(3)]
    assert _post(server, "/v1/alerts", headers=AUTH, json=hosts).status_code == 202
    alerts = [NativeAlert.model_validate_json(value).to_alert("-", datetime.now(timezone.utc))
              for _, value in runtime.producer.sent]
    keys = {key for key, _ in runtime.producer.sent}
    # Three fingerprints (instance is a fingerprint label), one correlation key (group_by alertname).
    assert len({fingerprint(a, runtime.org) for a in alerts}) == 3
    assert keys == {correlation_key(alerts[0], runtime.org).encode()}


def test_errors_are_the_apis_json_and_nothing_refused_is_published(edge):
    server, runtime = edge
    assert _post(server, "/v1/alerts", json={"service": "x", "summary": "y"}).status_code == 401
    deep = b"[" * 100_000 + b"]" * 100_000
    refused = _post(server, "/v1/alerts", headers=AUTH, content=deep)
    assert refused.status_code == 400 and refused.json()["error"] == "the body is not valid JSON"
    too_large = _post(server, "/v1/alerts", headers=AUTH, content=b"[" + b" " * (5 * 1024 * 1024) + b"]")
    assert too_large.status_code == 413
    assert runtime.producer.sent == []


def test_an_alert_the_broker_does_not_acknowledge_is_503_with_retry_after(edge):
    server, runtime = edge
    runtime.producer.failure = KafkaTimeoutError()
    answer = _post(server, "/v1/alerts", headers=AUTH, json={"service": "billing-worker", "summary": "down"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"


def test_other_methods_and_paths_reach_fastapi(edge):
    server, _ = edge
    assert _post(server, "/v1/alerts", method="GET").status_code == 405
    assert _post(server, "/healthz", method="GET").json() == {"status": "ok"}
