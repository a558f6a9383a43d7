"""Bearer credentials: integration keys for intake, user tokens with roles for the API."""
from __future__ import annotations

import time
from dataclasses import dataclass

import asyncpg
from fastapi import Depends, Request

from shared.auth import Permission, Role, allowed, hash_secret
from shared.db.tokens import Principal, authenticate

from .errors import ApiError

_CACHE_SECONDS = 30.0


@dataclass
class TokenCache:
    """Recently seen credentials, so alert intake does not query PostgreSQL per request."""

    entries: dict[str, tuple[float, Principal | None]]

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        hit = self.entries.get(digest)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[digest] = (time.monotonic() + _CACHE_SECONDS, principal)


async def principal_for(pool: asyncpg.Pool, cache: TokenCache, secret: str) -> Principal | None:
    digest = hash_secret(secret)
    hit, principal = cache.get(digest)
    if hit:
        return principal
    async with pool.acquire() as conn:
        principal = await authenticate(conn, secret)
    cache.put(digest, principal)
    return principal


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "missing credentials: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    return value.strip()


async def require(request: Request, permission: Permission) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        state = request.app.state.runtime
        principal = await principal_for(state.pool, state.tokens, bearer(request))
    if principal is None:
        raise ApiError(401, "invalid or revoked credentials", headers={"WWW-Authenticate": "Bearer"})
    if not allowed(principal.role, permission):
        raise ApiError(403, f"role {principal.role.value} may not {permission.value.replace('_', ' ')}")
    request.state.principal = principal
    return principal


def needs(permission: Permission):
    """A route dependency: credentials and role are checked before the body is validated,
    so a caller without the right never learns more than 401 or 403."""

    async def check(request: Request) -> None:
        await require(request, permission)

    return Depends(check)


def can_see_restricted(principal: Principal) -> bool:
    return allowed(principal.role, Permission.READ_RESTRICTED)


def actor_name(principal: Principal) -> str:
    return principal.name if principal.role is not Role.INTEGRATION else f"integration:{principal.name}"
