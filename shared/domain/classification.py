"""Triage rules: severity, impact, category, regulated flag, owning team, playbook."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .organisation import Category, Matcher, Organisation, Playbook, Severity
from .visibility import is_restricted

# When no rule decides, the source's own severity maps onto ours.
_SOURCE_DEFAULTS = {
    "critical": Severity.SEV2,
    "error": Severity.SEV3,
    "warning": Severity.SEV4,
    "info": Severity.SEV4,
}


@dataclass(frozen=True)
class Facts:
    """What rules may look at, for an alert or a declared incident alike."""

    service: str
    alert_name: str = ""
    source_severity: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    category: Category | None = None


@dataclass(frozen=True)
class Classification:
    severity: Severity
    category: Category
    impact: str
    regulated: bool
    restricted: bool
    team: str
    rule: str | None
    playbook: Playbook | None


def matches(matcher: Matcher, facts: Facts, org: Organisation, category: Category | None = None) -> bool:
    service = org.services.get(facts.service)
    if matcher.services and facts.service not in matcher.services:
        return False
    if matcher.alert_names and facts.alert_name not in matcher.alert_names:
        return False
    if matcher.source_severities and facts.source_severity not in matcher.source_severities:
        return False
    if matcher.service_tiers and (service is None or service.tier not in matcher.service_tiers):
        return False
    if matcher.categories and (category is None or category not in matcher.categories):
        return False
    if matcher.regulated_service is not None and (service is not None and service.regulated) != matcher.regulated_service:
        return False
    for name, value in matcher.labels.items():
        if facts.labels.get(name) != value:
            return False
    for name, pattern in matcher.label_patterns.items():
        if re.fullmatch(pattern, facts.labels.get(name, "")) is None:
            return False
    for name, value in matcher.annotations.items():
        if facts.annotations.get(name) != value:
            return False
    return True


def _label_category(facts: Facts) -> Category | None:
    if facts.category is not None:
        return facts.category
    try:
        return Category(facts.labels.get("category", ""))
    except ValueError:
        return None


def owning_team(facts: Facts, org: Organisation, category: Category) -> str:
    if category is Category.SECURITY:
        return org.security_team
    service = org.services.get(facts.service)
    if service is not None:
        return service.team
    return org.fallback_team


def _first_rule(facts: Facts, org: Organisation):
    category = _label_category(facts)
    rule = next((r for r in org.effective_severity_rules if matches(r.match, facts, org, category)), None)
    if rule is not None and rule.category is not None:
        category = rule.category
    return rule, category or Category.OPERATIONAL


def category_of(facts: Facts, org: Organisation) -> Category:
    """The category ``classify`` gives: the first matching rule's, else the ``category`` label."""
    return _first_rule(facts, org)[1]


def restricted_alert(service: str, name: str, source_severity: str | None, labels: dict[str, str],
                     annotations: dict[str, str], org: Organisation) -> bool:
    """Whether this alert's incident is restricted (the category ``classify`` would give it)."""
    # Cheap, and exact, for the usual alert: without a security label, only a rule that sets
    # the security category can make it one.
    if labels.get("category") != Category.SECURITY.value and not any(
            r.category is Category.SECURITY for r in org.severity_rules):
        return False
    facts = Facts(service=service, alert_name=name, source_severity=source_severity, labels=labels,
                  annotations=annotations)
    return is_restricted(category_of(facts, org))


def classify(facts: Facts, org: Organisation, severity_override: Severity | None = None) -> Classification:
    """First matching severity rule wins; unset parts fall back to labels, then defaults."""
    rule, category = _first_rule(facts, org)

    severity = severity_override
    if severity is None and rule is not None:
        severity = rule.severity
    if severity is None:
        severity = _SOURCE_DEFAULTS.get(facts.source_severity or "", org.default_severity)

    service = org.services.get(facts.service)
    regulated = bool(service and service.regulated and category is Category.DATA_INTEGRITY)
    if rule is not None and rule.regulated is not None:
        regulated = rule.regulated

    impact = (rule.impact if rule is not None and rule.impact else None) or facts.annotations.get("impact")
    if not impact:
        impact = f"{facts.service} is affected: {facts.alert_name or 'declared incident'}"

    playbook = next((p for p in org.playbooks if matches(p.match, facts, org, category)), None)
    return Classification(
        severity=severity,
        category=category,
        impact=impact,
        regulated=regulated,
        restricted=is_restricted(category),
        team=owning_team(facts, org, category),
        rule=rule.name if rule is not None else None,
        playbook=playbook,
    )
