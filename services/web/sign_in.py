"""Sign in with a user token (checked by the API as GET /v1/me), and sign out."""
from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .api import ApiRefusal, UserApi
from .deps import console, form_with_csrf, redirect, render, signed_in
from .sessions import CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE, Session, same_secret

router = APIRouter()


def _local(next_url: str | None) -> str:
    # Only a path on this console: never an open redirect to another site.
    if next_url and next_url.startswith("/") and not next_url.startswith("//") and "\\" not in next_url:
        return next_url
    return "/"


def _sign_in_page(request: Request, problem: str | None = None, status: int = 200,
                  next_url: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "sign_in.html", status=status, problem=problem, sign_in_token=token,
                      next_url=_local(next_url or request.query_params.get("next")))
    response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", path="/sign-in",
                        secure=console(request).settings.web_cookie_secure, max_age=3600)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    c = console(request)
    form = await request.form()
    next_url = _local(str(form.get("next") or "/"))
    given = form.get(CSRF_FIELD)
    if not same_secret(given if isinstance(given, str) else None, request.cookies.get(SIGN_IN_COOKIE) or ""):
        return _sign_in_page(request, "The sign-in form expired or was not sent from this console; try again.", 403,
                             next_url)
    token = str(form.get("token") or "").strip()
    if not token:
        return _sign_in_page(request, "Paste your user token to sign in.", 400, next_url)
    try:
        me = await UserApi(c.api_http, token).get("/v1/me")
    except ApiRefusal as refusal:
        problem = {
            401: "That token is not valid, or it has been revoked.",
            403: "That credential cannot sign in: use a user token, not an integration key.",
        }.get(refusal.status, f"The API could not check the token: {refusal.message}")
        return _sign_in_page(request, problem, refusal.status if refusal.status < 500 or refusal.status == 503 else 502,
                             next_url)
    session = c.sessions.create(token, me["name"], me["role"], me["permissions"])
    response = redirect(next_url)
    response.set_cookie(SESSION_COOKIE, session.session_id, httponly=True, samesite="strict", path="/",
                        secure=c.settings.web_cookie_secure)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: Session = Depends(signed_in)) -> Response:
    await form_with_csrf(request, session)
    console(request).sessions.drop(session.session_id)
    response = redirect("/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
