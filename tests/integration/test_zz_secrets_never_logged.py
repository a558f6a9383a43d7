"""No token or integration key this run made appears in any service's log.

Named to run last (pytest runs files in order): it reads the logs the whole run wrote under
.local/test/logs, every service's, after every other test has used, refused, expired and
revoked its credentials.
"""
from __future__ import annotations

import httpx

from harness import CREATED_SECRETS, remember_secret


def test_no_token_or_key_appears_in_the_logs(platform, tokens, admin):
    # Make sure this run made and refused some itself, even when run alone.
    created = admin.post("/v1/tokens", json={"role": "integration", "name": "logged-nowhere"}).json()
    key = remember_secret(created["token"])
    assert httpx.post(f"{platform.api_url}/v1/alerts", json={"service": "billing-worker", "summary": "x"},
                      headers={"Authorization": f"Bearer {key}"}).status_code == 202
    assert admin.delete(f"/v1/tokens/{created['token_id']}").status_code == 200
    assert httpx.post(f"{platform.api_url}/v1/alerts", json={"service": "billing-worker", "summary": "x"},
                      headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert httpx.post(f"{platform.api_url}/v2/enqueue", json={"routing_key": key, "event_action": "trigger",
                      "payload": {"summary": "x", "source": "y", "severity": "info"}}).status_code == 400

    logs = sorted(platform.logs.glob("*.log"))
    assert logs, f"no service logs under {platform.logs}"
    secrets = set(CREATED_SECRETS)
    assert len(secrets) >= len(tokens) + 1
    found = []
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [(path.name, secret[:6] + "...") for secret in secrets if secret in text]
    assert not found, f"secrets in the logs (file, prefix): {found}"
    print(f"{len(secrets)} secrets, {len(logs)} log files ({sum(p.stat().st_size for p in logs)} bytes): none found")
