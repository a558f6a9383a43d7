"""The exporter's text: every metric of the contract, with the values the definitions give."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.exporter import COUNTERS, IncidentCollector
from shared.domain import metrics as m

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def scrape(org, facts=(), counts=()) -> dict[str, dict[tuple, float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(org, facts=lambda: list(facts), counts=lambda: list(counts), clock=lambda: NOW))
    text = generate_latest(registry).decode()
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def incident(incident_id, severity="SEV2", minutes=60.0, **fields):
    resolved = NOW - timedelta(minutes=5)
    values = dict(
        incident_id=incident_id, severity=severity, service="svc", team="pager", status="resolved",
        detected_at=resolved - timedelta(minutes=minutes), opened_at=resolved - timedelta(minutes=minutes),
        resolved_at=resolved, first_resolved_at=resolved, mttr_target_minutes=240.0,
    )
    values.update(fields)
    return m.IncidentFacts(**values)


def test_no_data_exports_zeros_and_nothing_misleading(org):
    samples = scrape(org)
    assert "mttr_minutes" not in samples and "reopen_rate" not in samples  # no incident, no mean
    assert samples["postmortem_completion_rate"] == {(): 1.0}
    assert samples["postmortems_required"] == {(): 0.0}
    assert samples["postmortems_overdue"] == {(): 0.0}
    assert samples["incidents_open"] == {(("severity", s),): 0.0 for s in ("SEV1", "SEV2", "SEV3", "SEV4")}
    assert samples["mttr_target_minutes"] == {
        (("severity", "SEV1"),): 60.0, (("severity", "SEV2"),): 240.0,
        (("severity", "SEV3"),): 1440.0, (("severity", "SEV4"),): 4320.0,
    }


def test_mttr_reopen_and_postmortems(org):
    facts = [
        incident("a", minutes=30),
        incident("b", minutes=90, reopen_count=1),
        incident("c", severity="SEV1", minutes=75, mttr_target_minutes=60.0),
        incident("d", status="triggered", resolved_at=None, first_resolved_at=None),
        incident("e", postmortem_required=True, postmortem_status="completed",
                 postmortem_created_at=NOW - timedelta(days=2), postmortem_due_at=NOW + timedelta(days=3)),
        incident("f", postmortem_required=True, postmortem_status="draft",
                 postmortem_created_at=NOW - timedelta(days=6), postmortem_due_at=NOW - timedelta(days=1)),
        incident("g", postmortem_required=True, postmortem_status="draft",
                 postmortem_created_at=NOW - timedelta(days=1), postmortem_due_at=NOW + timedelta(days=4)),
    ]
    samples = scrape(org, facts)
    sev1, sev2 = (("severity", "SEV1"),), (("severity", "SEV2"),)
    assert samples["mttr_minutes"] == {sev1: 75.0, sev2: 60.0}  # a, b, e, f, g: (30+90+60*3)/5
    assert samples["mttr_incidents"] == {sev1: 1.0, sev2: 5.0}
    assert samples["incidents_over_mttr_target"] == {sev1: 1.0, sev2: 0.0}
    assert samples["reopen_rate"] == {sev1: 0.0, sev2: 0.2}
    assert samples["reopen_rate_incidents"] == {sev1: 1.0, sev2: 5.0}
    assert samples["postmortem_completion_rate"] == {(): 0.5}  # e completed, f overdue, g not due yet
    assert (samples["postmortems_required"], samples["postmortems_completed"], samples["postmortems_overdue"]) == (
        {(): 3.0}, {(): 1.0}, {(): 1.0})
    assert samples["incidents_open"][sev2] == 1.0


def test_time_to_acknowledge(org):
    opened = NOW - timedelta(hours=1)
    facts = [incident("a", opened_at=opened, first_acknowledged_at=opened + timedelta(minutes=3)),
             incident("b", opened_at=opened, first_acknowledged_at=opened + timedelta(minutes=5))]
    assert scrape(org, facts)["time_to_acknowledge_minutes"] == {(("severity", "SEV2"),): 4.0}


def test_counters_sum_over_records_and_keep_their_labels(org):
    key = m.counter_key
    counts = [
        {key("incidents_opened_total", (("severity", "SEV1"), ("service", "connector:CRM"))): 2,
         key("escalations_total", (("team", "pager"),)): 3},
        {key("escalations_total", (("team", "pager"),)): 1,
         key("notifications_sent_total", (("team", "pager"), ("channel", "kafka"))): 7},
        {key("not_a_metric_we_export", ()): 9},
    ]
    samples = scrape(org, counts=counts)
    assert samples["incidents_opened_total"][(("service", "connector:CRM"), ("severity", "SEV1"))] == 2.0
    assert samples["escalations_total"][(("team", "pager"),)] == 4.0
    assert samples["notifications_sent_total"][(("channel", "kafka"), ("team", "pager"))] == 7.0
    assert not any(name.startswith("not_a_metric") for name in samples)
    nonzero = {name: {k: v for k, v in values.items() if v} for name, values in samples.items() if name.endswith("_total")}
    assert {name: values for name, values in nonzero.items() if values} == {
        "incidents_opened_total": {(("service", "connector:CRM"), ("severity", "SEV1")): 2.0},
        "escalations_total": {(("team", "pager"),): 4.0},
        "notifications_sent_total": {(("channel", "kafka"), ("team", "pager")): 7.0},
    }


@pytest.mark.parametrize("name", sorted(COUNTERS))
def test_every_contract_counter_is_exported_as_a_counter(org, name):
    labels = tuple((label, "x") for label in COUNTERS[name][1])
    samples = scrape(org, counts=[{m.counter_key(name, labels): 1}])
    assert samples[name][tuple(sorted(labels))] == 1.0


def test_counters_with_known_labels_start_at_zero(org):
    """Alert rules use increase(), which cannot see a series born at 1."""
    samples = scrape(org)
    teams = {(("team", team),) for team in org.teams}
    assert samples["escalation_failures_total"] == {labels: 0.0 for labels in teams}
    assert samples["postmortem_reminders_total"] == {labels: 0.0 for labels in teams}
    assert samples["mttr_target_breaches_total"] == {
        (("severity", sev),): 0.0 for sev in ("SEV1", "SEV2", "SEV3", "SEV4")}
    assert (("service", "connector:CRM"), ("severity", "SEV2")) in samples["incidents_opened_total"]
    assert "notifications_failed_total" not in samples  # no team has a webhook: nothing can fail
    assert set(samples["alerts_rejected_total"]) == {(("reason", "invalid message"),), (("reason", "processing failed"),)}


def test_a_team_with_a_webhook_gets_webhook_series(make_org, raw_config):
    teams = raw_config["teams"]
    teams["payments"] = dict(teams["payments"], webhook={"url": "http://127.0.0.1:9/hook"})
    samples = scrape(make_org(teams=teams))
    assert samples["notifications_failed_total"] == {(("channel", "webhook"), ("team", "payments")): 0.0}
    assert samples["notifications_sent_total"][(("channel", "webhook"), ("team", "payments"))] == 0.0


def test_the_contract_names_are_all_there(org):
    names = set(scrape(org, [incident("a", first_acknowledged_at=NOW - timedelta(hours=1))]))
    wanted = {
        "mttr_minutes", "reopen_rate", "postmortem_completion_rate", "incidents_open", "time_to_acknowledge_minutes",
        "mttr_target_minutes", "incidents_over_mttr_target",
    }
    assert wanted <= names
    assert {
        "incidents_opened_total", "incidents_acknowledged_total", "escalations_total", "escalation_failures_total",
        "notifications_sent_total", "notifications_failed_total", "mttr_target_breaches_total",
        "alerts_received_total", "alerts_deduplicated_total", "alerts_rejected_total",
    } <= set(COUNTERS)
