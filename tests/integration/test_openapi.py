"""/openapi.json is the API's real behaviour: a property-based test (schemathesis) holds it to that.

Every operation gets generated requests, valid and invalid, sent to the live
ingestion service with a credential of the right kind. No answer may be a 5xx,
and every answer must be documented: its status, content type, headers and body
schema.

Volume: OPENAPI_INTAKE_EXAMPLES per alert-intake operation and OPENAPI_EXAMPLES per other
operation. The defaults are what fits make test on two shared cores; the full volume
(2,000 and 500) is its own run, see README "Guarantees". Generating the requests, not
answering them, is what takes the time (a native alert list costs tens of milliseconds of
Hypothesis per request), so the figures printed at the end say requests sent per operation,
answers by status class and the wall time.
"""
from __future__ import annotations

import os
import time
import uuid
from collections import Counter

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from harness import TEST_CONFIG
from integration_keys import create_key
from services.ingestion.app import create_app
from shared.config_loader import load_organisation
from shared.settings import Settings

INTAKE = ("/v1/alerts", "/v1/integrations/alertmanager")
INTAKE_PREFIXES = ("/v2/alerts", "/v2/heartbeats", "/v1/heartbeats")  # Opsgenie API and heartbeat pings
# The operations that take alerts in: the volume is highest where monitoring systems send.
ALERT_INTAKE = ("POST /v1/alerts", "POST /v1/integrations/alertmanager", "POST /v2/enqueue", "POST /v2/alerts")
# Hypothesis examples per operation; schemathesis sends at least one request for each (for
# the alert intake about 2.5: valid and invalid bodies, the schema's own examples).
INTAKE_EXAMPLES = int(os.environ.get("OPENAPI_INTAKE_EXAMPLES", "40"))
EXAMPLES = int(os.environ.get("OPENAPI_EXAMPLES", "12"))
SENT: Counter = Counter()  # operation -> requests sent
ANSWERS: Counter = Counter()  # status class ("2xx", "4xx", ...) -> answers


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


@pytest.fixture(scope="module")
def session():
    """One connection pool for the whole run (a new one per request costs a handshake and setup)."""
    with requests.Session() as pooled:
        yield pooled


@pytest.fixture(scope="module", autouse=True)
def volume_figures():
    started = time.monotonic()
    yield
    if SENT:
        took = time.monotonic() - started
        intake = {op: n for op, n in SENT.items() if op in ALERT_INTAKE}
        other = {op: n for op, n in SENT.items() if op not in ALERT_INTAKE}
        print(f"\nOPENAPI volume: operations={len(SENT)} requests={sum(SENT.values())} "
              f"(alert intake {sorted(intake.values())}, others min {min(other.values(), default=0)} "
              f"max {max(other.values(), default=0)}) answers {dict(sorted(ANSWERS.items()))} "
              f"in {took:.0f}s ({sum(SENT.values()) / took:.1f} requests/s); "
              f"asked {INTAKE_EXAMPLES} per alert intake, {EXAMPLES} per other operation")
        for op, n in sorted(SENT.items()):
            print(f"OPENAPI sent {n:5d}  {op}")


def test_openapi_document_is_served_and_names_the_credential(platform):
    spec = httpx.get(f"{platform.api_url}/openapi.json", timeout=10).json()
    assert spec == _document()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], f"{method} {path} documents a 422 it never sends"


def _generated(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


@schema.include(name=list(ALERT_INTAKE)).parametrize()
@_generated(INTAKE_EXAMPLES)
def test_alert_intake_conforms_to_its_openapi_document(case, platform, credentials, target_incident, session):
    _call_and_validate(case, platform, credentials, target_incident, session)


@schema.exclude(name=list(ALERT_INTAKE)).parametrize()
@_generated(EXAMPLES)
def test_api_conforms_to_its_openapi_document(case, platform, credentials, target_incident, session):
    _call_and_validate(case, platform, credentials, target_incident, session)


def _call_and_validate(case, platform, credentials, target_incident, session) -> None:
    intake = case.path in INTAKE or case.path.startswith(INTAKE_PREFIXES)
    token = credentials["intake"] if intake else credentials["user"]
    if case.meta.generation.mode.is_positive and "incident_id" in (case.path_parameters or {}):
        case.path_parameters["incident_id"] = target_incident
    if case.path == "/v2/enqueue" and case.meta.generation.mode.is_positive and isinstance(case.body, dict):
        # A well-formed routing key that names no integration is refused (400, like PagerDuty);
        # a valid event is one sent with a real key.
        case.body["routing_key"] = credentials["intake"]
    if case.path == "/v1/maintenance" and case.meta.generation.mode.is_positive and isinstance(case.body, dict):
        # JSON Schema cannot say that a string is a valid regular expression: a generated
        # pattern is sent as a literal, and an invalid pattern's 400 is tested on its own.
        for matcher in case.body.get("matchers") or []:
            if isinstance(matcher, dict) and matcher.get("regex"):
                matcher["regex"] = False
    # By the operation generated for: its requests include other methods on its path (a 405 check).
    SENT[case.operation.label] += 1
    response = case.call_and_validate(base_url=platform.api_url, session=session,
                                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
    ANSWERS[f"{response.status_code // 100}xx"] += 1


def test_pathological_json_is_a_400_everywhere(platform, credentials):
    deep = b"[" * 100_000 + b"]" * 100_000
    for path, token in (("/v1/alerts", "intake"), ("/v1/integrations/alertmanager", "intake"), ("/v2/enqueue", None),
                        ("/v1/incidents", "user"), ("/v1/tokens", "user")):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {credentials[token]}"
        answer = httpx.post(f"{platform.api_url}{path}", content=deep, headers=headers, timeout=30)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
