"""Who is on call: hand-off hour in the rotation's zone, daylight saving, sub-day
shifts and overrides."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.domain.organisation import Override, Rotation
from shared.domain.rotations import OnCall, on_call

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# integrations-oncall: alice, bob, carol; 7 days; 09:00 Europe/Berlin from Monday 2026-01-05.
@pytest.mark.parametrize(
    ("at", "primary", "secondary"),
    [
        (utc(2026, 1, 5, 7, 59, 59), "carol", "alice"),  # 08:59:59 CET: before the first hand-off
        (utc(2026, 1, 5, 8, 0), "alice", "bob"),  # 09:00 CET
        (utc(2026, 1, 8, 23, 0), "alice", "bob"),
        (utc(2026, 1, 12, 7, 59, 59), "alice", "bob"),
        (utc(2026, 1, 12, 8, 0), "bob", "carol"),
        (utc(2026, 1, 19, 8, 0), "carol", "alice"),
        (utc(2026, 1, 26, 8, 0), "alice", "bob"),  # wraps around
        (utc(2026, 3, 2, 12, 0), "carol", "alice"),  # week 9 (index 8)
        # Daylight saving started on Sunday 2026-03-29: Monday's 09:00 is now 07:00 UTC.
        (utc(2026, 3, 30, 6, 59, 59), "carol", "alice"),
        (utc(2026, 3, 30, 7, 0), "alice", "bob"),
        # ...and ended on Sunday 2026-10-25: Monday's 09:00 is 08:00 UTC again.
        (utc(2026, 10, 26, 7, 59, 59), "carol", "alice"),
        (utc(2026, 10, 26, 8, 0), "alice", "bob"),
    ],
)
def test_weekly_rotation_in_berlin(org, at, primary, secondary):
    assert on_call(org.rotations["integrations-oncall"], at) == OnCall(primary=primary, secondary=secondary)


def test_the_answer_does_not_depend_on_the_zone_of_the_question(org):
    rotation = org.rotations["integrations-oncall"]
    for at in (utc(2026, 3, 30, 6, 59), utc(2026, 3, 30, 7, 0), utc(2026, 1, 12, 8, 0)):
        assert on_call(rotation, at) == on_call(rotation, at.astimezone(BERLIN)) == on_call(rotation, at.astimezone(NEW_YORK))


# payments-oncall: dave, erin; 7 days; 09:00 America/New_York (US DST began 2026-03-08).
@pytest.mark.parametrize(
    ("at", "primary"),
    [
        (utc(2026, 1, 5, 13, 59), "erin"),
        (utc(2026, 1, 5, 14, 0), "dave"),  # 09:00 EST
        (utc(2026, 3, 2, 13, 59), "erin"),  # week 8 still (index 7)
        (utc(2026, 3, 2, 14, 0), "dave"),  # index 8
        (utc(2026, 3, 9, 12, 59), "dave"),
        (utc(2026, 3, 9, 13, 0), "erin"),  # 09:00 EDT
    ],
)
def test_weekly_rotation_in_new_york(org, at, primary):
    assert on_call(org.rotations["payments-oncall"], at).primary == primary


# platform-oncall: frank, grace; 1 day; 10:00 UTC.
@pytest.mark.parametrize(
    ("at", "primary", "secondary"),
    [
        (utc(2026, 1, 5, 10, 0), "frank", "grace"),
        (utc(2026, 1, 6, 9, 59), "frank", "grace"),
        (utc(2026, 1, 6, 10, 0), "grace", "frank"),
        (utc(2026, 1, 7, 10, 0), "frank", "grace"),
        (utc(2026, 1, 4, 12, 0), "grace", "frank"),  # the day before the start
    ],
)
def test_daily_rotation(org, at, primary, secondary):
    assert on_call(org.rotations["platform-oncall"], at) == OnCall(primary=primary, secondary=secondary)


def test_daily_rotation_across_the_berlin_dst_change():
    rotation = Rotation(
        participants=["a", "b", "c", "d"], length="1d", handoff="09:00", time_zone="Europe/Berlin",
        start=date(2026, 3, 27),
    )
    # Saturday 2026-03-28 09:00 CET = 08:00 UTC; Sunday 2026-03-29 09:00 CEST = 07:00 UTC.
    assert on_call(rotation, utc(2026, 3, 28, 7, 59)).primary == "a"
    assert on_call(rotation, utc(2026, 3, 28, 8, 0)).primary == "b"
    assert on_call(rotation, utc(2026, 3, 29, 6, 59)).primary == "b"
    assert on_call(rotation, utc(2026, 3, 29, 7, 0)).primary == "c"
    assert on_call(rotation, datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)).primary == "c"
    assert on_call(rotation, datetime(2026, 3, 29, 8, 59, tzinfo=BERLIN)).primary == "b"
    assert on_call(rotation, utc(2026, 3, 30, 7, 0)).primary == "d"


@pytest.mark.parametrize(
    ("at", "primary"),
    [
        (utc(2026, 1, 5, 8, 59), "c"),
        (utc(2026, 1, 5, 9, 0), "a"),
        (utc(2026, 1, 5, 13, 59), "a"),
        (utc(2026, 1, 5, 14, 0), "b"),  # 5-hour shifts
        (utc(2026, 1, 5, 19, 0), "c"),
        (utc(2026, 1, 6, 0, 0), "a"),
        (utc(2026, 1, 6, 5, 0), "b"),
    ],
)
def test_sub_day_rotation(at, primary):
    rotation = Rotation(participants=["a", "b", "c"], length="5h", handoff="09:00", time_zone="UTC", start=date(2026, 1, 5))
    assert on_call(rotation, at).primary == primary


def test_sub_day_rotation_counts_elapsed_time_across_dst():
    # 12-hour shifts from Saturday 2026-03-28 09:00 CET (08:00 UTC): every 12 real hours,
    # so after the clocks go forward the hand-offs move to 10:00 and 22:00 local time.
    rotation = Rotation(
        participants=["a", "b", "c", "d", "e"], length="12h", handoff="09:00", time_zone="Europe/Berlin",
        start=date(2026, 3, 28),
    )
    assert on_call(rotation, utc(2026, 3, 28, 8, 0)).primary == "a"
    assert on_call(rotation, utc(2026, 3, 28, 20, 0)).primary == "b"
    assert on_call(rotation, utc(2026, 3, 29, 8, 0)).primary == "c"
    assert on_call(rotation, utc(2026, 3, 29, 19, 59)).primary == "c"
    assert on_call(rotation, utc(2026, 3, 29, 20, 0)).primary == "d"
    # The same instants asked in Berlin time get the same answers.
    assert on_call(rotation, datetime(2026, 3, 29, 21, 59, tzinfo=BERLIN)).primary == "c"
    assert on_call(rotation, datetime(2026, 3, 29, 22, 0, tzinfo=BERLIN)).primary == "d"


def test_a_single_participant_is_both_primary_and_secondary():
    rotation = Rotation(participants=["solo"])
    assert on_call(rotation, utc(2026, 6, 1)) == OnCall(primary="solo", secondary="solo")


def test_handoff_with_minutes():
    rotation = Rotation(participants=["a", "b"], length="1d", handoff=time(17, 30), time_zone="UTC", start=date(2026, 1, 5))
    assert on_call(rotation, utc(2026, 1, 6, 17, 29)).primary == "a"
    assert on_call(rotation, utc(2026, 1, 6, 17, 30)).primary == "b"


# --- overrides --------------------------------------------------------------------------


def rotation_with_override(person: str) -> Rotation:
    return Rotation(
        participants=["alice", "bob", "carol"],
        length="7d",
        time_zone="UTC",
        start=date(2026, 1, 5),
        overrides=[Override(person=person, start=utc(2026, 1, 7, 18, 0), end=utc(2026, 1, 8, 6, 0))],
    )


def test_override_replaces_the_primary_and_the_scheduled_person_is_secondary():
    rotation = rotation_with_override("zed")
    assert on_call(rotation, utc(2026, 1, 7, 17, 59)) == OnCall(primary="alice", secondary="bob")
    assert on_call(rotation, utc(2026, 1, 7, 18, 0)) == OnCall(primary="zed", secondary="alice")  # start inclusive
    assert on_call(rotation, utc(2026, 1, 8, 5, 59)) == OnCall(primary="zed", secondary="alice")
    assert on_call(rotation, utc(2026, 1, 8, 6, 0)) == OnCall(primary="alice", secondary="bob")  # end exclusive


def test_override_by_the_scheduled_person_keeps_the_next_as_secondary():
    rotation = rotation_with_override("alice")
    assert on_call(rotation, utc(2026, 1, 7, 20, 0)) == OnCall(primary="alice", secondary="bob")


def test_override_by_the_next_person_swaps_them():
    rotation = rotation_with_override("bob")
    assert on_call(rotation, utc(2026, 1, 7, 20, 0)) == OnCall(primary="bob", secondary="alice")


def test_override_given_in_another_zone():
    rotation = Rotation(
        participants=["alice", "bob"],
        start=date(2026, 1, 5),
        overrides=[Override(person="zed", start=datetime(2026, 1, 7, 19, 0, tzinfo=BERLIN),
                            end=datetime(2026, 1, 7, 20, 0, tzinfo=BERLIN))],
    )
    assert on_call(rotation, utc(2026, 1, 7, 18, 0)).primary == "zed"  # 19:00 Berlin
    assert on_call(rotation, utc(2026, 1, 7, 19, 0)).primary == "alice"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (utc(2026, 1, 8), utc(2026, 1, 7), "must end after it starts"),
        (utc(2026, 1, 8), utc(2026, 1, 8), "must end after it starts"),
        (datetime(2026, 1, 7), datetime(2026, 1, 8), "need a UTC offset"),
        (datetime(2026, 1, 7), utc(2026, 1, 8), "need a UTC offset"),  # mixed: must not crash with TypeError
        (utc(2026, 1, 7), datetime(2026, 1, 8), "need a UTC offset"),
    ],
)
def test_invalid_overrides(start, end, message):
    with pytest.raises(ValueError, match=message):
        Override(person="zed", start=start, end=end)


def test_rotation_validation():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Rotation(participants=["a"], time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match="must be positive"):
        Rotation(participants=["a"], length="0s")
    with pytest.raises(ValueError):
        Rotation(participants=[])
    assert Rotation(participants=["a"], length="36h").length == timedelta(hours=36)
