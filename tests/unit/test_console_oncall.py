"""The on-call view's shifts: who holds each rotation and when it changes hands."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from services.web.oncall_schedule import ConfigOnCall, shifts
from shared.domain.organisation import Override, Rotation
from shared.domain.rotations import on_call

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_weekly_shifts_hand_off_at_local_time_across_daylight_saving():
    rotation = Rotation(participants=["alice", "bob"], length=timedelta(days=7), time_zone="Europe/Berlin")
    start = datetime(2026, 3, 16, 12, tzinfo=timezone.utc)
    got = shifts(rotation, start, start + timedelta(days=14))
    # Berlin moves to summer time on 29 March: the 09:00 hand-off is 08:00 UTC, then 07:00 UTC.
    assert [s.start for s in got[1:]] == [datetime(2026, 3, 23, 8, tzinfo=timezone.utc),
                                          datetime(2026, 3, 30, 7, tzinfo=timezone.utc)]
    for shift in got:
        assert shift.primary == on_call(rotation, shift.start).primary
    assert got[0].end == got[1].start and got[-1].end == start + timedelta(days=14)


def test_an_override_is_its_own_shift():
    override = Override(person="carol", start=datetime(2026, 3, 3, 10, tzinfo=timezone.utc),
                        end=datetime(2026, 3, 3, 14, tzinfo=timezone.utc))
    rotation = Rotation(participants=["alice", "bob"], time_zone="UTC", overrides=[override])
    got = shifts(rotation, NOW, NOW + timedelta(days=2))
    marked = [s for s in got if s.override]
    assert [(s.primary, s.start, s.end) for s in marked] == [("carol", override.start, override.end)]
    at = got.index(marked[0])
    assert got[at - 1].primary == got[at + 1].primary != "carol"  # the scheduled person before and after


def test_sub_day_rotations_count_elapsed_time():
    rotation = Rotation(participants=["a", "b", "c"], length=timedelta(hours=8), time_zone="UTC")
    got = shifts(rotation, NOW, NOW + timedelta(days=1))
    assert [s.primary for s in got] == [on_call(rotation, s.start).primary for s in got]
    assert all(s.end - s.start <= timedelta(hours=8) for s in got)


def test_every_team_has_its_current_holder_and_policy(org):
    teams = {t.team: t for t in asyncio.run(ConfigOnCall(org).teams(NOW))}
    integrations = teams["integrations"]
    assert integrations.now.primary == "carol" and integrations.now.start <= NOW < integrations.now.end
    assert integrations.upcoming[0].start == integrations.now.end
    assert integrations.strip[0].start <= NOW and integrations.strip[-1].end >= NOW + timedelta(days=13)
    assert [level.after for level in integrations.levels] == [timedelta(0), timedelta(minutes=5), timedelta(minutes=15)]
    assert teams["incident-managers"].now is None
