"""Escalation policies as data: the frozen plan, who a level pages, and what a deadline does."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from .incident import EscalationLevelPlan, EscalationPlan
from .organisation import Organisation, Target
from .rotations import on_call


def plan_for(org: Organisation, team: str, service: str) -> EscalationPlan | None:
    """The policy that applies (service, then team, then the default), frozen as data."""
    service_config = org.services.get(service)
    team_config = org.teams.get(team)
    name = (
        (service_config.escalation_policy if service_config else None)
        or (team_config.escalation_policy if team_config else None)
        or org.default_escalation_policy
    )
    if name is None:
        return None
    policy = org.escalation_policies[name]
    return EscalationPlan(
        policy=name,
        levels=[
            EscalationLevelPlan(timeout_seconds=level.timeout.total_seconds(), targets=list(level.targets))
            for level in policy.levels
        ],
        repeat=policy.repeat,
        rotation=team_config.rotation if team_config else None,
    )


def resolve_target(target: Target, org: Organisation, team: str, rotation: str | None, now: datetime) -> str:
    """``person:<name>`` or ``team:<name>`` for one target at ``now``."""
    if target.type == "person":
        return f"person:{target.person}"
    if target.type == "team_channel":
        return f"team:{target.team or team}"
    rotation_name = target.rotation or rotation
    if rotation_name is None or rotation_name not in org.rotations:
        return f"team:{team}"  # no rotation to ask: page the team channel instead
    shift = on_call(org.rotations[rotation_name], now)
    return f"person:{shift.primary if target.position == 'primary' else shift.secondary}"


class Escalation(BaseModel):
    """One incident's running escalation, kept as data in the escalation table."""

    incident_id: str
    team: str
    plan: EscalationPlan
    generation: int = 0  # the incident's reopen count: a reopen starts a new generation
    round: int = 0
    level: int = 0
    deadline: datetime
    status: Literal["active", "stopped", "failed"] = "active"


@dataclass(frozen=True)
class Page:
    round: int
    level: int
    timeout: timedelta


@dataclass(frozen=True)
class Exhausted:
    round: int


def start(incident_id: str, team: str, plan: EscalationPlan, generation: int, now: datetime) -> tuple[Escalation, Page]:
    first = plan.levels[0]
    state = Escalation(
        incident_id=incident_id,
        team=team,
        plan=plan,
        generation=generation,
        deadline=now + timedelta(seconds=first.timeout_seconds),
    )
    return state, Page(round=0, level=0, timeout=timedelta(seconds=first.timeout_seconds))


def on_deadline(state: Escalation, now: datetime) -> tuple[Escalation, Page | Exhausted | None]:
    """What the deadline means now: page the next level, give up, or nothing yet."""
    if state.status != "active" or now < state.deadline:
        return state, None
    level, round_ = state.level + 1, state.round
    if level >= len(state.plan.levels):
        level, round_ = 0, round_ + 1
    if round_ > state.plan.repeat:
        return state.model_copy(update={"status": "failed"}), Exhausted(round=state.round)
    timeout = timedelta(seconds=state.plan.levels[level].timeout_seconds)
    # Counted from now, not from the missed deadline: after an outage the next
    # level still gets its whole timeout instead of being paged at once.
    advanced = state.model_copy(update={"level": level, "round": round_, "deadline": now + timeout})
    return advanced, Page(round=round_, level=level, timeout=timeout)


def stop(state: Escalation) -> Escalation:
    return state if state.status != "active" else state.model_copy(update={"status": "stopped"})
