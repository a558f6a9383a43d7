"""The intake edge: POSTs to the three alert intake paths served straight from ASGI.

Under an alert storm FastAPI's per-request machinery (its middleware stack, telemetry
check, routing over every route, dependency solving, response model validation) cost
more than the alert itself (README, "Performance"). The intake handlers need none of it:
they take the Authorization header and the body and answer JSON. Everything else,
including other methods on the same paths, goes to the FastAPI application unchanged.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI
from pydantic_core import to_json
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from . import intake
from .body import Answer, Body
from shared.db.unavailable import unavailable

from .errors import OUTAGE_LOG, ApiError, database_unavailable

log = logging.getLogger("ingestion.edge")

ROUTES = {
    "/v1/alerts": intake.native,
    "/v1/integrations/alertmanager": intake.alertmanager_webhook,
    "/v2/enqueue": intake.pagerduty_events,
}
_INTERNAL = Answer(500, b'{"error":"internal error","detail":null}')


def error_answer(exc: ApiError) -> Answer:
    """The API's error shape (errors.py), for a handler's ApiError."""
    return Answer(exc.status, to_json({"error": exc.error, "detail": exc.detail}), exc.headers)


class IntakeEdge:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        authorization, length = "", None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
        try:
            peer = scope.get("client")
            answer = await handler(self.app.state.runtime, authorization, Body(receive, length), peer[0] if peer else "")
        except ApiError as exc:
            answer = error_answer(exc)
        except ClientDisconnect:
            return  # nobody to answer; nothing was published
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 and is logged, never kills the server
            if unavailable(exc):
                OUTAGE_LOG.warn(exc)
                answer = error_answer(database_unavailable())
            else:
                log.exception("intake %s failed", scope["path"])
                answer = _INTERNAL
        await send_answer(send, answer)


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer.body)).encode())]
    if answer.headers:
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
