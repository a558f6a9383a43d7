"""Alertmanager (version 4) and Grafana webhooks become native alerts, one per alert, each by its own status."""
from __future__ import annotations

from datetime import timezone

import pytest
from pydantic import ValidationError

from services.ingestion.formats.alertmanager import AlertmanagerPayload, to_native
from shared.domain.organisation import Integration, LabelNames


def _alert(status: str, fingerprint: str, **labels: str) -> dict:
    return {
        "status": status,
        "labels": {"alertname": "CRMSyncFailing", "service": "connector:CRM", "severity": "critical",
                   "instance": "crm-1", **labels},
        "annotations": {"summary": "CRM sync failing", "description": "No batch for 10 minutes",
                        "runbook_url": "https://runbooks.example.com/crm"},
        # Shapes seen in real Alertmanager 0.25 output: varying fractions, zero end time, empty generator.
        "startsAt": "2026-11-27T07:25:51.91Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T07:35:02.129Z",
        "generatorURL": "",
        "fingerprint": fingerprint,
    }


def _payload(*alerts: dict, status: str = "firing", **extra) -> dict:
    return {
        "receiver": "incidents", "status": status, "alerts": list(alerts),
        "groupLabels": {"alertname": "CRMSyncFailing"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "version": "4", "groupKey": "{}:{alertname=\"CRMSyncFailing\"}",
        "truncatedAlerts": 0, **extra,
    }


def test_each_alert_keeps_its_own_status_and_fingerprint():
    # A group notification can be "firing" while some of its alerts are resolved.
    payload = AlertmanagerPayload.model_validate(
        _payload(_alert("firing", "a1b2c3d4e5f60718"), _alert("resolved", "0f1e2d3c4b5a6978", instance="crm-2"))
    )
    natives = to_native(payload, Integration())
    assert [(n.status, n.dedup_key) for n in natives] == [("firing", "a1b2c3d4e5f60718"),
                                                          ("resolved", "0f1e2d3c4b5a6978")]
    firing, resolved = natives
    assert firing.ends_at is None and firing.starts_at.tzinfo is not None
    assert resolved.ends_at.microsecond == 129000
    assert firing.source == "alertmanager"


def test_labels_map_to_service_team_severity_and_annotations_travel():
    payload = AlertmanagerPayload.model_validate(_payload(_alert("firing", "a1", team="integrations")))
    (native,) = to_native(payload, Integration())
    assert native.service == "connector:CRM"
    assert native.team == "integrations"
    assert native.severity == "critical"
    assert native.alert_name == "CRMSyncFailing"
    assert native.summary == "CRM sync failing"
    assert native.annotations["description"] == "No batch for 10 minutes"
    assert native.annotations["runbook_url"] == "https://runbooks.example.com/crm"
    assert [(link.text, link.href) for link in native.links] == [("runbook", "https://runbooks.example.com/crm")]
    assert native.labels["instance"] == "crm-1"


def test_label_names_are_configurable_per_integration():
    integration = Integration(label_names=LabelNames(service="app", team="squad", severity="level"))
    alert = _alert("firing", "a1", app="billing-worker", squad="payments", level="Warning")
    (native,) = to_native(AlertmanagerPayload.model_validate(_payload(alert)), integration)
    assert (native.service, native.team, native.severity) == ("billing-worker", "payments", "warning")


def test_missing_service_label_falls_back_to_the_integration_default_then_unknown():
    alert = _alert("firing", "a1")
    del alert["labels"]["service"]
    payload = AlertmanagerPayload.model_validate(_payload(alert))
    assert to_native(payload, Integration(default_service="checkout-api"))[0].service == "checkout-api"
    assert to_native(payload, Integration())[0].service == "unknown"


def test_unknown_severity_is_left_to_triage_and_summary_falls_back_to_description_then_alertname():
    alert = _alert("firing", "a1", severity="page")
    del alert["annotations"]["summary"]
    (native,) = to_native(AlertmanagerPayload.model_validate(_payload(alert)), Integration())
    assert native.severity is None and native.labels["severity"] == "page"
    assert native.summary == "No batch for 10 minutes"
    alert["annotations"] = {}
    (native,) = to_native(AlertmanagerPayload.model_validate(_payload(alert)), Integration())
    assert native.summary == "CRMSyncFailing"


def test_oversized_values_are_clipped_rather_than_losing_the_group():
    alert = _alert("firing", "f" * 300, service="s" * 500)
    alert["annotations"]["summary"] = "x" * 5000
    alert["labels"]["huge"] = "y" * 10_000
    (native,) = to_native(AlertmanagerPayload.model_validate(_payload(alert)), Integration())
    assert len(native.service) == 200 and len(native.summary) == 1024 and len(native.labels["huge"]) == 4096
    assert native.dedup_key.startswith("fp:") and len(native.dedup_key) <= 255


def test_grafana_webhook_on_the_same_endpoint():
    alert = _alert("firing", "c6eadffa33fcdf37")
    alert.update({
        "silenceURL": "https://grafana.example.com/alerting/silence/new",
        "dashboardURL": "https://grafana.example.com/d/abc", "panelURL": "", "imageURL": None,
        "values": {"B": 44.2, "C": 1}, "valueString": "[ var='B' value=44.2 ]",
        "generatorURL": "https://grafana.example.com/alerting/grafana/abc/view",
        "startsAt": "2021-10-12T09:51:03.157076+02:00",
    })
    body = _payload(alert, orgId=1, version="1", title="[FIRING:1] CRMSyncFailing", state="alerting",
                    message="**Firing**")
    (native,) = to_native(AlertmanagerPayload.model_validate(body), Integration())
    assert native.source == "grafana"
    assert native.dedup_key == "c6eadffa33fcdf37"
    assert native.starts_at.astimezone(timezone.utc).hour == 7
    assert {link.text for link in native.links} == {"source", "runbook", "dashboard", "silence"}


def test_naive_timestamps_are_read_as_utc():
    alert = _alert("firing", "a1")
    alert["startsAt"] = "2026-11-27T07:25:51"
    (native,) = to_native(AlertmanagerPayload.model_validate(_payload(alert)), Integration())
    assert native.starts_at.tzinfo is not None


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda p: p.update(alerts=[]), "alerts"),
        (lambda p: p.pop("alerts"), "alerts"),
        (lambda p: p["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda p: p["alerts"][0].update(labels={"service": 3}), "alerts.0.labels.service"),
    ],
)
def test_invalid_webhooks_name_the_field(mutate, field):
    body = _payload(_alert("firing", "a1"))
    mutate(body)
    with pytest.raises(ValidationError) as exc:
        AlertmanagerPayload.model_validate(body)
    assert field in {".".join(str(p) for p in e["loc"]) for e in exc.value.errors()}


@pytest.mark.parametrize(
    "field, value",
    [("truncatedAlerts", True), ("truncatedAlerts", "3"), ("truncatedAlerts", 1.5), ("orgId", False)],
)
def test_integers_are_json_integers_only(field, value):
    with pytest.raises(ValidationError):
        AlertmanagerPayload.model_validate({**_payload(_alert("firing", "a1")), field: value})
    assert AlertmanagerPayload.model_validate({**_payload(_alert("firing", "a1")), field: 3.0}).model_dump()[field] == 3


@pytest.mark.parametrize("value", [0, 1764230400, "", "yesterday"])
def test_timestamps_are_rfc3339_text(value):
    alert = _alert("firing", "a1")
    alert["startsAt"] = value
    with pytest.raises(ValidationError):
        AlertmanagerPayload.model_validate(_payload(alert))
