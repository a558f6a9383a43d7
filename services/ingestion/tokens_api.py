"""API tokens and integration keys: create (the secret shown once), list (never the secret),
revoke. Every route needs the manage_tokens permission (platform-admin)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.auth import Permission, Role
from shared.db import tokens

from .errors import ApiError
from .runtime import Runtime
from .security import needs, require

router = APIRouter(tags=["tokens"], dependencies=[needs(Permission.MANAGE_TOKENS)])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@:-]+$")
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339; the token answers 401 from then on")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("/v1/tokens", status_code=201, summary="Create a token (shown once), optionally expiring")
async def create_api_token(request: Request, body: TokenRequest) -> dict[str, Any]:
    await require(request, Permission.MANAGE_TOKENS)
    if body.expires_at is not None and body.expires_at <= datetime.now(timezone.utc):
        # 409 as for an override already past: the body is well-formed, the moment has gone.
        raise ApiError(409, "expires_at: must be in the future", {"field": "expires_at", "message": "already past"})
    async with _rt(request).pool.acquire() as conn:
        principal, secret = await tokens.create_token(conn, body.role, body.name, body.expires_at)
    expires = principal.expires_at.isoformat() if principal.expires_at else None
    return {"token_id": principal.token_id, "name": principal.name, "role": principal.role.value,
            "expires_at": expires, "token": secret}


@router.get("/v1/tokens", summary="Tokens and integration keys: name, role, created, last used, expiry (never the secret)")
async def list_api_tokens(request: Request, include_revoked: bool = False) -> dict[str, Any]:
    await require(request, Permission.MANAGE_TOKENS)
    async with _rt(request).pool.acquire() as conn:
        found = await tokens.list_tokens(conn, include_revoked)
    return {"tokens": found, "count": len(found)}


@router.delete("/v1/tokens/{token_id}", summary="Revoke a token: 401 from now on (within 30 s on other API processes)")
async def revoke_api_token(request: Request,
                           token_id: Annotated[str, Path(pattern=r"^tok_[0-9a-f]{12}$")]) -> dict[str, Any]:
    await require(request, Permission.MANAGE_TOKENS)
    rt = _rt(request)
    async with rt.pool.acquire() as conn:
        revoked = await tokens.revoke_token(conn, token_id)
    if revoked is None:
        raise ApiError(404, f"no token {token_id}", {"token_id": token_id})
    rt.tokens.forget(token_id)
    return revoked
