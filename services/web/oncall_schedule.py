"""Who is on call, from the organisation's rotations (shared/domain/rotations.py decides who).

The console reads the organisation file today. When the API serves ``GET /v1/oncall``
(with overrides made at run time), an ``OnCallSource`` that reads it replaces
``ConfigOnCall`` in app.py; the page only knows the ``TeamOnCall`` shape below.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.domain.organisation import EscalationPolicy, Organisation, Rotation, Target
from shared.domain.rotations import on_call

_DAY = timedelta(days=1)
STRIP_DAYS = 14


@dataclass(frozen=True)
class Shift:
    primary: str
    secondary: str
    start: datetime
    end: datetime
    override: bool


@dataclass(frozen=True)
class LevelView:
    after: timedelta  # when this level is paged if nobody acknowledged
    timeout: timedelta
    targets: list[str]


@dataclass(frozen=True)
class TeamOnCall:
    team: str
    rotation: str | None
    time_zone: str
    now: Shift | None
    upcoming: list[Shift]  # the next hand-offs
    strip: list[Shift]  # the next STRIP_DAYS days
    policy: str | None
    levels: list[LevelView]
    repeat: int


class OnCallSource(Protocol):
    async def teams(self, now: datetime) -> list[TeamOnCall]: ...


def _scheduled_handoffs(rotation: Rotation, start: datetime, end: datetime) -> list[datetime]:
    zone = ZoneInfo(rotation.time_zone)
    out: list[datetime] = []
    if rotation.length % _DAY == timedelta(0):
        # Whole-day shifts hand off at the wall-clock time, across daylight-saving changes.
        step = rotation.length // _DAY
        first = (start.astimezone(zone).date() - rotation.start).days // step - 1
        k = first
        while True:
            day = rotation.start + timedelta(days=k * step)
            at = datetime.combine(day, rotation.handoff, tzinfo=zone).astimezone(timezone.utc)
            if at > end:
                return out
            if at >= start:
                out.append(at)
            k += 1
    begin = datetime.combine(rotation.start, rotation.handoff, tzinfo=zone).astimezone(timezone.utc)
    k = int((start - begin) // rotation.length)
    while (at := begin + k * rotation.length) <= end:
        if at >= start:
            out.append(at)
        k += 1
    return out


def shifts(rotation: Rotation, start: datetime, end: datetime) -> list[Shift]:
    """Who holds the rotation from ``start`` to ``end``, as consecutive shifts."""
    edges = {start, end, *_scheduled_handoffs(rotation, start, end)}
    for override in rotation.overrides:
        edges.update(t for t in (override.start, override.end) if start < t < end)
    ordered = sorted(edges)
    out: list[Shift] = []
    for a, b in zip(ordered, ordered[1:]):
        who = on_call(rotation, a)
        overridden = any(o.start <= a < o.end for o in rotation.overrides)
        if out and (out[-1].primary, out[-1].secondary, out[-1].override) == (who.primary, who.secondary, overridden):
            out[-1] = Shift(out[-1].primary, out[-1].secondary, out[-1].start, b, overridden)
        else:
            out.append(Shift(who.primary, who.secondary, a, b, overridden))
    return out


def _target(target: Target, rotation: str | None, team: str) -> str:
    if target.type == "person":
        return str(target.person)
    if target.type == "team_channel":
        return f"the {target.team or team} channel"
    return f"{target.position} of {target.rotation or rotation or 'the team rotation'}"


def _levels(policy: EscalationPolicy, rotation: str | None, team: str) -> list[LevelView]:
    after, out = timedelta(0), []
    for level in policy.levels:
        out.append(LevelView(after, level.timeout, [_target(t, rotation, team) for t in level.targets]))
        after += level.timeout
    return out


class ConfigOnCall:
    """On call as the organisation file describes it (overrides from the file)."""

    def __init__(self, org: Organisation) -> None:
        self._org = org

    async def teams(self, now: datetime) -> list[TeamOnCall]:
        org, out = self._org, []
        day_start = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        for name, team in sorted(org.teams.items()):
            rotation = org.rotations.get(team.rotation) if team.rotation else None
            policy_name = team.escalation_policy or org.default_escalation_policy
            policy = org.escalation_policies.get(policy_name) if policy_name else None
            current, upcoming, strip = None, [], []
            if rotation is not None:
                ahead = shifts(rotation, now, now + timedelta(days=STRIP_DAYS * 2))
                current, upcoming = ahead[0], ahead[1:4]
                # The current shift began before now: look back one shift length for its start.
                began = shifts(rotation, now - rotation.length - _DAY, now + timedelta(seconds=1))
                current = Shift(current.primary, current.secondary, began[-1].start, current.end, current.override)
                strip = shifts(rotation, day_start, day_start + timedelta(days=STRIP_DAYS))
            out.append(TeamOnCall(
                team=name, rotation=team.rotation, time_zone=rotation.time_zone if rotation else "UTC",
                now=current, upcoming=upcoming, strip=strip, policy=policy_name,
                levels=_levels(policy, team.rotation, name) if policy else [], repeat=policy.repeat if policy else 0,
            ))
        return out
