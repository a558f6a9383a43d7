"""/openapi.json is the API's real behaviour: a property-based test (schemathesis) holds it to that.

Every operation gets generated requests, valid and invalid, sent to the live
ingestion service with a credential of the right kind. No answer may be a 5xx,
and every answer must be documented: its status, content type, headers and body
schema.
"""
from __future__ import annotations

import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from harness import TEST_CONFIG
from integration_keys import create_key
from services.ingestion.app import create_app
from shared.config_loader import load_organisation
from shared.settings import Settings

INTAKE = ("/v1/alerts", "/v1/integrations/alertmanager")
INTAKE_PREFIXES = ("/v2/alerts", "/v2/heartbeats", "/v1/heartbeats")  # Opsgenie API and heartbeat pings
# Bounded so the whole run stays well under a minute on two shared cores.
EXAMPLES = 12


def _document() -> dict:
    # Built from the application object (nothing starts): the live service serves the same
    # document, which the first test checks. Loading it at collection time keeps one test per
    # operation in the report (schemathesis' lazy loader does not work with pytest 9).
    return create_app(Settings(), load_organisation(TEST_CONFIG)).openapi()


@pytest.fixture(scope="module")
def credentials(platform, tokens) -> dict[str, str]:
    # Generated alerts go to an integration of their own, with its own rate limit bucket.
    return {"intake": create_key("schemathesis"), "user": tokens["platform-admin"]}


@pytest.fixture(scope="module")
def target_incident(admin) -> str:
    """A real incident for generated commands (random ids would only ever meet a 404)."""
    title = f"schemathesis target {uuid.uuid4().hex[:8]}"
    declared = admin.post("/v1/incidents", json={"title": title, "service": "billing-worker", "severity": "SEV2"})
    assert declared.status_code == 201, declared.text
    return declared.json()["incident_id"]


schema = schemathesis.openapi.from_dict(_document())
# The test sends real credentials itself (below): a generated Authorization header, or a negative
# case that "removes" it, would be overridden by them and judged as if it had been sent.
schema.config.generation.update(with_security_parameters=False)


def test_openapi_document_is_served_and_names_the_credential(platform):
    spec = httpx.get(f"{platform.api_url}/openapi.json", timeout=10).json()
    assert spec == _document()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], f"{method} {path} documents a 422 it never sends"


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
def test_api_conforms_to_its_openapi_document(case, platform, credentials, target_incident):
    intake = case.path in INTAKE or case.path.startswith(INTAKE_PREFIXES)
    token = credentials["intake"] if intake else credentials["user"]
    if case.meta.generation.mode.is_positive and "incident_id" in (case.path_parameters or {}):
        case.path_parameters["incident_id"] = target_incident
    if case.path == "/v2/enqueue" and case.meta.generation.mode.is_positive and isinstance(case.body, dict):
        # A well-formed routing key that names no integration is refused (400, like PagerDuty);
        # a valid event is one sent with a real key.
        case.body["routing_key"] = credentials["intake"]
    case.call_and_validate(base_url=platform.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_pathological_json_is_a_400_everywhere(platform, credentials):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, token in (("/v1/alerts", "intake"), ("/v1/integrations/alertmanager", "intake"), ("/v2/enqueue", None),
                        ("/v1/incidents", "user"), ("/v1/tokens", "user")):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {credentials[token]}"
        answer = httpx.post(f"{platform.api_url}{path}", content=deep, headers=headers, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
