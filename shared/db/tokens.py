"""API tokens and integration keys, stored as SHA-256 hashes (never the secret)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..auth import Role, hash_secret, new_integration_key, new_user_token


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


async def create_token(conn: asyncpg.Connection, role: Role, name: str,
                       expires_at: datetime | None = None) -> tuple[Principal, str]:
    """Store a new token's hash and return the secret (shown once, never stored)."""
    secret = new_integration_key() if role is Role.INTEGRATION else new_user_token()
    token_id = "tok_" + secrets.token_hex(6)
    await conn.execute(
        "INSERT INTO api_tokens (token_id, name, role, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        token_id, name, role.value, hash_secret(secret), expires_at,
    )
    return Principal(token_id=token_id, name=name, role=role, expires_at=expires_at), secret


async def authenticate(conn: asyncpg.Connection, secret: str) -> Principal | None:
    """The token behind ``secret`` (expired ones too: the caller says so), noting it was used."""
    row = await conn.fetchrow(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL"
        " RETURNING token_id, name, role, expires_at",
        hash_secret(secret),
    )
    if row is None:
        return None
    return Principal(token_id=row["token_id"], name=row["name"], role=Role(row["role"]), expires_at=row["expires_at"])


# What a listing shows of a token: never its secret or its hash.
_LISTED = "token_id, name, role, created_at, last_used_at, expires_at, revoked_at"


def _listed(row: asyncpg.Record) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(row).items()}


async def list_tokens(conn: asyncpg.Connection, include_revoked: bool = False) -> list[dict[str, Any]]:
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    return [_listed(r) for r in await conn.fetch(f"SELECT {_LISTED} FROM api_tokens {where} ORDER BY created_at")]


async def revoke_token(conn: asyncpg.Connection, token_id: str) -> dict[str, Any] | None:
    """Revoke a token (again: it stays revoked when it was); None when there is no such token."""
    row = await conn.fetchrow(
        f"UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE token_id = $1 RETURNING {_LISTED}",
        token_id,
    )
    return _listed(row) if row is not None else None
