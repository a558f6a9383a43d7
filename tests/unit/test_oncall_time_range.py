"""Who is on call at any instant a client can write: years 1 to 9999, any offset, any rotation.

``GET /v1/oncall?at=0001-01-01T00:01:00Z`` once answered 500 (an OverflowError in the hand-off
arithmetic), found by the schemathesis volume run. An RFC 3339 ``date-time`` has no range the
OpenAPI document could state, so the rules answer every instant rather than refuse some.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.domain.oncall import current_start, now_and_next, shifts
from shared.domain.organisation import Override, Rotation
from shared.domain.rotations import EARLIEST, LATEST, bounded, on_call, shift_start

UTC = timezone.utc
FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)

# The zones at the ends of the offsets (UTC-12 and UTC+14) and one with daylight saving.
ZONES = ["UTC", "Etc/GMT+12", "Pacific/Kiritimati", "America/New_York"]
LENGTHS = [timedelta(minutes=10), timedelta(hours=12), timedelta(days=1), timedelta(days=7),
           timedelta(days=365 * 5000), timedelta(days=999_999_999)]

instants = st.datetimes(min_value=datetime.min, max_value=datetime.max,
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]))
rotations = st.builds(
    lambda people, length, zone, start, handoff: Rotation(participants=people, length=length, time_zone=zone,
                                                          start=start, handoff=handoff),
    st.lists(st.sampled_from(["ann", "bob", "cat"]), min_size=1, max_size=3, unique=True),
    st.sampled_from(LENGTHS), st.sampled_from(ZONES),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)), st.sampled_from([time(0, 0), time(9, 0), time(23, 59)]),
)


@settings(max_examples=100, deadline=None)
@given(rotation=rotations, at=instants)
@example(rotation=Rotation(participants=["ann", "bob"], time_zone="America/New_York"), at=datetime(1, 1, 1, 0, 1, tzinfo=UTC))
@example(rotation=Rotation(participants=["ann", "bob"], time_zone="Pacific/Kiritimati"), at=LAST)
@example(rotation=Rotation(participants=["ann", "bob"], length=timedelta(minutes=10)), at=FIRST)
def test_every_instant_has_an_answer_that_holds_together(rotation, at):
    now = now_and_next("r", rotation, at)
    moment = bounded(at)
    assert now.primary in rotation.participants
    assert now.since <= moment <= now.until, (now.since, moment, now.until)
    assert now.next is None or now.next != now.primary
    assert now.next_until is None or now.next_until > now.until


@settings(max_examples=200, deadline=None)
@given(rotation=rotations, start=instants, end=instants)
def test_shifts_between_any_two_instants_are_ordered_and_clipped(rotation, start, end):
    found = shifts(rotation, start, end, limit=50)
    if end <= start:
        assert found == []
        return
    assert found, "a stretch of time has somebody on call"
    assert found[0].start == start and all(a.end == b.start for a, b in zip(found, found[1:]))
    assert all(s.person in rotation.participants for s in found)


def test_an_instant_beyond_the_range_is_answered_at_its_bound():
    rotation = Rotation(participants=["ann", "bob"], length=timedelta(days=1), time_zone="Etc/GMT+12")
    assert bounded(FIRST) == EARLIEST and bounded(LAST) == LATEST
    assert on_call(rotation, FIRST) == on_call(rotation, EARLIEST)
    assert on_call(rotation, LAST) == on_call(rotation, LATEST)
    assert shift_start(rotation, 10**12) == LATEST and shift_start(rotation, -10**12) == EARLIEST
    assert current_start(rotation, LAST) <= LATEST


def test_an_override_to_the_end_of_time_is_on_call_until_then():
    rotation = Rotation(participants=["ann", "bob"],
                        overrides=[Override(person="cat", start=datetime(2026, 3, 1, tzinfo=UTC), end=LAST)])
    now = now_and_next("r", rotation, datetime(9999, 12, 30, tzinfo=UTC))
    assert now.primary == "cat" and now.overridden and now.next is None
