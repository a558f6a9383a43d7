"""Heartbeats: the deadline as data, the alert a missed beat becomes, its configuration and its metric."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from services.escalation import heartbeats as service
from services.ingestion.heartbeats_api import only_resolved
from services.metrics.exporter import IncidentCollector
from services.metrics.handlers import fold_ping
from shared.config_loader import ConfigError
from shared.domain import heartbeats as hb
from shared.domain.alerts import AlertAction
from shared.domain.classification import Facts, classify
from shared.domain.organisation import Heartbeat, Severity
from shared.messages import HeartbeatPing

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
BEAT = Heartbeat(interval=timedelta(minutes=1), grace=timedelta(minutes=4), service="monitoring")


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_heartbeat_is_armed_by_its_first_ping():
    state = hb.BeatState()
    assert hb.due(state, BEAT) is None
    assert hb.on_check(state, BEAT, _s(10_000)) == (state, None)
    armed, back = hb.on_ping(state, T0)
    assert back is None and hb.due(armed, BEAT) == _s(300)


def test_silence_past_interval_plus_grace_is_one_missed_beat_however_often_checked():
    alive, _ = hb.on_ping(hb.BeatState(), T0)
    assert hb.on_check(alive, BEAT, _s(299.9)) == (alive, None)
    missing, missed = hb.on_check(alive, BEAT, _s(301))
    assert missed == hb.Missed(since=_s(300), silent_for=timedelta(seconds=301))
    assert hb.missing_summary("prometheus-watchdog", missed) == "heartbeat `prometheus-watchdog` missing for 5m"
    assert hb.due(missing, BEAT) is None
    assert hb.on_check(missing, BEAT, _s(900)) == (missing, None), "a repeated check reports nothing new"


def test_the_next_ping_brings_it_back_and_rearms_it():
    missing, _ = hb.on_check(hb.on_ping(hb.BeatState(), T0)[0], BEAT, _s(301))
    alive, back = hb.on_ping(missing, _s(400))
    assert back == hb.Back(missing_since=_s(300))
    assert alive == hb.BeatState(last_ping=_s(400)) and hb.due(alive, BEAT) == _s(700)
    assert hb.on_ping(alive, _s(410)) == (hb.BeatState(last_ping=_s(410)), None)


def test_an_older_or_repeated_ping_changes_nothing():
    alive, _ = hb.on_ping(hb.BeatState(), _s(100))
    assert hb.on_ping(alive, _s(100)) == (alive, None)
    assert hb.on_ping(alive, _s(50)) == (alive, None)


def test_the_deadline_follows_the_configuration_in_force():
    alive, _ = hb.on_ping(hb.BeatState(), T0)
    shorter = BEAT.model_copy(update={"grace": timedelta(0)})
    assert hb.on_check(alive, shorter, _s(61))[1] is not None
    assert hb.on_check(alive, BEAT, _s(61))[1] is None


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (45, "45s"), (60, "1m"), (301, "5m"), (3599, "59m"), (3600, "1h"), (5400, "1h30m"),
    (86400, "1d"), (86400 * 2 + 3 * 3600 + 59, "2d3h"), (-5, "0s"),
])
def test_silences_are_described_as_people_say_them(seconds, text):
    assert hb.describe_span(timedelta(seconds=seconds)) == text


@pytest.fixture
def with_heartbeat(make_org):
    return lambda **beat: make_org(heartbeats={"nightly-backup": {"interval": "1h", "service": "billing-worker", **beat}})


def test_the_example_configuration_has_the_prometheus_watchdog(org):
    beat = org.heartbeats["prometheus-watchdog"]
    assert (beat.interval, beat.grace, beat.service, beat.team, beat.severity) == (
        timedelta(minutes=1), timedelta(minutes=4), "monitoring", "platform", Severity.SEV2)
    assert beat.timeout == timedelta(minutes=5)


@pytest.mark.parametrize("beat, message", [
    ({"service": "nope"}, "heartbeats.nightly-backup.service: unknown service 'nope'"),
    ({"team": "nope"}, "heartbeats.nightly-backup.team: unknown team 'nope'"),
    ({"team": "integrations"}, "heartbeats.nightly-backup.team: service 'billing-worker' is owned by team 'payments'"),
    ({"interval": "0s"}, "heartbeats.nightly-backup.interval"),
    ({"severity": "SEV9"}, "heartbeats.nightly-backup.severity"),
])
def test_a_bad_heartbeat_stops_the_service_naming_the_field(with_heartbeat, beat, message):
    with pytest.raises(ConfigError) as refused:
        with_heartbeat(**beat)
    assert message in str(refused.value)


def test_a_bad_heartbeat_name_is_refused(make_org):
    with pytest.raises(ConfigError, match="heartbeats.bad name!"):
        make_org(heartbeats={"bad name!": {"interval": "1m", "service": "billing-worker"}})


def test_the_incident_of_a_missed_beat_has_the_configured_severity_and_owner(with_heartbeat):
    tuned = with_heartbeat(severity="SEV1", team="payments")
    alert = service.alert_for("nightly-backup", tuned, hb.Missed(since=T0, silent_for=timedelta(minutes=61)), _s(1))
    verdict = classify(Facts(service=alert.service, alert_name=alert.alert_name, labels=alert.labels), tuned)
    assert (verdict.severity, verdict.team, verdict.rule) == (Severity.SEV1, "payments", "heartbeat:nightly-backup")
    # The same label on another service is not the heartbeat's.
    other = classify(Facts(service="checkout-api", labels={"heartbeat": "nightly-backup"}), tuned)
    assert other.rule != "heartbeat:nightly-backup"


def test_a_missed_beat_is_a_firing_alert_and_its_return_the_resolve_with_the_same_key(org):
    missed = service.alert_for("prometheus-watchdog", org, hb.Missed(since=_s(300), silent_for=timedelta(seconds=302)),
                               _s(302))
    assert (missed.status, missed.action, missed.service) == ("firing", AlertAction.TRIGGER, "monitoring")
    assert missed.summary == "heartbeat `prometheus-watchdog` missing for 5m"
    assert missed.starts_at == _s(300) and missed.integration == "heartbeat"
    assert missed.labels == {"alertname": "heartbeat:prometheus-watchdog", "heartbeat": "prometheus-watchdog"}
    back = service.alert_for("prometheus-watchdog", org, hb.Back(missing_since=_s(300)), _s(400))
    assert (back.status, back.action) == ("resolved", AlertAction.RESOLVE)
    assert back.dedup_key == missed.dedup_key == "heartbeat:prometheus-watchdog"
    assert back.alert_id != missed.alert_id


def test_the_escalation_handlers_emit_one_alert_per_change(org):
    ping = HeartbeatPing(name="prometheus-watchdog", at=T0, source="/v1/heartbeats/prometheus-watchdog/ping",
                         integration="alertmanager")
    alive, alerts = service.on_ping(hb.BeatState(), ping, org, T0)
    assert alerts == []
    missing, alerts = service.on_check(alive, "prometheus-watchdog", org, _s(301))
    assert [a.status for a in alerts] == ["firing"]
    assert service.on_check(missing, "prometheus-watchdog", org, _s(302)) == (missing, [])
    _, alerts = service.on_ping(missing, ping.model_copy(update={"at": _s(320)}), org, _s(320))
    assert [a.status for a in alerts] == ["resolved"]
    unknown = ping.model_copy(update={"name": "removed-from-config"})
    assert service.on_ping(hb.BeatState(), unknown, org, T0) == (hb.BeatState(), [])
    assert service.on_check(alive, "removed-from-config", org, _s(999)) == (alive, [])


def _webhook(*statuses: str) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "watchdog",
                       "alerts": [{"status": s, "labels": {"alertname": "Watchdog"}} for s in statuses]}).encode()


def test_an_alertmanager_notification_of_only_resolved_alerts_is_not_a_beat():
    assert only_resolved(_webhook("resolved"))
    assert only_resolved(_webhook("resolved", "resolved"))
    assert not only_resolved(_webhook("firing"))
    assert not only_resolved(_webhook("resolved", "firing"))
    for body in (b"", b"  ", b"not json", b"[]", b"{}", b'{"alerts": []}', b'{"alerts": "x"}'):
        assert not only_resolved(body), body


def test_the_metric_folds_the_latest_ping_and_exports_age_and_timeout(org):
    ping = HeartbeatPing(name="prometheus-watchdog", at=T0, source="s", integration="i")
    first = fold_ping(None, ping)
    assert first == {"at": T0.isoformat()}
    assert fold_ping(first, ping.model_copy(update={"at": _s(-5)})) is None
    assert fold_ping(first, ping.model_copy(update={"at": _s(5)})) == {"at": _s(5).isoformat()}

    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(org, facts=lambda: [], counts=lambda: [], clock=lambda: _s(42),
                                        pings=lambda: {"prometheus-watchdog": T0}))
    text = generate_latest(registry).decode()
    assert 'heartbeat_last_ping_age_seconds{name="prometheus-watchdog"} 42.0' in text
    assert 'heartbeat_timeout_seconds{name="prometheus-watchdog"} 300.0' in text
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(org, facts=lambda: [], counts=lambda: [], clock=lambda: _s(42)))
    assert "heartbeat_last_ping_age_seconds{" not in generate_latest(registry).decode(), "no sample before a ping"
