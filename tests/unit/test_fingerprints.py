"""Stable keys: the fingerprint (deduplication) and the correlation key (grouping)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.alerts import Alert, AlertAction, AlertStatus, correlation_key, fingerprint


@pytest.fixture
def by_instance_and_job(make_org):
    return make_org(fingerprint_labels=["instance", "job"])


def test_the_source_dedup_key_wins(org, make_alert):
    alert = make_alert(dedup_key="srv-42/disk")
    assert fingerprint(alert, org) == "srv-42/disk"
    other = make_alert(dedup_key="srv-42/disk", service="kubernetes", labels={"instance": "x"})
    assert fingerprint(other, org) == "srv-42/disk"


def test_fingerprint_is_stable(org, make_alert, now):
    first = make_alert()
    second = make_alert(received_at=now + timedelta(hours=1), summary="different words", source="grafana",
                        annotations={"note": "x"}, action=AlertAction.RESOLVE)
    assert first.alert_id != second.alert_id
    assert fingerprint(first, org) == fingerprint(second, org)
    assert len(fingerprint(first, org)) == 32
    assert fingerprint(first, org) == fingerprint(first, org)


def test_fingerprint_is_a_known_value(org, make_alert):
    # Pinned: a change here would split every open incident's deduplication on upgrade.
    import hashlib

    expected = hashlib.sha256("\x1f".join(["fp", "connector:ERP", "QueueBacklog", "instance=erp-1"]).encode()).hexdigest()[:32]
    assert fingerprint(make_alert(), org) == expected


def test_fingerprint_ignores_label_order(by_instance_and_job, make_org, make_alert):
    one = make_alert(labels={"alertname": "A", "instance": "i-1", "job": "sync"})
    two = make_alert(labels={"job": "sync", "instance": "i-1", "alertname": "A"})
    assert fingerprint(one, by_instance_and_job) == fingerprint(two, by_instance_and_job)
    reversed_config = make_org(fingerprint_labels=["job", "instance"])
    assert fingerprint(one, reversed_config) == fingerprint(one, by_instance_and_job)


def test_fingerprint_changes_with_a_configured_label(by_instance_and_job, make_alert):
    base = fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1", "job": "sync"}), by_instance_and_job)
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "i-2", "job": "sync"}), by_instance_and_job) != base
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1", "job": "load"}), by_instance_and_job) != base
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1"}), by_instance_and_job) != base


def test_fingerprint_ignores_unconfigured_labels(org, make_alert):
    base = fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1"}), org)
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1", "pod": "p-7"}), org) == base
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "i-1", "pod": "p-8"}), org) == base


def test_fingerprint_depends_on_service_and_alert_name(org, make_alert):
    base = fingerprint(make_alert(), org)
    assert fingerprint(make_alert(service="connector:CRM"), org) != base
    assert fingerprint(make_alert(labels={"alertname": "Other", "instance": "erp-1"}), org) != base
    # The explicit alert name beats the alertname label.
    assert fingerprint(make_alert(alert_name="QueueBacklog", labels={"alertname": "X", "instance": "erp-1"}), org) == base


def test_without_fingerprint_labels_only_service_and_name_count(make_org, make_alert):
    org = make_org(fingerprint_labels=[])
    assert fingerprint(make_alert(labels={"alertname": "A", "instance": "1"}), org) == fingerprint(
        make_alert(labels={"alertname": "A", "instance": "2"}), org
    )


def test_empty_and_missing_configured_label_are_the_same(org, make_alert):
    assert fingerprint(make_alert(labels={"alertname": "A"}), org) == fingerprint(
        make_alert(labels={"alertname": "A", "instance": ""}), org
    )


# --- correlation ------------------------------------------------------------------------------


def test_group_by_alertname_folds_fingerprints_of_one_service_and_alert(org, make_alert):
    assert org.group_by == ["alertname"]
    one = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-1"})
    two = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-2"})
    assert fingerprint(one, org) != fingerprint(two, org)
    assert correlation_key(one, org) == correlation_key(two, org)
    assert correlation_key(one, org).startswith("grp:")
    assert correlation_key(make_alert(labels={"alertname": "Other", "instance": "erp-1"}), org) != correlation_key(one, org)
    assert correlation_key(make_alert(service="connector:CRM", labels=one.labels), org) != correlation_key(one, org)


def test_group_by_a_label(make_org, make_alert):
    org = make_org(group_by=["alertname", "cluster"])
    eu = make_alert(labels={"alertname": "A", "cluster": "eu", "instance": "1"})
    eu_other_instance = make_alert(labels={"alertname": "A", "cluster": "eu", "instance": "2"})
    us = make_alert(labels={"alertname": "A", "cluster": "us", "instance": "1"})
    assert correlation_key(eu, org) == correlation_key(eu_other_instance, org)
    assert correlation_key(eu, org) != correlation_key(us, org)


def test_without_group_by_each_fingerprint_is_its_own_incident(make_org, make_alert):
    org = make_org(group_by=[])
    one = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-1"})
    one_again = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-1"}, summary="again")
    two = make_alert(labels={"alertname": "QueueBacklog", "instance": "erp-2"})
    assert correlation_key(one, org) == correlation_key(one_again, org)
    assert correlation_key(one, org) != correlation_key(two, org)
    assert correlation_key(one, org).startswith("fp:")
    # The same dedup key on two services is two incidents.
    assert correlation_key(make_alert(dedup_key="k"), org) != correlation_key(make_alert(dedup_key="k", service="kubernetes"), org)


# --- the alert model ------------------------------------------------------------------------------


def test_alert_status_name_and_detection_time(now):
    alert = Alert(alert_id="a", service="s", summary="Disk full", received_at=now)
    assert alert.status is AlertStatus.FIRING
    assert alert.name == "Disk full"
    assert alert.detection(timedelta(hours=24)).at == now
    assert alert.model_copy(update={"action": AlertAction.ACKNOWLEDGE}).status is AlertStatus.FIRING
    assert alert.model_copy(update={"action": AlertAction.RESOLVE}).status is AlertStatus.RESOLVED
    labelled = Alert(alert_id="a", service="s", summary="Disk full", labels={"alertname": "DiskFull"}, received_at=now)
    assert labelled.name == "DiskFull"
    named = labelled.model_copy(update={"alert_name": "Named"})
    assert named.name == "Named"
    started = alert.model_copy(update={"starts_at": now - timedelta(minutes=3)})
    assert started.detection(timedelta(hours=24)).at == now - timedelta(minutes=3)
