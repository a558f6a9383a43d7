"""API tokens and integration keys, stored as SHA-256 hashes."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg

from ..auth import Role, hash_secret, new_integration_key, new_user_token


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role


async def create_token(conn: asyncpg.Connection, role: Role, name: str) -> tuple[Principal, str]:
    """Store a new token's hash and return the secret (shown once, never stored)."""
    secret = new_integration_key() if role is Role.INTEGRATION else new_user_token()
    token_id = "tok_" + secrets.token_hex(6)
    await conn.execute(
        "INSERT INTO api_tokens (token_id, name, role, token_hash) VALUES ($1, $2, $3, $4)",
        token_id, name, role.value, hash_secret(secret),
    )
    return Principal(token_id=token_id, name=name, role=role), secret


async def authenticate(conn: asyncpg.Connection, secret: str) -> Principal | None:
    row = await conn.fetchrow(
        "SELECT token_id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_secret(secret),
    )
    if row is None:
        return None
    return Principal(token_id=row["token_id"], name=row["name"], role=Role(row["role"]))
