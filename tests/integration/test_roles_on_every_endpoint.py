"""Every endpoint of the OpenAPI document refuses a missing credential and a wrong role."""
from __future__ import annotations

import httpx

OPEN = {"/healthz", "/readyz", "/openapi.json", "/v2/enqueue", "/metrics"}
# Calendar feeds take a feed token in the URL instead (tests/integration/test_oncall.py checks them).
FEEDS = {"/v1/rotations/{name}.ics", "/v1/people/{person}.ics"}
INTAKE = {"/v1/alerts", "/v1/integrations/alertmanager"}
# Opsgenie-compatible paths and heartbeat pings take integration keys too (Opsgenie's answer
# says what was wrong in `message`, not `error`).
INTAKE_PREFIXES = ("/v2/alerts", "/v2/heartbeats", "/v1/heartbeats")


def _intake(path: str) -> bool:
    return path in INTAKE or path.startswith(INTAKE_PREFIXES)


def _operations(platform):
    spec = httpx.get(f"{platform.api_url}/openapi.json").json()
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                concrete = path.replace("{incident_id}", "INC-2026-01-01-001").replace("{item_id}", "AI-1")
                yield method, path, concrete


def test_no_credential_is_401_everywhere(platform):
    checked = 0
    for method, path, url in _operations(platform):
        if path in OPEN | FEEDS:
            continue
        response = httpx.request(method, f"{platform.api_url}{url}", json={}, timeout=10)
        assert response.status_code == 401, (method, path, response.status_code)
        body = response.json()
        assert body.get("error") or body.get("message"), (method, path, body)
        checked += 1
    assert checked >= 20


def test_an_integration_key_reaches_only_intake_and_a_user_token_never_intake(platform, tokens):
    key = {"Authorization": f"Bearer {tokens['integration']}"}
    user = {"Authorization": f"Bearer {tokens['compliance-officer']}"}
    for method, path, url in _operations(platform):
        if path in OPEN | FEEDS:
            continue
        if _intake(path):
            response = httpx.request(method, f"{platform.api_url}{url}", json={}, headers=user, timeout=10)
        else:
            response = httpx.request(method, f"{platform.api_url}{url}", json={}, headers=key, timeout=10)
        assert response.status_code == 403, (method, path, response.status_code, response.text)


def test_read_only_roles_cannot_change_incidents(platform, tokens, admin, unique):
    declared = admin.post("/v1/incidents", json={"title": f"roles {unique}", "service": "billing-worker"})
    assert declared.status_code == 201
    iid = declared.json()["incident_id"]
    officer = {"Authorization": f"Bearer {tokens['compliance-officer']}"}
    for path, body in (("acknowledge", {}), ("resolve", {}), ("updates", {"message": "x"}),
                       ("severity", {"severity": "SEV1", "reason": "x"}), ("reopen", {"reason": "x"})):
        response = httpx.post(f"{platform.api_url}/v1/incidents/{iid}/{path}", json=body, headers=officer)
        assert response.status_code == 403, (path, response.status_code)
    assert httpx.get(f"{platform.api_url}/v1/incidents/{iid}", headers=officer).status_code == 200
