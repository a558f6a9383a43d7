"""The metric definitions over per-incident facts: windows, boundaries, reopens, no data."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.domain import metrics as m

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(days=30)
EDGE = NOW - WINDOW
TICK = timedelta(microseconds=1)


def facts(incident_id="INC-1", *, severity="SEV2", status="resolved", detected=None, opened=None,
          resolved=None, first_resolved=None, **fields) -> m.IncidentFacts:
    """An incident detected 90 minutes before NOW and resolved 30 minutes before NOW, unless told otherwise."""
    detected = detected or NOW - timedelta(minutes=90)
    if resolved is None and status in ("resolved", "closed"):
        resolved = NOW - timedelta(minutes=30)
    return m.IncidentFacts(
        incident_id=incident_id, severity=severity, service="svc", team="team", status=status,
        detected_at=detected, opened_at=opened or detected, resolved_at=resolved,
        first_resolved_at=first_resolved or resolved, **fields,
    )


# --- mttr_minutes ------------------------------------------------------------------


def test_mttr_no_data():
    assert m.mttr_minutes([], NOW, WINDOW) == {}


def test_mttr_is_detection_to_resolution():
    assert m.mttr_minutes([facts()], NOW, WINDOW) == {"SEV2": (60.0, 1)}


def test_mttr_is_the_mean_per_severity():
    items = [
        facts("a", detected=NOW - timedelta(minutes=100), resolved=NOW - timedelta(minutes=10)),  # 90
        facts("b", detected=NOW - timedelta(minutes=40), resolved=NOW - timedelta(minutes=10)),  # 30
        facts("c", severity="SEV1", detected=NOW - timedelta(minutes=7), resolved=NOW - timedelta(minutes=2)),  # 5
        facts("d", status="closed", detected=NOW - timedelta(hours=3), resolved=NOW - timedelta(hours=1)),  # 120
    ]
    assert m.mttr_minutes(items, NOW, WINDOW) == {"SEV2": (80.0, 3), "SEV1": (5.0, 1)}


def test_mttr_uses_detection_not_opening():
    # The alert started (startsAt) 50 minutes before the platform opened the incident.
    item = facts(detected=NOW - timedelta(minutes=100), opened=NOW - timedelta(minutes=50))
    assert m.mttr_minutes([item], NOW, WINDOW) == {"SEV2": (70.0, 1)}


@pytest.mark.parametrize("status", ["triggered", "acknowledged", "mitigating"])
def test_mttr_ignores_open_incidents(status):
    assert m.mttr_minutes([facts(status=status)], NOW, WINDOW) == {}


def test_mttr_ignores_a_reopened_incident_until_it_is_resolved_again():
    first = NOW - timedelta(minutes=60)
    reopened = facts(status="triggered", resolved=first, first_resolved=first, reopen_count=1)
    assert m.mttr_minutes([reopened], NOW, WINDOW) == {}
    again = facts(status="resolved", resolved=NOW - timedelta(minutes=10), first_resolved=first, reopen_count=1)
    # The whole span from detection (90 min ago) to the final resolution (10 min ago).
    assert m.mttr_minutes([again], NOW, WINDOW) == {"SEV2": (80.0, 1)}


def test_mttr_window_boundary_is_inclusive():
    at_edge = facts("edge", detected=EDGE - timedelta(minutes=15), resolved=EDGE)
    just_out = facts("out", detected=EDGE - timedelta(minutes=15), resolved=EDGE - TICK)
    assert m.mttr_minutes([at_edge], NOW, WINDOW) == {"SEV2": (15.0, 1)}
    assert m.mttr_minutes([just_out], NOW, WINDOW) == {}


def test_mttr_window_is_by_latest_resolution():
    # First resolved long ago, reopened, resolved again inside the window: counted.
    item = facts(detected=EDGE - timedelta(days=2), first_resolved=EDGE - timedelta(days=1),
                 resolved=EDGE + timedelta(days=1), reopen_count=1)
    assert m.mttr_minutes([item], NOW, WINDOW) == {"SEV2": (3 * 24 * 60.0, 1)}


def test_mttr_follows_the_window_setting():
    item = facts(resolved=NOW - timedelta(hours=2), detected=NOW - timedelta(hours=3))
    assert m.mttr_minutes([item], NOW, timedelta(hours=1)) == {}
    assert m.mttr_minutes([item], NOW, timedelta(hours=2)) == {"SEV2": (60.0, 1)}


# --- incidents over the MTTR target --------------------------------------------------


def test_over_mttr_target():
    items = [
        facts("on-target", mttr_target_minutes=60.0),  # exactly 60 minutes: not over
        facts("over", detected=NOW - timedelta(minutes=90, seconds=1), mttr_target_minutes=60.0),
        facts("no-target", detected=NOW - timedelta(days=9)),
        facts("open", status="triggered", detected=NOW - timedelta(days=9), mttr_target_minutes=60.0),
        facts("old", detected=EDGE - timedelta(days=9), resolved=EDGE - TICK, mttr_target_minutes=60.0),
        facts("sev1", severity="SEV1", mttr_target_minutes=30.0),
    ]
    assert m.over_mttr_target(items, NOW, WINDOW) == {"SEV2": 1, "SEV1": 1}
    assert m.over_mttr_target([], NOW, WINDOW) == {}


# --- reopen_rate ----------------------------------------------------------------------


def test_reopen_rate_no_data():
    assert m.reopen_rate([], NOW, WINDOW) == {}
    assert m.reopen_rate([facts(status="triggered", resolved=None)], NOW, WINDOW) == {}


def test_reopen_rate_is_the_share_reopened():
    items = [facts("a"), facts("b", reopen_count=1), facts("c", reopen_count=3), facts("d", severity="SEV1")]
    assert m.reopen_rate(items, NOW, WINDOW) == {"SEV2": (2 / 3, 3), "SEV1": (0.0, 1)}


def test_reopen_rate_counts_a_reopened_incident_that_is_still_open():
    first = NOW - timedelta(hours=1)
    item = facts(status="triggered", resolved=first, first_resolved=first, reopen_count=1)
    assert m.reopen_rate([item], NOW, WINDOW) == {"SEV2": (1.0, 1)}


def test_reopen_rate_counts_each_incident_once_however_often_it_reopens():
    item = facts(reopen_count=5)
    assert m.reopen_rate([item], NOW, WINDOW) == {"SEV2": (1.0, 1)}


def test_reopen_rate_window_is_by_first_resolution():
    at_edge = facts("edge", first_resolved=EDGE, resolved=NOW - timedelta(minutes=1), reopen_count=1)
    before = facts("before", first_resolved=EDGE - TICK, resolved=NOW - timedelta(minutes=1), reopen_count=1)
    assert m.reopen_rate([at_edge, before], NOW, WINDOW) == {"SEV2": (1.0, 1)}


# --- time to acknowledge --------------------------------------------------------------


def test_time_to_acknowledge():
    opened = NOW - timedelta(hours=1)
    items = [
        facts("a", opened=opened, first_acknowledged_at=opened + timedelta(minutes=4)),
        facts("b", opened=opened, first_acknowledged_at=opened + timedelta(minutes=8)),
        facts("never", opened=opened),
        facts("edge", opened=EDGE - timedelta(minutes=1), first_acknowledged_at=EDGE, severity="SEV1"),
        facts("old", opened=EDGE - timedelta(minutes=1), first_acknowledged_at=EDGE - TICK, severity="SEV3"),
    ]
    assert m.time_to_acknowledge(items, NOW, WINDOW) == {"SEV2": (6.0, 2), "SEV1": (1.0, 1)}
    assert m.time_to_acknowledge([], NOW, WINDOW) == {}


# --- open incidents -----------------------------------------------------------------


def test_open_incidents_by_severity():
    items = [
        facts("t", status="triggered", resolved=None),
        facts("a", status="acknowledged", resolved=None),
        facts("m", status="mitigating", resolved=None, severity="SEV1"),
        facts("r", status="resolved"),
        facts("c", status="closed"),
        facts("reopened", status="triggered", first_resolved=NOW - timedelta(hours=1), reopen_count=1),
    ]
    assert m.open_incidents(items) == {"SEV2": 3, "SEV1": 1}
    assert m.open_incidents([]) == {}


# --- postmortems ----------------------------------------------------------------------


def postmortem(incident_id, status="draft", created=None, due=None, required=True, **fields):
    created = created or NOW - timedelta(days=6)
    return facts(incident_id, postmortem_required=required, postmortem_status=status,
                 postmortem_created_at=created, postmortem_due_at=due or created + timedelta(days=5), **fields)


def test_postmortem_stats_no_data():
    stats = m.postmortem_stats([], NOW, WINDOW)
    assert (stats.required, stats.completed, stats.overdue, stats.due) == (0, 0, 0, 0)
    assert stats.completion_rate == 1.0  # nothing due, nothing missed


def test_postmortem_completion_rate_counts_overdue_against_and_pending_not_at_all():
    items = [
        postmortem("done", status="completed"),
        postmortem("done-late", status="completed", due=NOW - timedelta(days=3)),
        postmortem("overdue"),  # due a day ago, still a draft
        postmortem("pending", created=NOW - timedelta(days=1)),  # due in 4 days
        postmortem("optional", required=False),  # a SEV3 draft somebody started
        facts("none"),
    ]
    stats = m.postmortem_stats(items, NOW, WINDOW)
    assert (stats.required, stats.completed, stats.overdue, stats.due) == (4, 2, 1, 3)
    assert stats.completion_rate == pytest.approx(2 / 3)


def test_postmortem_due_exactly_now_is_overdue():
    stats = m.postmortem_stats([postmortem("p", due=NOW)], NOW, WINDOW)
    assert (stats.overdue, stats.completion_rate) == (1, 0.0)
    stats = m.postmortem_stats([postmortem("p", due=NOW + TICK)], NOW, WINDOW)
    assert (stats.overdue, stats.completion_rate) == (0, 1.0)


def test_postmortem_window_is_by_creation():
    items = [postmortem("edge", created=EDGE), postmortem("old", created=EDGE - TICK)]
    stats = m.postmortem_stats(items, NOW, WINDOW)
    assert (stats.required, stats.overdue) == (1, 1)


# --- counters -----------------------------------------------------------------------


def test_counter_keys_survive_any_label_value():
    labels = (("service", 'odd|name,with=signs "quoted"'), ("severity", "SEV1"))
    key = m.counter_key("incidents_opened_total", labels)
    assert m.parse_counter_key(key) == ("incidents_opened_total", labels)


def test_counter_totals_sum_over_records():
    a = m.counter_key("escalations_total", (("team", "pager"),))
    b = m.counter_key("escalations_total", (("team", "payments"),))
    totals = m.counter_totals([{a: 2}, {a: 1, b: 4}, {}])
    assert totals == {("escalations_total", (("team", "pager"),)): 3, ("escalations_total", (("team", "payments"),)): 4}
    assert m.counter_totals([]) == {}
