"""Who is on call: rotation lookup with hand-off time, time zone and overrides."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .organisation import Rotation

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class OnCall:
    primary: str
    secondary: str


def _scheduled_index(rotation: Rotation, at: datetime) -> int:
    zone = ZoneInfo(rotation.time_zone)
    if rotation.length % _DAY == timedelta(0):
        # Whole-day shifts follow the wall clock: the hand-off stays at 09:00
        # local time across daylight-saving changes.
        local = at.astimezone(zone)
        shifted = local - timedelta(hours=rotation.handoff.hour, minutes=rotation.handoff.minute)
        days = (shifted.date() - rotation.start).days
        return days // (rotation.length // _DAY)
    begin = datetime.combine(rotation.start, rotation.handoff, tzinfo=zone)
    # Sub-day shifts count elapsed time. Both sides go to UTC: subtracting two
    # datetimes that share a tzinfo is wall-clock arithmetic, which would make the
    # answer depend on the zone the caller happened to pass ``at`` in.
    return int((at.astimezone(timezone.utc) - begin.astimezone(timezone.utc)) // rotation.length)


def shift_index(rotation: Rotation, at: datetime) -> int:
    """The scheduled shift ``at`` falls in (0 is the shift starting at ``rotation.start``)."""
    return _scheduled_index(rotation, at)


def shift_start(rotation: Rotation, index: int) -> datetime:
    """When scheduled shift ``index`` begins, in UTC (the inverse of ``shift_index``)."""
    zone = ZoneInfo(rotation.time_zone)
    if rotation.length % _DAY == timedelta(0):
        day = rotation.start + timedelta(days=index * (rotation.length // _DAY))
        return datetime.combine(day, rotation.handoff, tzinfo=zone).astimezone(timezone.utc)
    begin = datetime.combine(rotation.start, rotation.handoff, tzinfo=zone).astimezone(timezone.utc)
    return begin + index * rotation.length


def on_call(rotation: Rotation, at: datetime) -> OnCall:
    """The primary and secondary responders at ``at`` (an aware datetime)."""
    people = rotation.participants
    index = _scheduled_index(rotation, at) % len(people)
    scheduled = people[index]
    following = people[(index + 1) % len(people)]
    for override in rotation.overrides:
        if override.start <= at < override.end:
            secondary = scheduled if scheduled != override.person else following
            return OnCall(primary=override.person, secondary=secondary)
    return OnCall(primary=scheduled, secondary=following)
