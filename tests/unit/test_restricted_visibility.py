"""A restricted (security) incident never leaks: the rule (shared/domain/visibility.py) and
each place that applies it without I/O: correlation, notifications, metric labels, the exporter."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest

from services.ingestion.intake import topic_key
from services.metrics.exporter import IncidentCollector, known_series
from shared.domain import metrics as m
from shared.domain.alerts import correlation_key, fingerprint
from shared.domain.classification import Facts, classify, restricted_alert
from shared.domain.notifications import plan
from shared.domain.organisation import Category
from shared.domain.visibility import RESTRICTED, is_restricted, metric_service, visible
from shared.messages import NativeAlert

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
SECRET = "vault-prod-eu"  # a service name that must never reach a metric label


def test_the_rule():
    assert is_restricted(Category.SECURITY)
    assert not any(is_restricted(c) for c in Category if c is not Category.SECURITY)
    assert visible(restricted=False, may_read_restricted=False)
    assert not visible(restricted=True, may_read_restricted=False)
    assert visible(restricted=True, may_read_restricted=True)
    assert metric_service(SECRET, restricted=True) == RESTRICTED
    assert metric_service(SECRET, restricted=False) == SECRET


def test_classification_uses_the_rule(org):
    verdict = classify(Facts(service="connector:ERP", labels={"category": "security"}), org)
    assert verdict.category is Category.SECURITY and verdict.restricted and verdict.team == org.security_team
    assert not classify(Facts(service="connector:ERP", labels={"alertname": "x"}), org).restricted


def test_a_security_alert_never_folds_into_an_operational_incident(org, make_alert):
    operational = make_alert()
    security = make_alert(labels={**operational.labels, "category": "security"})
    assert fingerprint(security, org) == fingerprint(operational, org)  # same problem, same host
    assert correlation_key(security, org) != correlation_key(operational, org)
    # Two security alerts of one problem still fold together.
    assert correlation_key(security, org) == correlation_key(make_alert(labels=security.labels, summary="again"), org)


def test_operational_keys_are_unchanged(org, make_alert):
    # Pinned: a changed operational key would split every open incident on upgrade.
    alert = make_alert()
    expected = "grp:" + hashlib.sha256("\x1f".join(["connector:ERP", "QueueBacklog"]).encode()).hexdigest()[:32]
    assert correlation_key(alert, org) == expected


def test_a_rule_that_makes_an_alert_security_keeps_it_apart_too(make_org, make_alert, raw_config):
    rules = [{"name": "leaked-creds", "match": {"alert_names": ["CredentialsLeaked"]}, "severity": "SEV1",
              "category": "security"}, *raw_config["severity_rules"]]
    org = make_org(severity_rules=rules)
    leaked = make_alert(labels={"alertname": "CredentialsLeaked", "instance": "erp-1"})
    assert restricted_alert(leaked.service, leaked.name, leaked.source_severity, leaked.labels, leaked.annotations, org)
    assert classify(Facts(service=leaked.service, alert_name=leaked.name, labels=leaked.labels), org).restricted
    assert not restricted_alert("connector:ERP", "QueueBacklog", "error", {"alertname": "QueueBacklog"}, {}, org)


def test_intake_keys_a_security_alert_where_triage_folds_it(org, make_alert):
    native = NativeAlert(service="connector:ERP", summary="ERP sync backlog", severity="error",
                         labels={"alertname": "QueueBacklog", "instance": "erp-1", "category": "security"})
    alert = native.to_alert(alert_id="a-1", received_at=NOW)
    fp = fingerprint(alert, org)
    assert topic_key(native, alert.name, fp, org) == correlation_key(alert, org)


def test_a_restricted_incident_is_told_only_to_the_security_team(org, open_incident, make_alert):
    line = open_incident(alert=make_alert(service="connector:CRM", labels={"alertname": "Exfil", "category": "security"}))
    incident = line.state.model_copy(update={"regulated": True})  # a regulated service too
    assert incident.restricted
    for change in ("opened", "escalation_failed", "resolved", "mttr_target_breached"):
        teams = {o.team for o in plan(change, incident, {"fallback_team": org.fallback_team}, "x", org)}
        assert teams == {org.security_team}, change


def test_metric_labels_name_a_restricted_incident_restricted(org, open_incident, make_alert):
    line = open_incident(alert=make_alert(service=SECRET, labels={"alertname": "Exfil", "category": "security"}))
    incident = line.state
    assert m.counter_increments("opened", incident) == [
        ("incidents_opened_total", (("severity", incident.severity.value), ("service", RESTRICTED)))]
    facts = m.apply_audit(None, 1, "opened", incident)
    assert facts.restricted and facts.service == RESTRICTED
    attached = m.apply_audit(facts, 2, "alerts_attached", incident, firing=3)
    assert m.counter_key("alerts_deduplicated_total", (("service", RESTRICTED),)) in attached.counts
    # The alert-only fold (the event's head) hides it too, even from facts written without the flag.
    legacy = facts.model_copy(update={"restricted": False})
    folded = m.apply_alert(legacy, 3, "alerts_attached", SECRET, firing=2, restricted=True)
    assert all(SECRET not in key for key in folded.counts)


def test_the_exporter_never_names_a_restricted_service(org, open_incident, make_alert):
    secret = open_incident(alert=make_alert(service=SECRET, labels={"alertname": "Exfil", "category": "security"}))
    facts = m.apply_audit(None, 1, "opened", secret.state)
    facts = m.apply_audit(facts, 2, "alerts_attached", secret.state, firing=4)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IncidentCollector(org, facts=lambda: [facts], counts=lambda: [facts.counts], clock=lambda: NOW))
    text = generate_latest(registry).decode()
    assert SECRET not in text
    assert f'incidents_opened_total{{service="{RESTRICTED}",severity="SEV2"}} 1.0' in text
    assert f'alerts_deduplicated_total{{service="{RESTRICTED}"}} 4.0' in text
    # Born at 0 like every configured service, so an alert rule sees the first one.
    assert ("incidents_opened_total", (("severity", "SEV1"), ("service", RESTRICTED))) in known_series(org)


def test_visible_facts_leave_a_restricted_incident_out_of_every_gauge(org, open_incident, make_alert):
    """What the console's Numbers page shows a role that may not read restricted incidents:
    the metrics service's ?restricted=exclude view filters the facts with the rule."""
    secret = open_incident(alert=make_alert(service=SECRET, labels={"alertname": "Exfil", "category": "security"}))
    plain = open_incident(alert=make_alert(), incident_id="INC-2026-03-02-002")
    all_facts = [m.apply_audit(None, 1, "opened", secret.state), m.apply_audit(None, 1, "opened", plain.state)]
    shown = [f for f in all_facts if visible(f.restricted, may_read_restricted=False)]
    assert [f.incident_id for f in shown] == ["INC-2026-03-02-002"]
    assert sum(m.open_incidents(all_facts).values()) == 2 and sum(m.open_incidents(shown).values()) == 1
    assert m.open_incidents(shown) == {plain.state.severity.value: 1}


def test_the_console_asks_for_the_numbers_without_restricted_incidents_unless_the_role_may_read_them():
    import asyncio

    import httpx

    from services.web.metrics_reader import read_numbers

    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, text='incidents_open{severity="SEV2"} 1.0\n')

    async def read(include_restricted: bool):
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            return await read_numbers(http, "http://metrics/metrics", include_restricted)

    assert asyncio.run(read(False)).severity("incidents_open", "SEV2") == 1.0
    asyncio.run(read(True))
    assert asked == ["http://metrics/metrics?restricted=exclude", "http://metrics/metrics"]
