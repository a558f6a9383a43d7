"""PagerDuty Events API v2: the documented example events, validation, and the mapping to native alerts."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingestion.formats.pagerduty import Invalid, PagerDutyEvent, check, dedup_key_for, scoped, to_native
from shared.domain.alerts import AlertAction
from shared.domain.organisation import Integration, LabelNames

KEY = "0123456789abcdef0123456789abcdef"
SERVICES = {"connector:CRM", "checkout-api", "postgres"}

# PagerDuty's own documented example trigger (with a real 32-character routing key).
EXAMPLE_TRIGGER = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": KEY,
    "dedup_key": "samplekeyhere",
    "images": [{"src": "https://www.pagerduty.com/logo.png", "href": "https://example.com/", "alt": "Example text"}],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.example.com",
}


def _event(**changes) -> PagerDutyEvent:
    event = PagerDutyEvent.model_validate({**EXAMPLE_TRIGGER, **changes})
    check(event)
    return event


def test_documented_trigger_maps_every_field():
    event = _event()
    native = to_native(event, dedup_key_for(event), Integration(), "monitoring", SERVICES)
    assert native.action is AlertAction.TRIGGER and native.status == "firing"
    assert native.dedup_key == "pd:monitoring:samplekeyhere"
    assert native.service == "postgres"  # the component names a configured service
    assert native.alert_name == "deploy"
    assert native.severity == "info"
    assert native.summary == "Example alert on host1.example.com"
    assert native.starts_at.isoformat() == "2015-07-17T08:42:58.315000+00:00"
    assert native.labels["load avg"] == "0.75" and native.labels["group"] == "prod-datapipe"
    assert native.source.startswith("monitoringtool:")
    assert [(link.text, link.href) for link in native.links] == [
        ("Link text", "https://example.com/"), ("Sample Monitoring Service", "https://monitoring.example.com")]
    assert '"ping time": "1500ms"' in native.annotations["custom_details"]


def test_documented_acknowledge_and_resolve_need_only_the_key():
    for action in ("acknowledge", "resolve"):
        event = PagerDutyEvent.model_validate(
            {"routing_key": KEY, "dedup_key": "samplekeyhere", "event_action": action})
        check(event)
        native = to_native(event, dedup_key_for(event), Integration(default_service="checkout-api"), "monitoring")
        assert native.action.value == action
        assert native.dedup_key == "pd:monitoring:samplekeyhere"
        # No payload: triage completes it from the trigger that used the same key.
        assert native.service == "unknown"
    assert to_native(event, "samplekeyhere", Integration(), "monitoring").status == "resolved"


def test_a_trigger_without_dedup_key_gets_one():
    event = _event(dedup_key=None)
    first, second = dedup_key_for(event), dedup_key_for(event)
    assert len(first) == 32 and first != second
    assert dedup_key_for(_event(dedup_key="")) != ""


def test_service_comes_from_a_label_then_a_known_component_then_the_integration_default():
    payload = dict(EXAMPLE_TRIGGER["payload"])
    integration = Integration(default_service="checkout-api")
    event = _event(payload={**payload, "component": "Grafana"})
    assert to_native(event, "k", integration, "m", SERVICES).service == "checkout-api"
    assert to_native(event, "k", Integration(), "m", SERVICES).service == "Grafana"
    labelled = _event(payload={**payload, "custom_details": {"app": "connector:CRM"}})
    relabel = Integration(label_names=LabelNames(service="app"), default_service="checkout-api")
    assert to_native(labelled, "k", relabel, "m", SERVICES).service == "connector:CRM"


def test_dedup_keys_are_scoped_by_integration():
    assert scoped("a", "k") != scoped("b", "k")
    long = scoped("integration", "k" * 255)
    assert long.startswith("pd:") and len(long) <= 255


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"routing_key": "short"}, "routing_key"),
        ({"event_action": "escalate"}, "event_action"),
        ({"dedup_key": "x" * 256}, "dedup_key"),
        ({"payload": {**EXAMPLE_TRIGGER["payload"], "severity": "fatal"}}, "payload.severity"),
        ({"payload": {**EXAMPLE_TRIGGER["payload"], "summary": "x" * 1025}}, "payload.summary"),
        ({"payload": {"summary": "no source", "severity": "info"}}, "payload.source"),
    ],
)
def test_invalid_events_name_the_field(changes, expected):
    with pytest.raises(ValidationError) as exc:
        PagerDutyEvent.model_validate({**EXAMPLE_TRIGGER, **changes})
    assert expected in {".".join(str(p) for p in e["loc"]) for e in exc.value.errors()}


def test_semantic_rules_trigger_needs_payload_and_ack_needs_key():
    with pytest.raises(Invalid, match="payload"):
        check(PagerDutyEvent.model_validate({"routing_key": KEY, "event_action": "trigger"}))
    with pytest.raises(Invalid, match="dedup_key"):
        check(PagerDutyEvent.model_validate({"routing_key": KEY, "event_action": "resolve"}))


def test_an_acknowledge_is_not_refused_for_a_payload_it_does_not_need():
    event = PagerDutyEvent.model_validate(
        {"routing_key": KEY, "dedup_key": "k", "event_action": "acknowledge", "payload": {"summary": ""}})
    check(event)
    assert event.payload is None


def test_details_named_like_annotations_become_annotations():
    payload = {**EXAMPLE_TRIGGER["payload"],
               "custom_details": {"runbook_url": "https://runbooks.example.com/x", "description": "disk full", "n": 2}}
    native = to_native(_event(payload=payload), "k", Integration(), "m")
    assert native.annotations["runbook_url"] == "https://runbooks.example.com/x"
    assert native.annotations["description"] == "disk full"
    assert "runbook_url" not in native.labels and native.labels["n"] == "2"
