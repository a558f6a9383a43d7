"""Who is on call: rotation lookup with hand-off time, time zone and overrides."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from .organisation import Rotation

_DAY = timedelta(days=1)
# The instants this arithmetic answers for: datetime's own range less two days at each end, room
# for a zone's offset and a hand-off time. A client may send any RFC 3339 time (years 1 to 9999,
# any offset), and one near either end would overflow a local-time conversion or a hand-off
# sum; it is answered as at the nearest bound instead (a query, never a refusal).
EARLIEST = datetime.min.replace(tzinfo=timezone.utc) + 2 * _DAY
LATEST = datetime.max.replace(tzinfo=timezone.utc) - 2 * _DAY


@dataclass(frozen=True)
class OnCall:
    primary: str
    secondary: str


def bounded(at: datetime) -> datetime:
    """``at`` in UTC, moved to EARLIEST or LATEST if it lies beyond them (aware datetimes only)."""
    if at < EARLIEST:
        return EARLIEST
    if at > LATEST:
        return LATEST
    return at.astimezone(timezone.utc)


def after(at: datetime, delta: timedelta) -> datetime:
    """``at + delta``, stopping at LATEST rather than overflowing."""
    try:
        return min(bounded(at) + delta, LATEST)
    except OverflowError:
        return LATEST


def _scheduled_index(rotation: Rotation, at: datetime) -> int:
    at = bounded(at)
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
    """When scheduled shift ``index`` begins, in UTC (the inverse of ``shift_index``).

    A shift that would begin beyond the range answered for begins at its bound.
    """
    zone = ZoneInfo(rotation.time_zone)
    try:
        if rotation.length % _DAY == timedelta(0):
            day = rotation.start + timedelta(days=index * (rotation.length // _DAY))
            return bounded(datetime.combine(day, rotation.handoff, tzinfo=zone))
        begin = datetime.combine(rotation.start, rotation.handoff, tzinfo=zone).astimezone(timezone.utc)
        return bounded(begin + index * rotation.length)
    except OverflowError:
        return LATEST if index > 0 else EARLIEST


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
