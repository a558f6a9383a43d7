"""incidentctl token create|list|revoke: API tokens and integration keys (platform-admin)."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

from shared.auth import Role

from . import render
from .client import Api
from .commands import Result
from .oncall_commands import TIME_HELP, moment

ROLES = tuple(role.value for role in Role)


def create(api: Api, a: argparse.Namespace) -> Result:
    body = {"role": a.role, "name": a.name}
    if a.expires:
        body["expires_at"] = moment(a.expires)
    created = api.post("/v1/tokens", body)
    until = f", expiring {render._when(created['expires_at'])}" if created.get("expires_at") else ""
    # The secret alone on stdout so `TOKEN=$(incidentctl token create ...)` works; it is never shown again.
    note = (f"created token {created['token_id']} {created['name']!r} with role {created['role']}{until}; "
            "it is shown only this once")
    return Result(created, created["token"], note=note)


def _status(token: dict, now: datetime) -> str:
    if token.get("revoked_at"):
        return "revoked"
    expires = token.get("expires_at")
    if expires and datetime.fromisoformat(expires) <= now:
        return "expired"
    return "active"


def list_(api: Api, a: argparse.Namespace) -> Result:
    listed = api.get("/v1/tokens", params={"include_revoked": "true"} if a.all else None)
    now = datetime.now(timezone.utc)
    rows = [(t["token_id"], t["name"], t["role"], render._when(t["created_at"]), render._when(t["last_used_at"]),
             render._when(t["expires_at"]), _status(t, now)) for t in listed["tokens"]]
    text = render.table(("ID", "NAME", "ROLE", "CREATED", "LAST USED", "EXPIRES", "STATUS"), rows) \
        if rows else "no tokens"
    return Result(listed, text)


def revoke(api: Api, a: argparse.Namespace) -> Result:
    revoked = api.delete(f"/v1/tokens/{a.token_id}")
    return Result(revoked, f"revoked token {revoked['token_id']} {revoked['name']!r} ({revoked['role']}): "
                           "it answers 401 from now on")


def add_parsers(sub, command) -> None:
    token = sub.add_parser("token", help="API tokens and integration keys: create, list, revoke (platform-admin)")
    token_sub = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    p = command(token_sub, "create", create, "create a token; prints it once", incident=False)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", required=True)
    p.add_argument("--expires", help=f"when it stops working ({TIME_HELP}); default never")
    p = command(token_sub, "list", list_, "tokens: name, role, created, last used, expiry (never the secret)",
                incident=False)
    p.add_argument("--all", action="store_true", help="revoked ones too")
    p = command(token_sub, "revoke", revoke, "revoke a token: it answers 401 from now on", incident=False)
    p.add_argument("token_id", metavar="ID", help="token id, e.g. tok_0123456789ab (see token list)")
