"""Server-Sent Events: the board and an incident page learn that something changed.

Each stream belongs to one session. A signal from incident.audit is passed on only
after the API, asked with that session's token, shows the incident to it; the
browser then re-reads what it shows through the console, never from the event.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from fastapi import APIRouter, Depends, Path, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from shared.domain.ids import INCIDENT_ID

from .api import ApiRefusal, UserApi
from .deps import api_for, console, signed_in
from .sessions import Session

router = APIRouter(prefix="/live")
# Bursts (an alert storm) are folded: one refresh per this many seconds at most, and at
# most this many incidents checked per refresh (the board re-reads everything anyway).
FOLD_SECONDS = 0.3
CHECKS_PER_FOLD = 20


async def _visible(api: UserApi, incident_ids: set[str]) -> list[str]:
    return [iid for iid in sorted(incident_ids)[:CHECKS_PER_FOLD] if await api.visible(iid)]


def _still_signed_in(request: Request, session: Session) -> bool:
    return console(request).sessions.get(session.session_id) is session


@router.get("/board", response_class=EventSourceResponse)
async def board_changes(request: Request, session: Session = Depends(signed_in)) -> AsyncIterable[ServerSentEvent]:
    api = api_for(request, session)
    with console(request).feed.subscribe() as subscription:
        yield ServerSentEvent(event="live", data="board")
        while _still_signed_in(request, session):
            await subscription.wake.wait()
            await asyncio.sleep(FOLD_SECONDS)
            try:
                changed = await _visible(api, subscription.take())
            except ApiRefusal:
                continue  # the API is away for a moment: the next signal tries again
            if changed:
                yield ServerSentEvent(event="board-changed", data=changed)


@router.get("/incidents/{incident_id}", response_class=EventSourceResponse)
async def incident_changes(request: Request, incident_id: str = Path(pattern=INCIDENT_ID.pattern, max_length=40),
                           session: Session = Depends(signed_in)) -> AsyncIterable[ServerSentEvent]:
    api = api_for(request, session)
    with console(request).feed.subscribe(incident_id) as subscription:
        try:
            if not await api.visible(incident_id):
                return
        except ApiRefusal:
            return  # the API (or its database) is away: the browser's EventSource connects again
        yield ServerSentEvent(event="live", data=incident_id)
        while _still_signed_in(request, session):
            await subscription.wake.wait()
            await asyncio.sleep(FOLD_SECONDS)
            subscription.take()
            yield ServerSentEvent(event="incident-changed", data=incident_id)
