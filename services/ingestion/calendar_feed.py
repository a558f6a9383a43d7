"""On-call shifts as an RFC 5545 calendar (built with the ``icalendar`` library).

One VEVENT per shift, in UTC; the UID is stable for a shift (rotation, person, start),
so a calendar app that refreshes the feed updates events instead of duplicating them.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar, Event

from shared.domain.oncall import Shift

FEED_WEEKS = 8
PRODID = "-//Incident Handling//On call//EN"


def _event(rotation: str, shift: Shift, summary: str, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"{rotation}/{shift.person}/{shift.start:%Y%m%dT%H%M%SZ}@incident-handling")
    event.add("dtstamp", stamp)
    event.add("dtstart", shift.start)
    event.add("dtend", shift.end)
    event.add("summary", summary)
    note = "an override" if shift.overridden else "the rotation's schedule"
    event.add("description", f"{shift.person} is primary on call for {rotation} ({note}).")
    event.add("categories", ["on-call", rotation])
    event.add("transp", "TRANSPARENT")  # on call is not busy: it must not block meetings
    return event


def calendar(title: str, shifts: list[tuple[str, Shift]], now: datetime, per_rotation: bool) -> bytes:
    """``shifts`` as (rotation, shift); a rotation's feed names the person, a person's feed the rotation."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", title)
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    for rotation, shift in shifts:
        who = f"{shift.person} ({rotation})" if per_rotation else rotation
        suffix = " (override)" if shift.overridden else ""
        cal.add_component(_event(rotation, shift, f"On call: {who}{suffix}", now))
    return cal.to_ical()


def horizon(now: datetime) -> datetime:
    return now + timedelta(weeks=FEED_WEEKS)
