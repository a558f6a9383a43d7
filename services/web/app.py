"""The web console: server-rendered pages (FastAPI + Jinja2 + vendored htmx), a client of the API.

Composition root: the HTTP clients for the API and the metrics exporter, the session
store, the incident.audit feed and the on-call source are made here and nowhere else.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.domain.organisation import Organisation
from shared.settings import Settings

from . import board, incident_page, live, other_pages, postmortem_page, sign_in
from .api import ApiRefusal
from .audit_feed import AuditFeed
from .deps import Console, CsrfRefused, SignInRequired, is_htmx, redirect, refusal_page, sign_in_url
from .oncall_schedule import ConfigOnCall
from .rendering import templates
from .sessions import SessionStore

log = logging.getLogger("web")
STATIC = Path(__file__).with_name("static")
# Pages may load scripts, styles and images from this console only: no CDN, no inline script.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def create_app(settings: Settings, org: Organisation) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        api_http = httpx.AsyncClient(base_url=settings.api_url, timeout=httpx.Timeout(30.0, connect=5.0))
        metrics_http = httpx.AsyncClient(timeout=5.0)
        feed = AuditFeed(settings.kafka_bootstrap, f"{settings.app_prefix}-web")
        await feed.start()
        app.state.console = Console(
            settings=settings, org=org, api_http=api_http, metrics_http=metrics_http,
            sessions=SessionStore(settings.web_session_idle_minutes * 60), feed=feed, templates=templates(),
            oncall=ConfigOnCall(org),
        )
        log.info("web console on http://%s:%s (API %s)", settings.web_host, settings.web_port, settings.api_url)
        try:
            yield
        finally:
            await feed.stop()
            await api_http.aclose()
            await metrics_http.aclose()

    app = FastAPI(title="Incident Handling console", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (sign_in, board, incident_page, postmortem_page, other_pages, live):
        app.include_router(module.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        if request.url.path.startswith("/live/"):
            return Response("sign in first", status_code=401)
        return redirect(sign_in_url(request), request)

    @app.exception_handler(ApiRefusal)
    async def _refused(request: Request, exc: ApiRefusal) -> Response:
        # A page that did not catch the API's refusal still shows it (a 503 stays a 503), never a 500.
        return refusal_page(request, exc)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _: CsrfRefused) -> Response:
        return refusal_page(request, ApiRefusal(
            403, "This form has no valid CSRF token (it may be from an old page): reload the page and try again."))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors())
        return refusal_page(request, ApiRefusal(400, f"invalid request: {fields}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return refusal_page(request, ApiRefusal(exc.status_code, str(exc.detail)))

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        c: Console = request.app.state.console
        try:
            api = (await c.api_http.get("/healthz", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            api = False
        body = {"api": api, "audit_feed": c.feed.healthy}
        ready = all(body.values())
        return JSONResponse({"status": "ready" if ready else "not ready", **body}, status_code=200 if ready else 503)

    return app
