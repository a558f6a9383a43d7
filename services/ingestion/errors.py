"""The API's error shape: {"error": "...", "detail": ...} with a 4xx that says what was wrong."""
from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db.unavailable import unavailable

log = logging.getLogger("ingestion.errors")

# PostgreSQL restarts in seconds; a client told to come back sooner only adds load.
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail, self.headers = status, error, detail, headers


def database_unavailable() -> ApiError:
    """The answer of a request that needs PostgreSQL while it is away (never a 500)."""
    return ApiError(503, "the database is unavailable: this request needs PostgreSQL; retry shortly",
                    {"retry_after_seconds": RETRY_AFTER_SECONDS}, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class _OutageLog:
    """One warning per outage-ish interval, not one per request (hundreds a second in a storm)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.last = every, float("-inf")

    def warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.warning("answering 503: PostgreSQL unavailable (%s: %s)", type(exc).__name__, exc)


OUTAGE_LOG = _OutageLog()


# PostgreSQL's data exceptions (SQLSTATE class 22) and asyncpg's own refusal to encode an
# argument: a value from the request that the database cannot hold, such as a NUL in a search
# term (text cannot contain U+0000), found by the schemathesis volume run.
_VALUE_REFUSED = (asyncpg.exceptions.DataError, asyncpg.exceptions._base.DataError)
_NUL = (asyncpg.exceptions.CharacterNotInRepertoireError, asyncpg.exceptions.UntranslatableCharacterError)


def _value_refused(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, _NUL):
        message = "text cannot contain the NUL character (U+0000)"
    else:
        message = f"a value the database cannot hold: {exc}"
    return {"error": f"invalid request: {message}", "detail": [{"field": "(request)", "message": message}]}


def field_errors(errors: list[dict]) -> list[dict[str, str]]:
    """Pydantic errors as [{"field": "alerts.0.service", "message": "Field required"}]."""
    out = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        out.append({"field": ".".join(loc) or "(body)", "message": err.get("msg", "invalid")})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        # Every read and write path of the API: a database that is away (shared/db/unavailable.py)
        # is a 503 with Retry-After; a value PostgreSQL cannot hold is the client's 400; anything
        # else is a bug and stays a logged 500.
        if isinstance(exc, _VALUE_REFUSED):
            return JSONResponse(_value_refused(exc), status_code=400)
        if not unavailable(exc):
            raise exc
        OUTAGE_LOG.warn(exc)
        answer = database_unavailable()
        return JSONResponse({"error": answer.error, "detail": answer.detail}, status_code=503, headers=answer.headers)

    for kind in (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(KafkaError)
    async def _broker_away(_: Request, exc: KafkaError) -> JSONResponse:
        # A command, a ping or an override the broker did not take: nothing was stored, so the
        # caller may simply send it again (the intake endpoints say the same in their own words).
        return JSONResponse({"error": "not stored: the broker did not acknowledge it; retry",
                             "detail": type(exc).__name__}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = field_errors(exc.errors())
        fields = ", ".join(d["field"] for d in details[:5])
        return JSONResponse({"error": f"invalid request: {fields}", "detail": details}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return JSONResponse({"error": str(exc.detail), "detail": None}, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str:
    # Starlette names only the first route that matched the path; a path served by
    # several routes (GET and POST /v1/incidents) allows all of their methods.
    methods: set[str] = set()
    for route in request.app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))
