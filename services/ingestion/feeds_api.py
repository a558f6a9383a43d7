"""Calendar feeds of who is on call (8 weeks, overrides applied), authorised by a feed token in the URL.

``GET /v1/rotations/{name}.ics`` and ``GET /v1/people/{person}.ics`` take ``?token=``:
calendar apps cannot send headers. A feed token is read-only, names one feed, and is
revocable; tokens are managed under ``/v1/feed-tokens`` by anyone who may read.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.auth import Permission, allowed
from shared.db import feed_tokens
from shared.domain.oncall import current_start, person_shifts, shifts
from shared.domain.organisation import Organisation

from . import calendar_feed
from .errors import ApiError
from .oncall_api import organisation_at
from .runtime import Runtime
from .security import actor_name, needs, require

router = APIRouter(tags=["calendar feeds"])
Token = Annotated[str, Query(min_length=1, max_length=200, description="A feed token (`POST /v1/feed-tokens`)")]
_ICS = {200: {"content": {"text/calendar": {"schema": {"type": "string"}}},
              "description": "RFC 5545: the next 8 weeks of shifts, overrides applied"}}


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def people(org: Organisation) -> set[str]:
    return set(org.people) | {p for r in org.rotations.values() for p in r.participants}


class FeedTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
        {"required": ["rotation"], "properties": {"rotation": {"type": "string"}}, "not": {"required": ["person"]}},
        {"required": ["person"], "properties": {"person": {"type": "string"}}, "not": {"required": ["rotation"]}},
    ]})
    rotation: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    person: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_feed(self) -> "FeedTokenRequest":
        if (self.rotation is None) == (self.person is None):
            raise ValueError("name exactly one feed: rotation or person")
        return self


def feed_path(kind: str, name: str) -> str:
    return f"/v1/{'rotations' if kind == 'rotation' else 'people'}/{quote(name, safe='')}.ics"


@router.post("/v1/feed-tokens", status_code=201, summary="A read-only token for one calendar feed (shown once)",
             dependencies=[needs(Permission.READ)])
async def create_feed_token(request: Request, body: FeedTokenRequest) -> dict[str, Any]:
    principal = await require(request, Permission.READ)
    rt = _rt(request)
    kind, scope = ("rotation", body.rotation) if body.rotation is not None else ("person", body.person)
    known = rt.org.rotations if kind == "rotation" else people(rt.org)
    if scope not in known:
        raise ApiError(404, f"no {kind} {scope!r} in the organisation", {"field": kind, "name": scope})
    async with rt.pool.acquire() as conn:
        token, secret = await feed_tokens.create(conn, kind, scope, body.name or f"{kind} {scope}",
                                                 actor_name(principal))
    url = str(request.base_url).rstrip("/") + feed_path(kind, scope) + f"?token={secret}"
    return {**token.view(), "token": secret, "url": url}


@router.get("/v1/feed-tokens", summary="Feed tokens (never their secrets)", dependencies=[needs(Permission.READ)])
async def list_feed_tokens(request: Request, include_revoked: bool = False) -> dict[str, Any]:
    await require(request, Permission.READ)
    async with _rt(request).pool.acquire() as conn:
        found = await feed_tokens.listed(conn, include_revoked)
    return {"feed_tokens": [t.view() for t in found], "count": len(found)}


@router.delete("/v1/feed-tokens/{token_id}", summary="Revoke a feed token: its URL stops working at once",
               dependencies=[needs(Permission.READ)])
async def revoke_feed_token(request: Request,
                            token_id: Annotated[str, Path(pattern=r"^feed_[0-9a-f]{12}$")]) -> dict[str, Any]:
    principal = await require(request, Permission.READ)
    actor = actor_name(principal)
    async with _rt(request).pool.acquire() as conn:
        current = await feed_tokens.get(conn, token_id)
        if current is None:
            raise ApiError(404, f"no feed token {token_id}", {"token_id": token_id})
        if current.created_by != actor and not allowed(principal.role, Permission.MANAGE_TOKENS):
            raise ApiError(403, "only its creator or a platform-admin may revoke a feed token")
        revoked = await feed_tokens.revoke(conn, token_id, actor)
    if revoked is None:
        raise ApiError(409, f"feed token {token_id} was already revoked", {"token_id": token_id})
    return revoked.view()


async def _feed_org(rt: Runtime, token: str, kind: str, name: str) -> tuple[Organisation, datetime]:
    """The organisation with its overrides, once the token is found to open this very feed."""
    async with rt.pool.acquire() as conn:
        found = await feed_tokens.authenticate(conn, token)
    if found is None:
        raise ApiError(401, "invalid or revoked feed token")
    if (found.scope_kind, found.scope_name) != (kind, name):
        raise ApiError(403, f"this feed token is for the {found.scope_kind} {found.scope_name!r} feed")
    now = datetime.now(timezone.utc)
    return await organisation_at(rt, now - timedelta(days=1)), now


def _ics(body: bytes, name: str) -> Response:
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": f'inline; filename="{quote(name, safe="")}.ics"',
                             "Cache-Control": "private, max-age=300"})


@router.get("/v1/rotations/{name}.ics", responses=_ICS, response_class=Response,
            summary="A rotation's calendar feed (feed token in ?token=)")
async def rotation_feed(request: Request, name: Annotated[str, Path()], token: Token) -> Response:
    org, now = await _feed_org(_rt(request), token, "rotation", name)
    rotation = org.rotations.get(name)
    if rotation is None:
        raise ApiError(404, f"no rotation {name!r} in the organisation", {"rotation": name})
    found = shifts(rotation, current_start(rotation, now), calendar_feed.horizon(now))
    return _ics(calendar_feed.calendar(f"On call: {name}", [(name, s) for s in found], now, per_rotation=True), name)


@router.get("/v1/people/{person}.ics", responses=_ICS, response_class=Response,
            summary="A person's calendar feed across every rotation (feed token in ?token=)")
async def person_feed(request: Request, person: Annotated[str, Path()], token: Token) -> Response:
    org, now = await _feed_org(_rt(request), token, "person", person)
    if person not in people(org):
        raise ApiError(404, f"no person {person!r} in the organisation", {"person": person})
    longest = max((r.length for r in org.rotations.values()), default=timedelta(days=1))
    found = [(r, s) for r, s in person_shifts(org, person, now - longest, calendar_feed.horizon(now)) if s.end > now]
    return _ics(calendar_feed.calendar(f"On call: {person}", found, now, per_rotation=False), person)
