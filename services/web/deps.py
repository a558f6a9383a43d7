"""What every console route shares: the running console, the signed-in session, CSRF, rendering."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from shared.domain.organisation import Organisation
from shared.settings import Settings

from .api import ApiRefusal, UserApi
from .audit_feed import AuditFeed
from .oncall_schedule import OnCallSource
from .rendering import times_for
from .sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Session, SessionStore, same_secret


@dataclass
class Console:
    settings: Settings
    org: Organisation
    api_http: httpx.AsyncClient
    metrics_http: httpx.AsyncClient
    sessions: SessionStore
    feed: AuditFeed
    templates: Jinja2Templates
    oncall: OnCallSource


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page (and back afterwards)."""


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


def console(request: Request) -> Console:
    return request.app.state.console


def signed_in(request: Request) -> Session:
    session = console(request).sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired()
    request.state.session = session
    return session


def api_for(request: Request, session: Session) -> UserApi:
    return UserApi(console(request).api_http, session.token)


async def form_with_csrf(request: Request, session: Session) -> dict[str, str]:
    """The submitted form, once its CSRF token (field or htmx header) matches the session's."""
    form = await request.form()
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not same_secret(given if isinstance(given, str) else None, session.csrf):
        raise CsrfRefused()
    return {key: value.strip() for key, value in form.items() if isinstance(value, str) and key != CSRF_FIELD}


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    c = console(request)
    return c.templates.TemplateResponse(
        request, template,
        {"session": session, "t": times_for(request), "org": c.org, "csrf_field": CSRF_FIELD, **context},
        status_code=status,
    )


def redirect(url: str, request: Request | None = None) -> Response:
    if request is not None and is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def sign_in_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/sign-in?next={quote(target, safe='')}"


def refusal_page(request: Request, refusal: ApiRefusal) -> HTMLResponse:
    page = render(request, "problem.html", status=refusal.status, refusal=refusal)
    if refusal.retry_after:
        page.headers["Retry-After"] = refusal.retry_after
    return page
