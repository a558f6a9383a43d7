"""Which commands the console offers on an incident: those the lifecycle would accept now
and the signed-in role may send. The lifecycle itself is asked (``decide`` on the
incident as the API shows it), so the console never keeps a second copy of its rules;
the API still decides, and its reason is shown if a command is refused anyway.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from pydantic import ValidationError

from shared.domain import commands as c
from shared.domain.decisions import Context, NotFound, Rejected
from shared.domain.incident import Incident
from shared.domain.lifecycle import decide
from shared.domain.organisation import Organisation, Severity

from .sessions import Session

# Each command: the permission its API route needs, and a harmless example of it.
_PROBES: dict[str, tuple[str, Callable[[Incident], Any]]] = {
    "acknowledge": ("respond", lambda i: c.Acknowledge()),
    "post_update": ("update", lambda i: c.PostUpdate(message="?")),
    "add_mitigation": ("respond", lambda i: c.AddMitigation(description="?")),
    "add_evidence": ("update", lambda i: c.AddEvidence(title="?", url="https://example.invalid")),
    "change_severity": ("respond", lambda i: c.ChangeSeverity(
        severity=next(s for s in Severity if s is not i.severity), reason="?")),
    "change_commander": ("respond", lambda i: c.ChangeCommander(commander=f"{i.commander or ''}?")),
    "resolve": ("respond", lambda i: c.Resolve()),
    "close": ("respond", lambda i: c.Close(verification="?")),
    "reopen": ("respond", lambda i: c.Reopen(reason="?")),
    "edit_postmortem": ("postmortem", lambda i: c.EditPostmortem(summary="?")),
    "add_action_item": ("postmortem", lambda i: c.AddActionItem(title="?", owner="?")),
    "complete_postmortem": ("postmortem", lambda i: c.CompletePostmortem()),
}


@dataclass(frozen=True)
class Offers:
    allowed: frozenset[str]
    # Why the lifecycle would refuse a command right now (for the ones worth explaining).
    reasons: dict[str, str]
    may_export: bool

    def __contains__(self, kind: str) -> bool:
        return kind in self.allowed


def incident_from_view(view: dict[str, Any]) -> Incident:
    """The API's incident record as the domain model (alerts are not needed to decide)."""
    return Incident.model_validate({**view, "alerts": {}, "milestones": []})


def offers_for(view: dict[str, Any], session: Session, org: Organisation) -> Offers:
    try:
        state = incident_from_view(view)
    except ValidationError:
        # A record this console does not understand: offer nothing rather than guess.
        return Offers(frozenset(), {}, session.may("export"))
    ctx = Context(now=datetime.now(timezone.utc), org=org, actor=session.name)
    allowed, reasons = set(), {}
    for kind, (permission, example) in _PROBES.items():
        try:
            decide(state, example(state), ctx)
        except (Rejected, NotFound) as refusal:
            reasons[kind] = str(refusal)
            continue
        if session.may(permission):
            allowed.add(kind)
    return Offers(frozenset(allowed), reasons, session.may("export"))
