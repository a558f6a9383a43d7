"""Consumers pass over alert storms by reading only an audit event's head."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.domain.metrics import IncidentFacts, apply_alert, counter_key
from shared.messages import AuditHead


def _event(change: str, data: dict | None = None) -> bytes:
    import json

    return json.dumps({
        "event_id": "INC-2026-03-02-001/v7", "type": "incident.updated", "change": change,
        "incident_id": "INC-2026-03-02-001", "occurred_at": "2026-03-02T12:00:00Z", "actor": "x", "version": 7,
        "summary": "s", "data": data or {}, "incident": {"service": "checkout-api", "version": 7},
    }).encode()


def test_an_alert_that_changes_nothing_else_is_only_an_alert():
    assert AuditHead.model_validate_json(_event("alerts_attached", {"count": 40, "firing": 39})).only_an_alert
    moved = AuditHead.model_validate_json(_event("alerts_attached", {"detected_at": "2026-03-02T11:00:00Z"}))
    assert not moved.only_an_alert  # detection moved: the metrics must fold the snapshot
    assert not AuditHead.model_validate_json(_event("acknowledged")).only_an_alert
    assert AuditHead.model_validate_json(_event("opened")).incident.service == "checkout-api"


def test_alert_counters_fold_once_per_version():
    now = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    facts = IncidentFacts(incident_id="I", severity="SEV3", service="s", team="t", status="triggered",
                          detected_at=now, opened_at=now, last_version=6)
    # One event folds many alerts: the counter moves by the alerts that fired.
    after = apply_alert(facts, 7, "alerts_attached", "checkout-api", firing=25)
    assert after.counts == {counter_key("alerts_deduplicated_total", (("service", "checkout-api"),)): 25}
    assert after.last_version == 7
    assert apply_alert(after, 7, "alerts_attached", "checkout-api", firing=25) is None
    resolved = apply_alert(after, 8, "alerts_attached", "checkout-api", firing=0)
    assert resolved.counts == after.counts and resolved.last_version == 8
