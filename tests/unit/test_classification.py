"""Triage rules: severity, category, impact, regulated, restricted, owning team, playbook."""
from __future__ import annotations

import pytest

from shared.domain.classification import Facts, classify, matches, owning_team
from shared.domain.organisation import Category, Matcher, Severity


def test_security_label(org):
    verdict = classify(Facts(service="connector:ERP", alert_name="SuspiciousLogin", labels={"category": "security"}), org)
    assert verdict.category is Category.SECURITY
    assert verdict.restricted is True
    assert verdict.team == "security" == org.security_team
    assert verdict.playbook is not None and verdict.playbook.name == "security-response"
    assert verdict.severity is Severity.SEV2
    assert verdict.rule == "security-alert"
    assert verdict.impact == "Possible security breach; handled by the security team."
    assert verdict.regulated is False


def test_declared_security_category_without_label(org):
    verdict = classify(Facts(service="billing-worker", category=Category.SECURITY), org)
    assert verdict.category is Category.SECURITY
    assert verdict.restricted is True
    assert verdict.team == "security"
    assert verdict.playbook.name == "security-response"
    # The security-alert rule matches on the label only, so no rule decided the severity.
    assert verdict.rule is None
    assert verdict.severity is Severity.SEV3


def test_critical_on_tier_1_is_sev1(org):
    verdict = classify(Facts(service="checkout-api", alert_name="Down", source_severity="critical"), org)
    assert verdict.severity is Severity.SEV1
    assert verdict.rule == "critical-on-tier-1"
    assert verdict.category is Category.OPERATIONAL
    assert verdict.restricted is False
    assert verdict.team == "payments"
    assert verdict.impact == "A tier-1 service is down or badly degraded for customers."
    assert verdict.regulated is False  # regulated service, but not a data-integrity problem


def test_error_on_tier_1_is_sev2(org):
    verdict = classify(Facts(service="kubernetes", source_severity="error"), org)
    assert (verdict.severity, verdict.rule, verdict.team) == (Severity.SEV2, "error-on-tier-1", "platform")


@pytest.mark.parametrize(
    ("source_severity", "expected"),
    [
        ("critical", Severity.SEV2),
        ("error", Severity.SEV3),
        ("warning", Severity.SEV4),
        ("info", Severity.SEV4),
        (None, Severity.SEV3),  # default_severity
        ("disaster", Severity.SEV3),  # unknown: default_severity
    ],
)
def test_source_severity_defaults(org, source_severity, expected):
    verdict = classify(Facts(service="billing-worker", source_severity=source_severity), org)  # tier 2
    assert verdict.rule is None
    assert verdict.severity is expected


def test_default_severity_comes_from_the_configuration(make_org):
    org = make_org(default_severity="SEV4")
    assert classify(Facts(service="billing-worker"), org).severity is Severity.SEV4
    assert classify(Facts(service="billing-worker", source_severity="critical"), org).severity is Severity.SEV2


def test_data_integrity_on_a_regulated_service_is_regulated(org):
    verdict = classify(Facts(service="checkout-api", labels={"category": "data-integrity"}), org)
    assert verdict.category is Category.DATA_INTEGRITY
    assert verdict.regulated is True
    assert verdict.severity is Severity.SEV2 and verdict.rule == "data-integrity"
    assert verdict.restricted is False
    assert verdict.team == "payments"


def test_data_integrity_on_an_unregulated_service_is_not_regulated(org):
    verdict = classify(Facts(service="billing-worker", labels={"category": "data-integrity"}), org)
    assert verdict.category is Category.DATA_INTEGRITY
    assert verdict.regulated is False


def test_first_matching_rule_wins(org):
    # Matches security-alert (first) and critical-on-tier-1 (third).
    facts = Facts(service="checkout-api", source_severity="critical", labels={"category": "security"})
    verdict = classify(facts, org)
    assert verdict.rule == "security-alert"
    assert verdict.severity is Severity.SEV2


def test_rule_order_decides(make_org, raw_config):
    rules = raw_config["severity_rules"]
    reordered = [rules[2], *rules[:2], rules[3]]  # critical-on-tier-1 first
    org = make_org(severity_rules=reordered)
    facts = Facts(service="checkout-api", source_severity="critical", labels={"category": "security"})
    verdict = classify(facts, org)
    assert verdict.rule == "critical-on-tier-1"
    assert verdict.severity is Severity.SEV1
    assert verdict.category is Category.SECURITY  # still from the label: the rule sets no category


def test_severity_override_wins_over_the_rule(org):
    facts = Facts(service="checkout-api", source_severity="critical")
    verdict = classify(facts, org, severity_override=Severity.SEV3)
    assert verdict.severity is Severity.SEV3
    assert verdict.rule == "critical-on-tier-1"


def test_impact_falls_back_to_the_annotation_then_a_sentence(org):
    annotated = classify(Facts(service="billing-worker", alert_name="Slow", annotations={"impact": "invoices late"}), org)
    assert annotated.impact == "invoices late"
    plain = classify(Facts(service="billing-worker", alert_name="Slow"), org)
    assert plain.impact == "billing-worker is affected: Slow"
    declared = classify(Facts(service="billing-worker"), org)
    assert declared.impact == "billing-worker is affected: declared incident"


def test_rule_regulated_flag_overrides(make_org):
    org = make_org(
        severity_rules=[{"name": "pii", "match": {"labels": {"pii": "yes"}}, "regulated": True}],
    )
    verdict = classify(Facts(service="billing-worker", labels={"pii": "yes"}), org)
    assert verdict.regulated is True and verdict.category is Category.OPERATIONAL
    org = make_org(
        severity_rules=[{"name": "not-pii", "match": {"labels": {"category": "data-integrity"}}, "regulated": False}],
    )
    verdict = classify(Facts(service="checkout-api", labels={"category": "data-integrity"}), org)
    assert verdict.category is Category.DATA_INTEGRITY and verdict.regulated is False


def test_unknown_service_goes_to_the_fallback_team(org):
    verdict = classify(Facts(service="mystery", source_severity="critical"), org)
    assert verdict.team == "incident-managers"
    assert verdict.rule is None  # service_tiers cannot match an unknown service
    assert verdict.severity is Severity.SEV2


def test_owning_team(org):
    assert owning_team(Facts(service="kubernetes"), org, Category.OPERATIONAL) == "platform"
    assert owning_team(Facts(service="kubernetes"), org, Category.SECURITY) == "security"
    assert owning_team(Facts(service="nope"), org, Category.DATA_INTEGRITY) == "incident-managers"


def test_playbooks_match_services_and_categories(org):
    assert classify(Facts(service="connector:CRM"), org).playbook.name == "crm-connector"
    assert classify(Facts(service="postgres-main"), org).playbook.name == "database"
    assert classify(Facts(service="billing-worker"), org).playbook is None
    # First matching playbook wins: the CRM playbook comes before security-response.
    security_on_crm = classify(Facts(service="connector:CRM", labels={"category": "security"}), org)
    assert security_on_crm.playbook.name == "crm-connector"


# --- matchers ------------------------------------------------------------------------


def facts(**fields):
    base = {"service": "checkout-api", "alert_name": "HighLatency", "source_severity": "error",
            "labels": {"instance": "db-12", "env": "prod"}, "annotations": {"team": "payments"}}
    base.update(fields)
    return Facts(**base)


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        ({}, True),
        ({"services": ["checkout-api", "x"]}, True),
        ({"services": ["billing-worker"]}, False),
        ({"alert_names": ["HighLatency"]}, True),
        ({"alert_names": ["Other"]}, False),
        ({"source_severities": ["error", "critical"]}, True),
        ({"source_severities": ["warning"]}, False),
        ({"service_tiers": [1]}, True),
        ({"service_tiers": [2, 3]}, False),
        ({"labels": {"env": "prod"}}, True),
        ({"labels": {"env": "prod", "instance": "db-1"}}, False),
        ({"labels": {"missing": ""}}, False),
        ({"label_patterns": {"instance": r"db-\d+"}}, True),
        ({"label_patterns": {"instance": r"db-\d"}}, False),  # full match, not search
        ({"label_patterns": {"instance": r"b-\d+"}}, False),
        ({"label_patterns": {"absent": r".+"}}, False),
        ({"label_patterns": {"absent": r".*"}}, True),  # a missing label is the empty string
        ({"annotations": {"team": "payments"}}, True),
        ({"annotations": {"team": "platform"}}, False),
        ({"regulated_service": True}, True),
        ({"regulated_service": False}, False),
        ({"services": ["checkout-api"], "service_tiers": [2]}, False),  # every condition must hold
    ],
)
def test_matcher_conditions(org, matcher, expected):
    assert matches(Matcher(**matcher), facts(), org) is expected


def test_matcher_on_an_unknown_service(org):
    unknown = facts(service="mystery")
    assert matches(Matcher(service_tiers=[1, 2, 3, 4]), unknown, org) is False
    assert matches(Matcher(regulated_service=False), unknown, org) is True
    assert matches(Matcher(regulated_service=True), unknown, org) is False


def test_matcher_categories(org):
    matcher = Matcher(categories=[Category.SECURITY])
    assert matches(matcher, facts(), org, Category.SECURITY) is True
    assert matches(matcher, facts(), org, Category.OPERATIONAL) is False
    assert matches(matcher, facts(), org, None) is False


def test_label_pattern_rule_and_service_tier_rule(make_org):
    org = make_org(
        severity_rules=[
            {"name": "db-hosts", "match": {"label_patterns": {"instance": r"db-\d+"}}, "severity": "SEV1"},
            {"name": "tier-2", "match": {"service_tiers": [2]}, "severity": "SEV2", "impact": "tier 2 hurt"},
        ]
    )
    assert classify(Facts(service="billing-worker", labels={"instance": "db-3"}), org).rule == "db-hosts"
    tiered = classify(Facts(service="billing-worker", labels={"instance": "web-3"}), org)
    assert (tiered.rule, tiered.severity, tiered.impact) == ("tier-2", Severity.SEV2, "tier 2 hurt")
    assert classify(Facts(service="kubernetes", labels={"instance": "web-3"}), org).rule is None
