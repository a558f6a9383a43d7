"""The calendar feeds: RFC 5545 built with icalendar and parsed back, and what a feed token request names."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from icalendar import Calendar
from pydantic import ValidationError

from services.ingestion.calendar_feed import calendar, horizon
from services.ingestion.feeds_api import FeedTokenRequest, feed_path, people
from shared.domain.oncall import RotationOverride, Shift, current_start, shifts, with_overrides

NOW = datetime(2026, 3, 4, 12, tzinfo=timezone.utc)


def _events(body: bytes) -> list:
    parsed = Calendar.from_ical(body)
    assert str(parsed["version"]) == "2.0" and str(parsed["prodid"]).startswith("-//Incident Handling")
    return list(parsed.walk("VEVENT"))


def test_eight_weeks_of_a_rotation_with_its_override(org):
    override = RotationOverride(override_id="ovr_000000000001", rotation="payments-oncall", person="frank",
                                start=NOW, end=NOW + timedelta(hours=6), created_by="alice", created_at=NOW)
    rotation = with_overrides(org, [override]).rotations["payments-oncall"]
    found = shifts(rotation, current_start(rotation, NOW), horizon(NOW))
    events = _events(calendar("On call: payments-oncall", [("payments-oncall", s) for s in found], NOW, True))
    assert [str(e["summary"]) for e in events[:3]] == [
        "On call: frank (payments-oncall) (override)", "On call: dave (payments-oncall)",
        "On call: erin (payments-oncall)"]
    assert (events[0].decoded("dtstart"), events[0].decoded("dtend")) == (NOW, NOW + timedelta(hours=6))
    assert events[-1].decoded("dtend") >= NOW + timedelta(weeks=8)
    assert all(str(e["transp"]) == "TRANSPARENT" for e in events)
    assert len({str(e["uid"]) for e in events}) == len(events)


def test_a_shifts_uid_is_stable_across_refreshes(org):
    shift = Shift("dave", NOW, NOW + timedelta(days=7))
    first = _events(calendar("c", [("payments-oncall", shift)], NOW, True))
    later = _events(calendar("c", [("payments-oncall", shift)], NOW + timedelta(hours=3), True))
    assert str(first[0]["uid"]) == str(later[0]["uid"]) == "payments-oncall/dave/20260304T120000Z@incident-handling"


def test_a_persons_feed_names_the_rotation():
    (event,) = _events(calendar("On call: dave", [("payments-oncall", Shift("dave", NOW, NOW + timedelta(days=1)))],
                                NOW, per_rotation=False))
    assert str(event["summary"]) == "On call: payments-oncall"


def test_an_empty_feed_is_still_a_calendar():
    assert _events(calendar("On call: nobody", [], NOW, True)) == []


def test_a_feed_token_names_exactly_one_feed():
    assert FeedTokenRequest(rotation="r").rotation == "r"
    assert FeedTokenRequest(person="p").person == "p"
    for body in ({}, {"rotation": "r", "person": "p"}, {"rotation": "r", "extra": 1}):
        with pytest.raises(ValidationError):
            FeedTokenRequest.model_validate(body)


def test_feed_paths_and_the_people_a_feed_can_be_for(org):
    assert feed_path("rotation", "payments-oncall") == "/v1/rotations/payments-oncall.ics"
    assert feed_path("person", "a b") == "/v1/people/a%20b.ics"
    assert {"alice", "frank", "heidi"} <= people(org)
