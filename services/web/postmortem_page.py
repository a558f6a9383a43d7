"""The postmortem editor: required sections, action items (owner, due date, status), complete."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from shared.domain.ids import INCIDENT_ID

from .api import ApiRefusal, CommandPending, incident_path
from .deps import api_for, console, form_with_csrf, is_htmx, redirect, refusal_page, render, signed_in
from .offers import offers_for
from .sessions import Session

router = APIRouter(prefix="/incidents")
IncidentId = Path(pattern=INCIDENT_ID.pattern, max_length=40)
SECTIONS = ("summary", "impact", "root_cause", "contributing_factors", "what_went_well")
ITEM_STATUSES = ("open", "in_progress", "done", "cancelled")
PRIORITIES = ("P1", "P2", "P3", "P4")


def _sections(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {name: form.get(name, "") for name in SECTIONS if name in form}
    if "timeline" in form:
        body["timeline"] = [line.strip() for line in form["timeline"].splitlines() if line.strip()]
    if form.get("owner"):
        body["owner"] = form["owner"]
    return body


def _item(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"title": form.get("title", ""), "owner": form.get("owner", "")}
    if form.get("due_date"):
        body["due_date"] = form["due_date"]
    if form.get("priority"):
        body["priority"] = form["priority"]
    return body


async def _editor(request: Request, session: Session, incident_id: str, problem: ApiRefusal | None = None,
                  saved: str | None = None) -> Response:
    try:
        view = await api_for(request, session).get(incident_path(incident_id))
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    org = console(request).org
    template = "postmortem_main.html" if is_htmx(request) else "postmortem.html"
    return render(
        request, template, status=problem.status if problem else 200, problem=problem, saved=saved,
        incident=view, postmortem=view.get("postmortem"), offers=offers_for(view, session, org),
        sections=SECTIONS, required=set(org.postmortem.required_sections), item_statuses=ITEM_STATUSES,
        priorities=PRIORITIES,
    )


@router.get("/{incident_id}/postmortem")
async def editor(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    return await _editor(request, session, incident_id)


async def _send(request: Request, session: Session, incident_id: str, method: str, path: tuple[str, ...],
                body: dict[str, Any], saved: str) -> Response:
    try:
        await api_for(request, session).request(method, incident_path(incident_id, "postmortem", *path), json=body)
    except CommandPending as accepted:
        return refusal_page(request, accepted)
    except ApiRefusal as refusal:
        return await _editor(request, session, incident_id, problem=refusal)
    if not is_htmx(request):
        return redirect(f"/incidents/{incident_id}/postmortem")
    return await _editor(request, session, incident_id, saved=saved)


@router.post("/{incident_id}/postmortem")
async def save_sections(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    form = await form_with_csrf(request, session)
    return await _send(request, session, incident_id, "PUT", (), _sections(form), "Postmortem saved.")


@router.post("/{incident_id}/postmortem/action-items")
async def add_item(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    form = await form_with_csrf(request, session)
    return await _send(request, session, incident_id, "POST", ("action-items",), _item(form), "Action item added.")


@router.post("/{incident_id}/postmortem/action-items/{item_id}")
async def update_item(request: Request, item_id: str = Path(pattern=r"^AI-\d+$"), incident_id: str = IncidentId,
                      session: Session = Depends(signed_in)) -> Response:
    form = await form_with_csrf(request, session)
    body = {k: form[k] for k in ("status", "owner", "due_date", "priority", "title") if form.get(k)}
    return await _send(request, session, incident_id, "PATCH", ("action-items", item_id), body,
                       f"{item_id} updated.")


@router.post("/{incident_id}/postmortem/complete")
async def complete(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    await form_with_csrf(request, session)
    return await _send(request, session, incident_id, "POST", ("complete",), {}, "Postmortem completed.")
