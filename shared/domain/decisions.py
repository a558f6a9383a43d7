"""What every decision shares: the context it is made in, and the two ways to say no."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .incident import Incident, IncidentStatus
from .organisation import Organisation


class Rejected(Exception):
    """The lifecycle forbids the command; the message says why (answered as 409)."""


class NotFound(Exception):
    """The command names an incident that does not exist (answered as 404)."""


@dataclass(frozen=True)
class Context:
    now: datetime
    org: Organisation
    actor: str


def require(state: Incident, allowed: tuple[IncidentStatus, ...], action: str) -> None:
    if state.status not in allowed:
        names = ", ".join(s.value for s in allowed)
        raise Rejected(f"cannot {action} an incident that is {state.status.value} (allowed from: {names})")
