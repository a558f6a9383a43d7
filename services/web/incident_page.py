"""The incident page: header, playbook, alerts, timeline, log, evidence, and every command."""
from __future__ import annotations

import json
from typing import Any, Callable

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from shared.domain.ids import INCIDENT_ID

from .api import ApiRefusal, CommandPending, incident_path
from .deps import api_for, console, form_with_csrf, is_htmx, redirect, refusal_page, render, signed_in
from .offers import offers_for
from .sessions import Session

router = APIRouter(prefix="/incidents")
IncidentId = Path(pattern=INCIDENT_ID.pattern, max_length=40)


def _optional(form: dict[str, str], *names: str) -> dict[str, str]:
    return {name: form[name] for name in names if form.get(name)}


def _mitigation(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"description": form.get("description", "")}
    if form.get("playbook_step", "").isdigit():
        body["playbook_step"] = int(form["playbook_step"])
    return body


def _evidence(form: dict[str, str]) -> dict[str, Any]:
    return {"title": form.get("title", ""), **_optional(form, "url", "content")}


# Each command the page can send: the API path under the incident, and its body from the form.
COMMANDS: dict[str, tuple[str, Callable[[dict[str, str]], dict[str, Any]]]] = {
    "acknowledge": ("acknowledge", lambda f: _optional(f, "note")),
    "post_update": ("updates", lambda f: {"message": f.get("message", "")}),
    "add_mitigation": ("mitigations", _mitigation),
    "add_evidence": ("evidence", _evidence),
    "change_severity": ("severity", lambda f: {"severity": f.get("severity", ""), "reason": f.get("reason", "")}),
    "change_commander": ("commander", lambda f: {"commander": f.get("commander", ""), **_optional(f, "reason")}),
    "resolve": ("resolve", lambda f: _optional(f, "note")),
    "close": ("close", lambda f: {"verification": f.get("verification", "")}),
    "reopen": ("reopen", lambda f: {"reason": f.get("reason", "")}),
}


def timeline(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Audit events and the communication log (notifications sent, held back, failed) in one order."""
    entries = [{**e, "entry": "event"} for e in view.get("timeline", [])]
    entries += [{**m, "entry": "message"} for m in view.get("communication_log", []) if m.get("direction") == "notification"]
    return sorted(entries, key=lambda e: (e.get("occurred_at") or "", e.get("version") or 0))


def offers_key(offers) -> str:
    return ",".join(sorted(offers.allowed))


def _page_context(request: Request, session: Session, view: dict[str, Any]) -> dict[str, Any]:
    offers = offers_for(view, session, console(request).org)
    return {"incident": view, "offers": offers, "offers_key": offers_key(offers), "entries": timeline(view)}


async def _read(request: Request, session: Session, incident_id: str) -> dict[str, Any]:
    return await api_for(request, session).get(incident_path(incident_id))


@router.get("/{incident_id}")
async def incident_page(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    try:
        view = await _read(request, session, incident_id)
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    return render(request, "incident.html", **_page_context(request, session, view))


@router.get("/{incident_id}/live")
async def live_fragments(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    """What changed, as out-of-band fragments; the command forms only when the offers changed,
    so a live update never wipes what someone is typing."""
    try:
        view = await _read(request, session, incident_id)
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    context = _page_context(request, session, view)
    context["with_actions"] = request.query_params.get("shown") != context["offers_key"]
    return render(request, "incident_live.html", **context)


@router.post("/{incident_id}/commands/{kind}")
async def run_command(request: Request, kind: str, incident_id: str = IncidentId,
                      session: Session = Depends(signed_in)) -> Response:
    form = await form_with_csrf(request, session)
    if kind not in COMMANDS:
        return refusal_page(request, ApiRefusal(404, f"there is no command {kind!r}"))
    path, body = COMMANDS[kind]
    api = api_for(request, session)
    problem = None
    try:
        view = await api.post(incident_path(incident_id, path), body(form))
    except CommandPending as accepted:
        return refusal_page(request, accepted)  # the incident cannot be read back until the database returns
    except ApiRefusal as refusal:
        problem = refusal
        try:
            view = await _read(request, session, incident_id)
        except ApiRefusal as unreadable:
            return refusal_page(request, unreadable)
    if problem is None and not is_htmx(request):
        return redirect(f"/incidents/{incident_id}")
    status = problem.status if problem else 200
    template = "incident_main.html" if is_htmx(request) else "incident.html"
    return render(request, template, status=status, problem=problem, **_page_context(request, session, view))


@router.get("/{incident_id}/export")
async def export(request: Request, incident_id: str = IncidentId, session: Session = Depends(signed_in)) -> Response:
    try:
        bundle = await api_for(request, session).get(incident_path(incident_id, "export"))
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    return Response(
        json.dumps(bundle, indent=2, ensure_ascii=False), media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{incident_id}-export.json"'},
    )
