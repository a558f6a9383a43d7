"""Bearer credentials: integration keys for intake, user tokens with roles for the API."""
from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import asyncpg
from fastapi import Depends, Request

from shared.auth import Permission, Role, allowed, hash_secret
from shared.db.tokens import Principal, authenticate
from shared.db.unavailable import unavailable
from shared.domain.auth_failures import FailedAuthentications

from .errors import RETRY_AFTER_SECONDS, ApiError

log = logging.getLogger("ingestion.security")

# A credential checked in PostgreSQL is trusted this long without asking again: a
# revoked key stops working within FRESH_SECONDS while the database is up.
FRESH_SECONDS = 30.0
# While PostgreSQL is away, what was known this recently still counts, so alerts keep
# coming in through a database outage (README, "Intake limits and credentials").
STALE_SECONDS = 3600.0
MAX_ENTRIES = 10_000


@dataclass
class TokenCache:
    """Credentials by SHA-256 digest: (checked at, principal or None for an unknown secret)."""

    entries: dict[str, tuple[float, Principal | None]] = field(default_factory=dict)
    pending: dict[str, asyncio.Future] = field(default_factory=dict)
    # Failed authentications per client address (429 once a client has failed too often).
    failures: FailedAuthentications = field(default_factory=FailedAuthentications)

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

    def forget(self, token_id: str) -> None:
        """Drop a revoked token at once in this process (others notice within FRESH_SECONDS)."""
        for digest in [d for d, (_, p) in self.entries.items() if p is not None and p.token_id == token_id]:
            del self.entries[digest]


async def principal_for(pool: asyncpg.Pool, cache: TokenCache, secret: str, client: str = "") -> Principal | None:
    """Who ``secret`` is: from memory when checked recently, else from PostgreSQL (one query
    per credential at a time however many requests wait for it). None for an unknown or
    revoked secret; 401 for an expired one; 429 for a client that failed too often.

    ``client`` is the caller's address: a client whose credentials keep failing is answered
    429 with Retry-After before its next one is looked up (shared/domain/auth_failures.py).
    A failure counts when a credential had to be looked up: one wrong credential sent again
    is answered from memory, costs no query and guesses nothing new.
    """
    digest = hash_secret(secret)
    hit, principal = cache.get(digest)
    now = time.monotonic()
    if not (hit and principal is not None):
        _slow_down(cache.failures, client, now)
    if not hit:
        waiting = cache.pending.get(digest)
        if waiting is None:
            waiting = cache.pending[digest] = asyncio.ensure_future(_check(pool, cache, digest, secret))
            waiting.add_done_callback(lambda _: cache.pending.pop(digest, None))
        principal = await asyncio.shield(waiting)
    if principal is None:
        if not hit:
            cache.failures.failed(client, now)
        return None
    if principal.expired(datetime.now(timezone.utc)):
        if not hit:
            cache.failures.failed(client, now)
        assert principal.expires_at is not None
        raise ApiError(401, f"credentials expired at {principal.expires_at.isoformat()}: ask for a new token",
                       {"expired_at": principal.expires_at.isoformat()}, headers={"WWW-Authenticate": "Bearer"})
    return principal


def _slow_down(failures: FailedAuthentications, client: str, now: float) -> None:
    wait = failures.wait(client, now)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(429, f"too many failed authentications from this client; retry after {seconds} s",
                       {"retry_after_seconds": seconds}, headers={"Retry-After": str(seconds)})


async def _check(pool: asyncpg.Pool, cache: TokenCache, digest: str, secret: str) -> Principal | None:
    try:
        async with pool.acquire(timeout=2) as conn:
            principal = await authenticate(conn, secret)
    except Exception as exc:  # noqa: BLE001 - sorted just below: an outage, or raised
        # shared/db/unavailable.py's rule: a server shutting down (AdminShutdownError) or
        # starting (CannotConnectNowError) is as away as one refusing connections.
        if not unavailable(exc):
            raise
        hit, principal = cache.get(digest, max_age=STALE_SECONDS)
        if hit:
            return principal
        log.warning("credential not checked, PostgreSQL unavailable: %r", exc)
        raise ApiError(503, "credentials cannot be checked now: the database is unavailable; retry",
                       {"retry_after_seconds": RETRY_AFTER_SECONDS},
                       headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
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


def client_of(request: Request) -> str:
    """The caller's address, as the connection gives it (no proxy header is trusted)."""
    return request.client.host if request.client is not None else ""


async def require(request: Request, permission: Permission) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        state = request.app.state.runtime
        principal = await authorize(state.pool, state.tokens, request.headers.get("authorization", ""), permission,
                                    client_of(request))
    elif not allowed(principal.role, permission):
        raise _forbidden(principal, permission)
    request.state.principal = principal
    return principal


async def authorize(pool: asyncpg.Pool, cache: TokenCache, header: str, permission: Permission,
                    client: str = "") -> Principal:
    """The principal behind an Authorization header, if it may ``permission`` (else 401, 403 or 429)."""
    principal = await principal_for(pool, cache, bearer_value(header), client)
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
