"""Opsgenie Alert API v2: the documented create body, what Alertmanager sends, and the mapping to native alerts."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.ingestion.formats import opsgenie as og
from shared.domain.alerts import AlertAction
from shared.domain.organisation import Integration, LabelNames

SERVICES = {"connector:CRM", "checkout-api"}
REQUEST = "513085b8-caf3-4f91-aa23-be5fdefc3570"

# Opsgenie's documented example create request.
DOCUMENTED = {
    "message": "An example alert message",
    "alias": "Life is too short for no alias",
    "description": "Every alert needs a description",
    "responders": [
        {"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "team"},
        {"name": "NOC", "type": "team"},
        {"id": "bb4d9938-c3c2-455d-aaab-727aa701c0d8", "type": "user"},
        {"username": "trinity@opsgenie.com", "type": "user"},
        {"id": "aee8a0de-c80f-4515-a232-501c0bc9d715", "type": "escalation"},
        {"name": "Nightwatch Escalation", "type": "escalation"},
        {"id": "80564037-1984-4f38-b98e-8a1f662df552", "type": "schedule"},
        {"name": "First Responders Schedule", "type": "schedule"},
    ],
    "visibleTo": [{"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "team"}, {"name": "rocket_team", "type": "team"}],
    "actions": ["Restart", "AnExampleAction"],
    "tags": ["OverwriteQuietHours", "Critical"],
    "details": {"key1": "value1", "key2": "value2"},
    "entity": "An example entity",
    "priority": "P1",
}

# What Alertmanager's opsgenie_configs sends for a group (details are the common labels).
ALERTMANAGER = {
    "alias": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
    "message": "[FIRING:1] CheckoutDown checkout-api",
    "description": "Checkout is down",
    "details": {"alertname": "CheckoutDown", "service": "checkout-api", "severity": "critical"},
    "source": "http://alertmanager:9093",
    "tags": ["payments"],
}


def _create(body: dict, integration: Integration = Integration(), name: str = "opsgenie"):
    alert = og.OpsgenieAlert.model_validate(body)
    return og.create_alert(alert, alert.alias or "generated", integration, name, REQUEST, SERVICES)


def test_the_documented_example_maps_to_a_native_alert():
    native = _create(DOCUMENTED)
    assert native.summary == "An example alert message"
    assert native.dedup_key == "og:opsgenie:Life is too short for no alias"
    assert native.severity == "critical"  # P1 with the default priorities
    assert native.labels["priority"] == "P1"
    assert native.labels["key1"] == "value1" and native.labels["tags"] == "OverwriteQuietHours,Critical"
    assert native.labels["entity"] == "An example entity"
    assert native.labels["responders"].startswith("team:4513b7ea")
    assert native.annotations["description"] == "Every alert needs a description"
    assert native.team == "NOC"  # the first team responder named by name
    assert native.service == "An example entity"  # not a known service, but the best name there is
    assert native.alert_id == og.alert_id_for("opsgenie", "create", REQUEST)
    assert native.action is AlertAction.TRIGGER and native.source == "opsgenie"


def test_what_alertmanager_sends_finds_the_service_and_severity_in_the_common_labels():
    native = _create(ALERTMANAGER)
    assert native.service == "checkout-api"
    assert native.alert_name == "CheckoutDown"
    # No priority given: the severity label says more than Opsgenie's default P3.
    assert native.severity == "critical"
    assert native.labels["priority"] == "P3"
    assert native.annotations["opsgenie_source"] == "http://alertmanager:9093"


def test_priority_maps_through_the_configuration_and_decides_over_a_label():
    integration = Integration.model_validate({"priorities": {"P1": "critical", "P3": "error"}})
    assert integration.priorities["P5"] == "info", "a partial map keeps the other defaults"
    assert _create({**ALERTMANAGER, "priority": "P3"}, integration).severity == "error"
    for priority, severity in (("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info"), ("P5", "info")):
        assert _create({"message": "m", "priority": priority}).severity == severity


def test_unknown_priority_mapping_is_a_configuration_error():
    with pytest.raises(ValidationError, match="priorities"):
        Integration.model_validate({"priorities": {"P1": "fatal"}})


def test_service_order_label_then_known_entity_then_default():
    names = Integration(label_names=LabelNames(service="app"), default_service="connector:CRM")
    assert _create({"message": "m", "details": {"app": "billing"}, "entity": "checkout-api"}, names).service == "billing"
    assert _create({"message": "m", "entity": "checkout-api"}, names).service == "checkout-api"
    assert _create({"message": "m", "entity": "some host"}, names).service == "connector:CRM"
    assert _create({"message": "m"}).service == "unknown"


def test_a_long_message_is_kept_to_130_characters_and_values_become_text():
    native = _create({"message": "x" * 500, "details": {"count": 3, "ok": True}, "tags": [1]})
    assert len(native.summary) == 130
    assert native.labels["count"] == "3" and native.labels["ok"] == "true" and native.labels["tags"] == "1"


@pytest.mark.parametrize("body, field", [
    ({}, "message"),
    ({"message": "   "}, "message"),
    ({"message": "m", "alias": "a" * 513}, "alias"),
    ({"message": "m", "priority": "P0"}, "priority"),
    ({"message": "m", "tags": ["t"] * 21}, "tags"),
    ({"message": "m", "details": {"k": {"nested": 1}}}, "details.k"),
    ({"message": "m", "responders": [{"name": "ops"}]}, "responders.0.type"),
])
def test_invalid_bodies_name_the_field(body, field):
    with pytest.raises(ValidationError) as caught:
        og.OpsgenieAlert.model_validate(body)
    assert any(".".join(str(p) for p in error["loc"]).startswith(field) for error in caught.value.errors())


def test_close_and_acknowledge_carry_only_the_alias_like_a_pagerduty_resolve():
    body = og.OpsgenieAction(source="http://alertmanager:9093")
    closed = og.follow_up("close", body, "abc", "opsgenie", REQUEST)
    assert (closed.status, closed.action, closed.service) == ("resolved", AlertAction.RESOLVE, "unknown")
    assert closed.dedup_key == _create({"message": "m", "alias": "abc"}).dedup_key
    acked = og.follow_up("acknowledge", og.OpsgenieAction(note="looking", user="alice"), "abc", "opsgenie", REQUEST)
    assert (acked.status, acked.action) == ("firing", AlertAction.ACKNOWLEDGE)
    assert acked.summary == "looking" and acked.annotations == {"note": "looking", "user": "alice"}
    assert acked.alert_id == og.alert_id_for("opsgenie", "acknowledge", REQUEST)


def test_aliases_are_scoped_by_integration_and_long_ones_hashed():
    assert og.scoped("a", "x") != og.scoped("b", "x")
    long = og.scoped("opsgenie", "y" * 512)
    assert long.startswith("og:") and len(long) == 67
    assert og.alias_of("opsgenie", og.scoped("opsgenie", "abc")) == "abc"
    assert og.alias_of("other", og.scoped("opsgenie", "abc")) is None


@pytest.mark.parametrize("alias", ["abc", "Life is too short for no alias", "ünïcode/with?odd&chars", "6b86" * 16])
def test_alert_ids_decode_back_to_their_alias(alias):
    alert_id = og.alert_id_of(alias)
    assert "/" not in alert_id and "=" not in alert_id
    assert og.alias_from_id(alert_id) == alias


@pytest.mark.parametrize("alert_id", ["", "!!!", "a", "_-_-", "8743a1b2-11da-480e-8493-744660987bef"])
def test_ids_that_are_not_ours_decode_to_nothing(alert_id):
    assert og.alias_from_id(alert_id) is None
