"""On call at runtime: overrides folded into rotations, shifts, who is on call now and next."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from services.cli.oncall_commands import moment
from services.cli.client import CliError
from shared.domain.oncall import (
    RotationOverride,
    Shift,
    current_start,
    now_and_next,
    oncall_table,
    person_shifts,
    shifts,
    with_overrides,
)
from shared.domain.organisation import Override, Rotation
from shared.domain.rotations import on_call, shift_index, shift_start

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def made(person: str, start: datetime, end: datetime, *, rotation: str = "payments-oncall", at: datetime | None = None,
         deleted: bool = False, oid: str = "ovr_000000000001") -> RotationOverride:
    created = at or utc(2026, 3, 1)
    return RotationOverride(override_id=oid, rotation=rotation, person=person, start=start, end=end, created_by="alice",
                            created_at=created, deleted_at=created if deleted else None,
                            deleted_by="alice" if deleted else None, version=2 if deleted else 1)


# payments-oncall in the example: dave, erin; 7 days; 09:00 America/New_York from 2026-01-05.
def test_runtime_overrides_are_honoured_by_on_call_and_the_newest_wins(org):
    at = utc(2026, 3, 4, 12)
    assert on_call(org.rotations["payments-oncall"], at).primary == "dave"
    older = made("erin", utc(2026, 3, 4), utc(2026, 3, 5), at=utc(2026, 3, 1), oid="ovr_000000000001")
    newer = made("frank", utc(2026, 3, 4, 10), utc(2026, 3, 4, 14), at=utc(2026, 3, 2), oid="ovr_000000000002")
    tuned = with_overrides(org, [older, newer])
    assert on_call(tuned.rotations["payments-oncall"], at).primary == "frank"
    assert on_call(tuned.rotations["payments-oncall"], utc(2026, 3, 4, 15)).primary == "erin"
    assert on_call(tuned.rotations["payments-oncall"], utc(2026, 3, 5, 1)).primary == "dave"
    assert tuned.rotations["integrations-oncall"] == org.rotations["integrations-oncall"]
    assert org.rotations["payments-oncall"].overrides == [], "the organisation itself is unchanged"


def test_deleted_overrides_and_unknown_rotations_change_nothing(org):
    gone = made("erin", utc(2026, 3, 4), utc(2026, 3, 5), deleted=True)
    elsewhere = made("erin", utc(2026, 3, 4), utc(2026, 3, 5), rotation="removed-rotation")
    assert with_overrides(org, [gone, elsewhere]) is org


def test_runtime_overrides_come_before_the_files_own():
    rotation = Rotation(participants=["a", "b"], overrides=[Override(person="c", start=utc(2026, 3, 4), end=utc(2026, 3, 6))])
    from shared.domain.organisation import Organisation
    org = Organisation.model_validate({"teams": {"t": {"rotation": "r"}}, "services": {"s": {"team": "t"}},
                                       "fallback_team": "t", "security_team": "t", "rotations": {"r": rotation.model_dump()}})
    tuned = with_overrides(org, [made("d", utc(2026, 3, 5), utc(2026, 3, 5, 6), rotation="r")])
    assert on_call(tuned.rotations["r"], utc(2026, 3, 5, 1)).primary == "d"
    assert on_call(tuned.rotations["r"], utc(2026, 3, 5, 7)).primary == "c"


def test_an_override_must_end_after_it_starts_with_offsets():
    with pytest.raises(ValueError, match="end after"):
        made("erin", utc(2026, 3, 5), utc(2026, 3, 4))
    with pytest.raises(ValueError, match="UTC offset"):
        made("erin", datetime(2026, 3, 4), datetime(2026, 3, 5))


@pytest.mark.parametrize("name", ["integrations-oncall", "payments-oncall", "platform-oncall", "security-oncall"])
def test_shift_start_is_the_inverse_of_shift_index(org, name):
    rotation = org.rotations[name]
    for index in range(-3, 60):
        begin = shift_start(rotation, index)
        assert shift_index(rotation, begin) == index
        assert shift_index(rotation, begin - timedelta(seconds=1)) == index - 1


def test_sub_day_shifts_start_every_length():
    rotation = Rotation(participants=["a", "b", "c"], length=timedelta(hours=8), handoff=time(6, 0),
                        time_zone="Europe/Berlin", start=date(2026, 3, 28))
    assert shift_start(rotation, 0) == utc(2026, 3, 28, 5)
    assert shift_start(rotation, 3) == utc(2026, 3, 29, 5)  # elapsed time, across the DST change
    assert shift_index(rotation, utc(2026, 3, 29, 4, 59)) == 2


def test_shifts_follow_the_handoffs_in_local_time_across_daylight_saving(org):
    rotation = org.rotations["integrations-oncall"]  # 09:00 Europe/Berlin, 7 days: alice, bob, carol
    found = shifts(rotation, utc(2026, 3, 23, 8), utc(2026, 4, 13, 7))
    assert found == [
        Shift("carol", utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)),  # 09:00 CEST is 07:00 UTC
        Shift("alice", utc(2026, 3, 30, 7), utc(2026, 4, 6, 7)),
        Shift("bob", utc(2026, 4, 6, 7), utc(2026, 4, 13, 7)),
    ]


def test_an_override_splits_a_shift_and_is_marked(org):
    tuned = with_overrides(org, [made("frank", utc(2026, 3, 4, 12), utc(2026, 3, 4, 20))])
    found = shifts(tuned.rotations["payments-oncall"], utc(2026, 3, 2, 14), utc(2026, 3, 9, 13))
    assert found == [
        Shift("dave", utc(2026, 3, 2, 14), utc(2026, 3, 4, 12)),
        Shift("frank", utc(2026, 3, 4, 12), utc(2026, 3, 4, 20), overridden=True),
        Shift("dave", utc(2026, 3, 4, 20), utc(2026, 3, 9, 13)),  # US DST began 2026-03-08: 09:00 EDT
    ]
    assert current_start(tuned.rotations["payments-oncall"], utc(2026, 3, 4, 13)) == utc(2026, 3, 4, 12)
    assert current_start(tuned.rotations["payments-oncall"], utc(2026, 3, 4, 11)) == utc(2026, 3, 2, 14)


def test_an_override_for_the_person_already_on_call_keeps_one_marked_stretch(org):
    tuned = with_overrides(org, [made("dave", utc(2026, 3, 4), utc(2026, 3, 5))])
    found = shifts(tuned.rotations["payments-oncall"], utc(2026, 3, 3), utc(2026, 3, 6))
    assert [(s.person, s.overridden) for s in found] == [("dave", False), ("dave", True), ("dave", False)]


def test_shifts_are_bounded(org):
    rotation = Rotation(participants=["a", "b"], length=timedelta(minutes=10))
    assert len(shifts(rotation, utc(2026, 3, 1), utc(2026, 6, 1), limit=100)) == 100
    assert shifts(rotation, utc(2026, 3, 2), utc(2026, 3, 1)) == []


def test_now_and_next(org):
    rotation = org.rotations["payments-oncall"]
    now = now_and_next("payments-oncall", rotation, utc(2026, 3, 4, 12))
    assert (now.primary, now.secondary, now.next, now.overridden) == ("dave", "erin", "erin", False)
    assert (now.since, now.until, now.next_until) == (utc(2026, 3, 2, 14), utc(2026, 3, 9, 13), utc(2026, 3, 16, 13))


def test_now_and_next_under_an_override(org):
    tuned = with_overrides(org, [made("frank", utc(2026, 3, 4, 10), utc(2026, 3, 4, 20))])
    now = now_and_next("payments-oncall", tuned.rotations["payments-oncall"], utc(2026, 3, 4, 12))
    assert (now.primary, now.overridden, now.since, now.until, now.next) == (
        "frank", True, utc(2026, 3, 4, 10), utc(2026, 3, 4, 20), "dave")
    assert now.secondary == "dave", "the scheduled primary is the secondary during an override"


def test_a_one_person_rotation_has_nobody_next():
    rotation = Rotation(participants=["solo"], length=timedelta(hours=1))
    now = now_and_next("solo", rotation, utc(2026, 3, 4, 12))
    assert (now.primary, now.next, now.next_until) == ("solo", None, None)
    assert now.until >= utc(2027, 3, 1)


def test_the_oncall_table_has_a_row_per_team_with_a_rotation(org):
    rows = oncall_table(org, utc(2026, 3, 4, 12))
    assert [(r.team, r.now.rotation) for r in rows] == [
        ("integrations", "integrations-oncall"), ("payments", "payments-oncall"),
        ("platform", "platform-oncall"), ("security", "security-oncall"),
    ]


def test_a_rotation_no_team_names_has_its_own_row(make_org, raw_config):
    rotations = {**raw_config["rotations"], "spare": {"participants": ["alice"]}}
    rows = oncall_table(make_org(rotations=rotations), utc(2026, 3, 4, 12))
    assert (rows[-1].team, rows[-1].now.rotation) == (None, "spare")


def test_a_persons_shifts_across_rotations(org):
    found = person_shifts(org, "grace", utc(2026, 3, 2), utc(2026, 3, 5))
    # grace is in platform-oncall (daily at 10:00 UTC, frank/grace) and security-oncall (weekly at
    # 09:00 UTC, heidi/grace: grace's week ends on Monday 2026-03-02).
    assert found == [
        ("platform-oncall", Shift("grace", utc(2026, 3, 2), utc(2026, 3, 2, 10))),
        ("security-oncall", Shift("grace", utc(2026, 3, 2), utc(2026, 3, 2, 9))),
        ("platform-oncall", Shift("grace", utc(2026, 3, 3, 10), utc(2026, 3, 4, 10))),
    ]


@pytest.mark.parametrize("text, expected", [
    ("now", "2026-03-04T12:00:00+00:00"),
    ("+8h", "2026-03-04T20:00:00+00:00"),
    ("+2d", "2026-03-06T12:00:00+00:00"),
    ("2026-12-24T09:00:00Z", "2026-12-24T09:00:00+00:00"),
    ("2026-12-24T09:00", "2026-12-24T09:00:00+00:00"),
    ("2026-12-24T09:00:00+01:00", "2026-12-24T09:00:00+01:00"),
])
def test_the_cli_reads_times_people_type(text, expected):
    assert moment(text, now=utc(2026, 3, 4, 12)) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+eight hours", ""])
def test_the_cli_refuses_what_is_not_a_time(text):
    with pytest.raises(CliError):
        moment(text, now=utc(2026, 3, 4, 12))
