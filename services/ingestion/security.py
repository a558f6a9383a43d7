"""Bearer credentials: integration keys for intake, user tokens with roles for the API."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg
from fastapi import Depends, Request

from shared.auth import Permission, Role, allowed, hash_secret
from shared.db.tokens import Principal, authenticate

from .errors import ApiError

log = logging.getLogger("ingestion.security")

# A credential checked in PostgreSQL is trusted this long without asking again: a
# revoked key stops working within FRESH_SECONDS while the database is up.
FRESH_SECONDS = 30.0
# While PostgreSQL is away, what was known this recently still counts, so alerts keep
# coming in through a database outage (README, "Intake limits and credentials").
STALE_SECONDS = 3600.0
MAX_ENTRIES = 10_000
_DATABASE_DOWN = (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                  asyncpg.CannotConnectNowError)


@dataclass
class TokenCache:
    """Credentials by SHA-256 digest: (checked at, principal or None for an unknown secret)."""

    entries: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
    pending: dict[str, asyncio.Future] = field(default_factory=dict)

    def get(self, digest: str, max_age: float = FRESH_SECONDS) -> tuple[bool, Principal | None]:
        hit = self.entries.get(digest)
        if hit is None or time.monotonic() - hit[0] > max_age:
            return False, None
        return True, hit[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        self.entries.pop(digest, None)
        if len(self.entries) >= MAX_ENTRIES:
            # Oldest first (dicts keep insertion order): a flood of unknown secrets evicts
            # itself, not every key that is in use.
            for old in list(self.entries)[: MAX_ENTRIES // 10]:
                del self.entries[old]
        self.entries[digest] = (time.monotonic(), principal)


async def principal_for(pool: asyncpg.Pool, cache: TokenCache, secret: str) -> Principal | None:
    """Who ``secret`` is: from memory when checked recently, else from PostgreSQL (one query
    per credential at a time however many requests wait for it)."""
    digest = hash_secret(secret)
    hit, principal = cache.get(digest)
    if hit:
        return principal
    waiting = cache.pending.get(digest)
    if waiting is None:
        waiting = cache.pending[digest] = asyncio.ensure_future(_check(pool, cache, digest, secret))
        waiting.add_done_callback(lambda _: cache.pending.pop(digest, None))
    return await asyncio.shield(waiting)


async def _check(pool: asyncpg.Pool, cache: TokenCache, digest: str, secret: str) -> Principal | None:
    try:
        async with pool.acquire(timeout=2) as conn:
            principal = await authenticate(conn, secret)
    except _DATABASE_DOWN as exc:
        hit, principal = cache.get(digest, max_age=STALE_SECONDS)
        if hit:
            return principal
        log.warning("credential not checked, PostgreSQL unavailable: %r", exc)
        raise ApiError(503, "credentials cannot be checked now: the database is unavailable; retry",
                       {"retry_after_seconds": 5}, headers={"Retry-After": "5"}) from None
    cache.put(digest, principal)
    return principal


def bearer(request: Request) -> str:
    return bearer_value(request.headers.get("authorization", ""))


def bearer_value(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "missing credentials: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    return value.strip()


async def require(request: Request, permission: Permission) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        state = request.app.state.runtime
        principal = await authorize(state.pool, state.tokens, request.headers.get("authorization", ""), permission)
    elif not allowed(principal.role, permission):
        raise _forbidden(principal, permission)
    request.state.principal = principal
    return principal


async def authorize(pool: asyncpg.Pool, cache: TokenCache, header: str, permission: Permission) -> Principal:
    """The principal behind an Authorization header, if it may ``permission`` (else 401 or 403)."""
    principal = await principal_for(pool, cache, bearer_value(header))
    if principal is None:
        raise ApiError(401, "invalid or revoked credentials", headers={"WWW-Authenticate": "Bearer"})
    if not allowed(principal.role, permission):
        raise _forbidden(principal, permission)
    return principal


def _forbidden(principal: Principal, permission: Permission) -> ApiError:
    return ApiError(403, f"role {principal.role.value} may not {permission.value.replace('_', ' ')}")


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
