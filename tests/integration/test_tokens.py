"""Tokens: expiry, list and revoke through incidentctl and the API; failed authentication slowed."""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone

import httpx

from harness import incidentctl, remember_secret, sql, wait_until


def _ctl(platform, token: str, *args: str) -> subprocess.CompletedProcess:
    return incidentctl(platform.api_url, token, *args)


def _ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    return done


def test_token_list_and_revoke_never_show_a_secret(platform, tokens, unique):
    admin = tokens["platform-admin"]
    name = f"bot-{unique}"
    secret = remember_secret(_ok(_ctl(platform, admin, "token", "create", "--role", "observability-engineer",
                                      "--name", name, "--expires", "+30d")).stdout.strip())
    me = httpx.get(f"{platform.api_url}/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["name"] == name

    listed = _ok(_ctl(platform, admin, "token", "list"))
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "ROLE", "CREATED", "LAST", "USED", "EXPIRES", "STATUS"]
    (row,) = [r for r in rows if f" {name} " in r]
    token_id = row.split()[0]
    assert "observability-engineer" in row and row.split()[-1] == "active"
    as_json = _ok(_ctl(platform, admin, "token", "list", "-o", "json")).stdout
    [stored_hash] = [r["token_hash"] for r in sql("SELECT token_hash FROM api_tokens WHERE token_id = $1", token_id)]
    for shown in (listed.stdout, as_json):
        assert secret not in shown and stored_hash not in shown
    entry = next(t for t in httpx.get(f"{platform.api_url}/v1/tokens", headers={"Authorization": f"Bearer {admin}"})
                 .json()["tokens"] if t["token_id"] == token_id)
    assert entry["last_used_at"] is not None and entry["expires_at"] is not None and entry["created_at"]

    # Only the admin permission manages tokens.
    officer = {"Authorization": f"Bearer {tokens['compliance-officer']}"}
    assert httpx.get(f"{platform.api_url}/v1/tokens", headers=officer).status_code == 403
    assert httpx.delete(f"{platform.api_url}/v1/tokens/{token_id}", headers=officer).status_code == 403
    assert _ctl(platform, tokens["compliance-officer"], "token", "list").returncode == 4

    revoked = _ok(_ctl(platform, admin, "token", "revoke", token_id))
    assert f"revoked token {token_id} '{name}'" in revoked.stdout
    refused = httpx.get(f"{platform.api_url}/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert token_id not in _ok(_ctl(platform, admin, "token", "list")).stdout
    assert "revoked" in next(r for r in _ok(_ctl(platform, admin, "token", "list", "--all")).stdout.splitlines()
                             if r.startswith(token_id))
    assert _ctl(platform, admin, "token", "revoke", "tok_000000000000").returncode == 5


def test_an_expired_token_answers_401_naming_its_expiry(platform, tokens, unique):
    admin = {"Authorization": f"Bearer {tokens['platform-admin']}"}
    past = httpx.post(f"{platform.api_url}/v1/tokens", headers=admin,
                      json={"role": "compliance-officer", "name": f"past-{unique}", "expires_at": "2020-01-01T00:00:00Z"})
    assert past.status_code == 409 and "expires_at" in past.json()["error"]
    created = httpx.post(f"{platform.api_url}/v1/tokens", headers=admin,
                         json={"role": "compliance-officer", "name": f"brief-{unique}",
                               "expires_at": _in_seconds(3)}).json()
    secret = remember_secret(created["token"])
    me = f"{platform.api_url}/v1/me"
    assert httpx.get(me, headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    def expired():
        answer = httpx.get(me, headers={"Authorization": f"Bearer {secret}"})
        return answer.status_code == 401 and answer.json()

    body = wait_until(expired, timeout=15, interval=0.5, what="the token to expire")
    assert body["error"].startswith("credentials expired at ") and body["detail"]["expired_at"]


def _in_seconds(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def test_repeated_failed_authentication_from_one_client_is_slowed(platform, tokens):
    # From an address of its own (127.0.0.2), so the rest of the suite on 127.0.0.1 is not slowed.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=platform.api_url, transport=transport, timeout=10) as guesser:
        codes = [guesser.get("/v1/incidents", headers={"Authorization": f"Bearer inc_guess{i}"}).status_code
                 for i in range(40)]
        assert codes[0] == 401 and 429 in codes, codes
        first = codes.index(429)
        assert set(codes[first:]) == {429}, codes  # once slowed, every guess waits
        slowed = guesser.get("/v1/incidents", headers={"Authorization": "Bearer inc_one-more"})
        assert slowed.status_code == 429 and int(slowed.headers["Retry-After"]) >= 1
        assert "too many failed authentications" in slowed.json()["error"]
        # A credential known to be good (checked recently) still works from that address.
        assert httpx.get(f"{platform.api_url}/v1/me",
                         headers={"Authorization": f"Bearer {tokens['compliance-officer']}"}).status_code == 200
        ok = guesser.get("/v1/me", headers={"Authorization": f"Bearer {tokens['compliance-officer']}"})
        assert ok.status_code == 200
    # Another client is not slowed.
    assert httpx.get(f"{platform.api_url}/v1/incidents", headers={"Authorization": "Bearer inc_other"}).status_code \
        == 401
