"""Who is on call at runtime: the rotations of the organisation file plus the overrides people
made through the API, as shifts (for ``GET /v1/oncall`` and the calendar feeds).

Overrides made at runtime are stored outside the YAML file; ``with_overrides`` folds them
into the rotations, ahead of the file's own, so every rule that asks ``on_call`` (the
commander of a new incident, the person an escalation level pages) honours them. Where
overrides overlap, the newest wins, as in PagerDuty and GoAlert.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .organisation import Organisation, Override, Rotation
from .rotations import after, bounded, on_call, shift_index, shift_start

MAX_SHIFTS = 5000  # a feed of 8 weeks of 10-minute shifts is long enough for anyone
HORIZON = timedelta(days=366)  # how far "who is next" looks


class RotationOverride(BaseModel):
    """An override made at runtime (API or CLI): stored in PostgreSQL and on a compacted topic."""

    model_config = ConfigDict(frozen=True)

    override_id: str
    rotation: str
    person: str = Field(min_length=1, max_length=200)
    start: datetime
    end: datetime
    reason: str | None = None
    created_by: str
    created_at: datetime
    deleted_by: str | None = None
    deleted_at: datetime | None = None
    version: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> "RotationOverride":
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset (RFC 3339)")
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self

    @property
    def active(self) -> bool:
        return self.deleted_at is None


def with_overrides(org: Organisation, overrides: Iterable[RotationOverride]) -> Organisation:
    """The organisation whose rotations carry the runtime overrides, newest first, before the file's."""
    extra: dict[str, list[RotationOverride]] = {}
    for override in overrides:
        if override.active and override.rotation in org.rotations:
            extra.setdefault(override.rotation, []).append(override)
    if not extra:
        return org
    rotations = dict(org.rotations)
    for name, items in extra.items():
        items.sort(key=lambda o: (o.created_at, o.override_id), reverse=True)
        made = [Override(person=o.person, start=o.start, end=o.end) for o in items]
        rotations[name] = rotations[name].model_copy(update={"overrides": [*made, *rotations[name].overrides]})
    return org.model_copy(update={"rotations": rotations})


@dataclass(frozen=True)
class Shift:
    """A stretch of time one person is primary on call."""

    person: str
    start: datetime
    end: datetime
    overridden: bool = False


def _overriding(rotation: Rotation, at: datetime) -> bool:
    return any(o.start <= at < o.end for o in rotation.overrides)


def current_start(rotation: Rotation, at: datetime) -> datetime:
    """Where the stretch going on at ``at`` began: its scheduled hand-off, or the override's start."""
    candidates = [shift_start(rotation, shift_index(rotation, at))]
    candidates += [o.start for o in rotation.overrides if o.start <= at < o.end]
    found = shifts(rotation, min(candidates), after(at, timedelta(microseconds=1)))
    return found[-1].start if found else min(candidates)  # empty only at the range's last instant


def shifts(rotation: Rotation, start: datetime, end: datetime, limit: int = MAX_SHIFTS) -> list[Shift]:
    """The primary's shifts between ``start`` and ``end`` (clipped to them), overrides applied."""
    if end <= start:
        return []
    points = {start, end}
    index = shift_index(rotation, start)
    previous = start
    while len(points) <= limit:
        index += 1
        handoff = shift_start(rotation, index)
        if handoff >= end or handoff <= previous:  # past the end, or held at the range's bound
            break
        points.add(handoff)
        previous = handoff
    for override in rotation.overrides:
        points.update(t for t in (override.start, override.end) if start < t < end)
    ordered = sorted(points)
    out: list[Shift] = []
    for begin, finish in zip(ordered, ordered[1:]):
        shift = Shift(on_call(rotation, begin).primary, begin, finish, _overriding(rotation, begin))
        last = out[-1] if out else None
        if last is not None and (last.person, last.overridden) == (shift.person, shift.overridden):
            out[-1] = Shift(last.person, last.start, finish, last.overridden)
        else:
            out.append(shift)
    return out[:limit]


@dataclass(frozen=True)
class OnCallNow:
    rotation: str
    primary: str
    secondary: str
    since: datetime
    until: datetime
    overridden: bool
    next: str | None
    next_until: datetime | None


def now_and_next(name: str, rotation: Rotation, at: datetime) -> OnCallNow:
    """Who is primary at ``at``, until when (the next change of person), and who comes next.

    An ``at`` beyond the range the rotation arithmetic answers for is taken at its bound.
    """
    at = bounded(at)
    who = on_call(rotation, at)
    step = max(min(rotation.length, HORIZON) * 2, timedelta(days=1))
    while True:
        horizon = after(at, min(step, HORIZON))
        ahead = shifts(rotation, at, horizon)
        changes = [shift for shift in ahead if shift.person != who.primary]
        if changes or step >= HORIZON:
            break
        step *= 2  # a long override or a one-person rotation: look further, not step by step
    until = changes[0].start if changes else horizon
    following = changes[0] if changes else None
    next_until = None
    if following is not None:
        rest = [s for s in ahead if s.start >= following.start]
        later = next((s for s in rest if s.person != following.person), None)
        next_until = later.start if later is not None else None
    return OnCallNow(
        rotation=name, primary=who.primary, secondary=who.secondary, since=current_start(rotation, at),
        until=until, overridden=_overriding(rotation, at), next=following.person if following else None,
        next_until=next_until,
    )


@dataclass(frozen=True)
class Row:
    team: str | None
    now: OnCallNow


def oncall_table(org: Organisation, at: datetime) -> list[Row]:
    """One row per team with a rotation, and one per rotation no team names (team None)."""
    rows = [Row(team, now_and_next(config.rotation, org.rotations[config.rotation], at))
            for team, config in sorted(org.teams.items()) if config.rotation]
    named = {config.rotation for config in org.teams.values()}
    rows += [Row(None, now_and_next(name, rotation, at))
             for name, rotation in sorted(org.rotations.items()) if name not in named]
    return rows


def person_shifts(org: Organisation, person: str, start: datetime, end: datetime) -> list[tuple[str, Shift]]:
    """Every shift ``person`` is primary in, across the rotations, in time order."""
    found = [(name, shift) for name, rotation in org.rotations.items()
             for shift in shifts(rotation, start, end) if shift.person == person]
    return sorted(found, key=lambda item: (item[1].start, item[0]))
