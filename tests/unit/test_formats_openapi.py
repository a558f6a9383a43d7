"""The OpenAPI document states what the API does (no broker needed to build it)."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.ingestion.app import create_app
from shared.config_loader import load_organisation
from shared.settings import Settings

CONFIG = Path(__file__).resolve().parents[1] / "integration" / "organisation.yaml"


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings(), load_organisation(CONFIG)).openapi()


def _operations(spec: dict):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_no_operation_documents_the_422_the_api_never_sends(spec):
    assert all("422" not in op["responses"] for _, _, op in _operations(spec))
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_credentials_and_their_failures_are_documented(spec):
    for method, path, op in _operations(spec):
        if path in ("/healthz", "/readyz", "/v2/enqueue"):
            assert "security" not in op, path
            continue
        if path.endswith(".ics"):  # calendar feeds: a feed token in the URL, no header
            assert op["security"] == [], path
            assert any(p["name"] == "token" and p["in"] == "query" and p["required"] for p in op["parameters"])
            assert {"401", "403", "404"} <= set(op["responses"]), f"{method} {path}"
            continue
        assert op["security"] == [{"bearer": []}], path
        # Failed authentication is slowed with 429 (503 for Alertmanager, which drops a group on a 429).
        slowed = "503" if path == "/v1/integrations/alertmanager" else "429"
        assert {"401", "403", slowed} <= set(op["responses"]), f"{method} {path}"


def test_incident_commands_document_404_409_and_their_answer(spec):
    acknowledge = spec["paths"]["/v1/incidents/{incident_id}/acknowledge"]["post"]
    assert {"400", "404", "409", "503"} <= set(acknowledge["responses"])
    ok = acknowledge["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/Incident"}


def test_hand_parsed_bodies_are_documented(spec):
    paths = spec["paths"]
    body = lambda path: paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]  # noqa: E731
    assert body("/v1/integrations/alertmanager") == {"$ref": "#/components/schemas/AlertmanagerPayload"}
    assert body("/v2/enqueue") == {"$ref": "#/components/schemas/PagerDutyEvent"}
    assert {"$ref": "#/components/schemas/NativeAlert"} in body("/v1/alerts")["oneOf"]


def test_pagerduty_answers_and_the_trigger_rule(spec):
    responses = spec["paths"]["/v2/enqueue"]["post"]["responses"]
    assert responses["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/PagerDutyAccepted")
    assert "Retry-After" in responses["429"]["headers"]
    trigger, follow_up = spec["components"]["schemas"]["PagerDutyEvent"]["oneOf"]
    assert "payload" in trigger["required"] and "dedup_key" in follow_up["required"]


def test_throttling_is_documented_as_each_sender_retries_it(spec):
    webhook = spec["paths"]["/v1/integrations/alertmanager"]["post"]["responses"]
    assert "429" not in webhook, "Alertmanager drops a group answered 429: the webhook throttles with 503"
    assert "Retry-After" in webhook["503"]["headers"]
    native = spec["paths"]["/v1/alerts"]["post"]["responses"]
    assert "Retry-After" in native["429"]["headers"]
