"""Detection time that cannot be gamed: an alert's start older than max_alert_age is clamped,
and the clamping is recorded on the incident and in its audit data."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.audit import audit_event
from shared.domain.detection import DEFAULT_MAX_ALERT_AGE, Detection, detection_of
from shared.domain.commands import Resolve

DAY = timedelta(hours=24)


def test_detection_trusts_a_recent_start_and_clamps_an_old_one(now):
    assert DEFAULT_MAX_ALERT_AGE == DAY
    assert detection_of(None, now, DAY) == Detection(now)
    assert detection_of(now + timedelta(minutes=5), now, DAY) == Detection(now)  # a clock ahead of ours
    recent = now - timedelta(hours=23, minutes=59)
    assert detection_of(recent, now, DAY) == Detection(recent)
    assert detection_of(now - DAY, now, DAY) == Detection(now - DAY)  # exactly the limit: as given
    old = now - timedelta(days=40)
    assert detection_of(old, now, DAY) == Detection(now - DAY, clamped_from=old)
    assert detection_of(old, now, timedelta(hours=2)) == Detection(now - timedelta(hours=2), clamped_from=old)


def test_an_incident_opened_by_an_old_alert_counts_from_the_limit_and_says_so(open_incident, make_alert, now):
    started = now - timedelta(days=30)
    line = open_incident(make_alert(starts_at=started))
    incident = line.state
    assert incident.detected_at == now - DAY and incident.detected_at_clamped == started
    opened = audit_event(line.history[0], incident, None)
    assert opened.data["detected_at_clamped"] == started.isoformat().replace("+00:00", "Z")
    line.advance(minutes=30)
    line.run(Resolve(), actor="alice")
    # 24 h and 30 min, not 30 days: MTTR is never inflated by a start the source made up.
    assert line.state.mttr_minutes == 24 * 60 + 30


def test_a_recent_start_is_not_clamped(open_incident, make_alert, now):
    line = open_incident(make_alert(starts_at=now - timedelta(hours=3)))
    assert line.state.detected_at == now - timedelta(hours=3) and line.state.detected_at_clamped is None
    assert audit_event(line.history[0], line.state, None).data["detected_at_clamped"] is None


def test_a_later_alert_with_an_old_start_moves_detection_only_to_the_limit(open_incident, make_alert, now):
    line = open_incident(make_alert())
    assert line.state.detected_at == now and line.state.detected_at_clamped is None
    started = now - timedelta(days=3)
    line.advance(minutes=10)
    [attached] = line.attach(make_alert(starts_at=started, received_at=line.now, labels={"alertname": "QueueBacklog",
                                                                                        "instance": "erp-2"}))
    assert attached.detected_at == line.now - DAY and attached.detected_at_clamped == started
    assert line.state.detected_at == line.now - DAY and line.state.detected_at_clamped == started
    data = audit_event(attached, line.state, None).data
    assert data["detected_at_clamped"] is not None and data["detected_at"] is not None


def test_max_alert_age_is_configured_per_organisation(make_org, open_incident, make_alert, now):
    org = make_org(max_alert_age="2h")
    assert org.max_alert_age == timedelta(hours=2)
    started = now - timedelta(hours=5)
    line = open_incident(make_alert(starts_at=started), organisation=org)
    assert line.state.detected_at == now - timedelta(hours=2) and line.state.detected_at_clamped == started


@pytest.mark.parametrize(("value", "message"), [
    ("soon", "max_alert_age: Value error, not a duration: 'soon'"),
    ("0s", "max_alert_age: Value error, max_alert_age must be positive"),
])
def test_a_bad_max_alert_age_names_the_field(make_org, value, message):
    from shared.config_loader import ConfigError

    with pytest.raises(ConfigError, match=message):
        make_org(max_alert_age=value)
