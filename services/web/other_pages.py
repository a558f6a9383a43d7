"""Declare an incident, the on-call view, and the numbers at a glance."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shared.domain.organisation import Category, Severity

from .api import ApiRefusal
from .deps import api_for, console, form_with_csrf, redirect, refusal_page, render, signed_in
from .metrics_reader import read_numbers
from .sessions import Session

router = APIRouter()


def _declare_form(request: Request, session: Session, problem: ApiRefusal | None = None,
                  values: dict[str, str] | None = None) -> Response:
    categories = [c.value for c in Category if c is not Category.SECURITY or session.may("read_restricted")]
    return render(request, "declare.html", status=problem.status if problem else 200, problem=problem,
                  values=values or {}, severities=[s.value for s in Severity], categories=categories)


@router.get("/declare")
async def declare_form(request: Request, session: Session = Depends(signed_in)) -> Response:
    return _declare_form(request, session)


@router.post("/declare")
async def declare(request: Request, session: Session = Depends(signed_in)) -> Response:
    form = await form_with_csrf(request, session)
    body: dict[str, Any] = {"title": form.get("title", ""), "service": form.get("service", "")}
    body.update({k: form[k] for k in ("severity", "category", "impact", "commander") if form.get(k)})
    try:
        created = await api_for(request, session).post("/v1/incidents", body)
    except ApiRefusal as refusal:
        return _declare_form(request, session, refusal, form)
    return redirect(f"/incidents/{created['incident_id']}", request)


@router.get("/oncall")
async def oncall(request: Request, session: Session = Depends(signed_in)) -> Response:
    now = datetime.now(timezone.utc)
    teams = await console(request).oncall.teams(now)
    return render(request, "oncall.html", teams=teams, now=now)


@router.get("/numbers")
async def numbers(request: Request, session: Session = Depends(signed_in)) -> Response:
    c = console(request)
    api = api_for(request, session)
    try:
        # Side by side: the page waits for the slowest read, not for their sum.
        overdue, with_items, numbers_ = await asyncio.gather(
            api.get("/v1/incidents", params={"postmortem": "overdue", "limit": 100}),
            api.get("/v1/incidents", params={"postmortem": "open_action_items", "limit": 100}),
            read_numbers(c.metrics_http, c.settings.metrics_scrape_url, session.may("read_restricted")),
        )
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    items = [
        {**item, "incident_id": i["incident_id"], "incident_title": i["title"]}
        for i in with_items["incidents"] for item in (i.get("postmortem") or {}).get("open_action_items", [])
    ]
    items.sort(key=lambda item: (item.get("due_date") or "9999", item["incident_id"]))
    return render(request, "numbers.html", numbers=numbers_,
                  severities=[s.value for s in Severity], overdue=overdue["incidents"], overdue_total=overdue["total"],
                  items=items, window=c.org.metrics_window)
