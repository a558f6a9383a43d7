"""The alert rules, the Grafana dashboard and METRICS.md name only metrics the exporter serves,
and every exported metric is documented."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.metrics.exporter import COUNTERS, IncidentCollector
from shared.domain import metrics as m

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
PROMQL_WORDS = {"sum", "by", "rate", "increase", "count", "label_replace", "on", "job", "up"}


def exported_names(org) -> set[str]:
    resolved = NOW - timedelta(minutes=5)
    facts = [m.IncidentFacts(incident_id="a", severity="SEV1", service="s", team="t", status="resolved",
                             detected_at=resolved - timedelta(hours=1), opened_at=resolved - timedelta(hours=1),
                             first_acknowledged_at=resolved, resolved_at=resolved, first_resolved_at=resolved)]
    registry = CollectorRegistry(auto_describe=False)
    pings = {name: resolved for name in org.heartbeats}
    registry.register(IncidentCollector(org, facts=lambda: facts, counts=lambda: [], clock=lambda: NOW,
                                        pings=lambda: pings))
    text = generate_latest(registry).decode()
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    return names | set(COUNTERS)  # a counter with no series yet is not in the text


def metric_names(expr: str) -> set[str]:
    # Drop label matchers, strings and ranges; what is left that looks like a metric name is one.
    bare = re.sub(r'\{[^}]*\}|"[^"]*"|\[[^\]]*\]', " ", expr)
    return {word for word in re.findall(r"[a-z_][a-z0-9_]*", bare) if "_" in word or word == "up"} - PROMQL_WORDS


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_rules_and_dashboard_use_only_exported_metrics(org):
    known = exported_names(org) | {"up"}
    used = {name for expr in rule_exprs() + dashboard_exprs() for name in metric_names(expr)}
    assert used, "found the metric names"
    assert used <= known, used - known


def test_the_dashboard_shows_the_contract_metrics():
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    for name in ("mttr_minutes", "reopen_rate", "postmortem_completion_rate", "incidents_open", "incidents_opened_total",
                 "time_to_acknowledge_minutes", "escalations_total", "escalation_failures_total",
                 "notifications_sent_total", "notifications_failed_total", "mttr_target_breaches_total",
                 "alerts_received_total", "alerts_deduplicated_total", "alerts_rejected_total"):
        assert name in used, name


def test_every_exported_metric_is_documented(org):
    text = (DEPLOY.parent / "README.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)(?:\{[^}]*\})?`", text))
    exported = {name for name in exported_names(org)}
    assert exported <= documented, exported - documented
