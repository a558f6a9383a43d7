"""Calendar feed tokens: read-only, one feed each, revocable, stored as SHA-256 hashes (like api_tokens).

Calendar apps cannot send headers, so the token travels in the feed's URL: it is kept
apart from the API's tokens and authenticates nothing but its one feed.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import asyncpg

from ..auth import hash_secret
from .oncall import audit

ScopeKind = Literal["rotation", "person"]


@dataclass(frozen=True)
class FeedToken:
    token_id: str
    name: str
    scope_kind: ScopeKind
    scope_name: str
    created_by: str
    created_at: datetime
    revoked_by: str | None = None
    revoked_at: datetime | None = None

    def view(self) -> dict:
        return {"token_id": self.token_id, "name": self.name, "scope": {"kind": self.scope_kind,
                "name": self.scope_name}, "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "revoked_by": self.revoked_by, "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


def _token(row: asyncpg.Record) -> FeedToken:
    return FeedToken(row["token_id"], row["name"], row["scope_kind"], row["scope_name"], row["created_by"],
                     row["created_at"], row["revoked_by"], row["revoked_at"])


_COLUMNS = "token_id, name, scope_kind, scope_name, created_by, created_at, revoked_by, revoked_at"


async def create(conn: asyncpg.Connection, kind: ScopeKind, scope: str, name: str, created_by: str) -> tuple[FeedToken, str]:
    """A new feed token and its secret (shown once, never stored)."""
    secret = "feed_" + secrets.token_urlsafe(32)
    token_id = "feed_" + secrets.token_hex(6)
    async with conn.transaction():
        row = await conn.fetchrow(
            f"INSERT INTO feed_tokens (token_id, name, scope_kind, scope_name, token_hash, created_by)"
            f" VALUES ($1,$2,$3,$4,$5,$6) RETURNING {_COLUMNS}",
            token_id, name, kind, scope, hash_secret(secret), created_by,
        )
        token = _token(row)
        await audit(conn, f"feed_token:{token_id}/created", token.created_at, created_by, "feed_token.created",
                    "feed_token", token_id, {"scope": {"kind": kind, "name": scope}, "name": name})
    return token, secret


async def authenticate(conn: asyncpg.Connection, secret: str) -> FeedToken | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM feed_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
                              hash_secret(secret))
    return _token(row) if row else None


async def listed(conn: asyncpg.Connection, include_revoked: bool = False) -> list[FeedToken]:
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    return [_token(r) for r in await conn.fetch(f"SELECT {_COLUMNS} FROM feed_tokens {where} ORDER BY created_at")]


async def get(conn: asyncpg.Connection, token_id: str) -> FeedToken | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM feed_tokens WHERE token_id = $1", token_id)
    return _token(row) if row else None


async def revoke(conn: asyncpg.Connection, token_id: str, revoked_by: str) -> FeedToken | None:
    """Revoke a token; None when it was unknown or revoked already."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"UPDATE feed_tokens SET revoked_by = $2, revoked_at = $3 WHERE token_id = $1 AND revoked_at IS NULL"
            f" RETURNING {_COLUMNS}", token_id, revoked_by, datetime.now(timezone.utc),
        )
        if row is None:
            return None
        token = _token(row)
        await audit(conn, f"feed_token:{token_id}/revoked", token.revoked_at, revoked_by, "feed_token.revoked",
                    "feed_token", token_id, {"scope": {"kind": token.scope_kind, "name": token.scope_name}})
    return token
