"""The organisation file: the example loads, and a bad file is refused naming the field."""
from __future__ import annotations

import copy
from datetime import date, time, timedelta

import pytest
import yaml

from shared.config_loader import ConfigError, load_organisation, parse_organisation
from shared.domain.organisation import Category, Organisation, Severity


def test_the_example_configuration_loads(org):
    assert org.organisation == "Example Corp"
    assert org.reopen_window == timedelta(hours=72)
    assert org.metrics_window == timedelta(days=30)
    assert org.group_by == ["alertname"] and org.fingerprint_labels == ["instance"]
    assert set(org.teams) == {"integrations", "payments", "platform", "security", "incident-managers", "compliance"}
    assert org.services["connector:CRM"].tier == 1 and org.services["connector:CRM"].regulated is True
    assert org.services["connector:ERP"].regulated is False
    rotation = org.rotations["integrations-oncall"]
    assert rotation.participants == ["alice", "bob", "carol"]
    assert rotation.length == timedelta(days=7)
    assert rotation.handoff == time(9, 0)
    assert rotation.time_zone == "Europe/Berlin"
    assert rotation.start == date(2026, 1, 5)
    assert org.rotations["platform-oncall"].length == timedelta(days=1)
    assert org.escalation_policies["standard"].repeat == 1
    assert [level.timeout for level in org.escalation_policies["standard"].levels] == [
        timedelta(minutes=5), timedelta(minutes=10), timedelta(minutes=15)
    ]
    assert org.default_escalation_policy == "standard"
    assert (org.fallback_team, org.security_team, org.compliance_team) == ("incident-managers", "security", "compliance")
    assert [rule.name for rule in org.severity_rules] == ["security-alert", "data-integrity", "critical-on-tier-1", "error-on-tier-1"]
    assert org.severity_rules[0].category is Category.SECURITY
    assert [p.name for p in org.playbooks] == ["crm-connector", "security-response", "database"]
    assert org.mttr_targets == {
        Severity.SEV1: timedelta(hours=1), Severity.SEV2: timedelta(hours=4),
        Severity.SEV3: timedelta(days=1), Severity.SEV4: timedelta(days=3),
    }
    assert org.update_cadence[Severity.SEV1] == timedelta(minutes=30)
    assert Severity.SEV4 not in org.update_cadence
    assert org.postmortem.required_severities == [Severity.SEV1, Severity.SEV2]
    assert org.postmortem.due_after == timedelta(days=5)
    assert org.postmortem.required_sections == ["summary", "impact", "root_cause"]
    assert org.integrations["alertmanager"].rate_limit_per_minute is None
    assert org.integrations["default"].label_names.service == "service"
    assert org.notifications.repeat_backoff == timedelta(minutes=1)
    assert org.notifications.repeat_backoff_max == timedelta(minutes=30)


def test_the_organisation_is_immutable(org):
    with pytest.raises(ValueError):
        org.reopen_window = timedelta(hours=1)


def test_a_minimal_organisation_gets_defaults():
    org = Organisation.model_validate(
        {"teams": {"ops": {}}, "services": {"api": {"team": "ops"}}, "fallback_team": "ops", "security_team": "ops"}
    )
    assert org.reopen_window == timedelta(hours=72)
    assert org.default_severity is Severity.SEV3
    assert org.services["api"].tier == 3
    assert org.evidence_max_bytes == 65536
    assert org.postmortem.due_after == timedelta(days=5)


def set_path(raw: dict, path: str, value) -> None:
    *parents, last = path.split("/")
    node = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


BAD = [
    # (where to change, new value, text the error must contain)
    ("teams/payments/rotation", "nobody-oncall", "teams.payments.rotation: unknown rotation 'nobody-oncall'"),
    ("teams/payments/escalation_policy", "gentle", "teams.payments.escalation_policy: unknown escalation policy 'gentle'"),
    ("services/checkout-api/team", "ghosts", "services.checkout-api.team: unknown team 'ghosts'"),
    ("services/checkout-api/escalation_policy", "gentle", "services.checkout-api.escalation_policy: unknown escalation policy"),
    ("services/checkout-api/tier", 7, "services.checkout-api.tier"),
    ("rotations/payments-oncall/participants", ["dave", "mallory"],
     "rotations.payments-oncall.participants.1: unknown person 'mallory'"),
    ("rotations/payments-oncall/participants", [], "rotations.payments-oncall.participants"),
    ("rotations/payments-oncall/length", "a week", "rotations.payments-oncall.length: Value error, not a duration"),
    ("rotations/payments-oncall/length", "0s", "rotations.payments-oncall.length: Value error, a rotation length must be positive"),
    ("rotations/payments-oncall/time_zone", "Mars/Olympus", "rotations.payments-oncall.time_zone: Value error, unknown time zone 'Mars/Olympus'"),
    ("rotations/payments-oncall/handoff", "25:00", "rotations.payments-oncall.handoff"),
    ("rotations/payments-oncall/overrides",
     [{"person": "dave", "start": "2026-12-24T09:00:00", "end": "2026-12-25T09:00:00Z"}],
     "rotations.payments-oncall.overrides.0: Value error, override start and end need a UTC offset"),
    ("rotations/payments-oncall/overrides",
     [{"person": "dave", "start": "2026-12-25T09:00:00Z", "end": "2026-12-24T09:00:00Z"}],
     "rotations.payments-oncall.overrides.0: Value error, an override must end after it starts"),
    ("reopen_window", "3 parsecs", "reopen_window: Value error, not a duration: '3 parsecs'"),
    ("metrics_window", "-1d", "metrics_window: Value error, not a duration"),
    ("mttr_targets", {"SEV1": "soon"}, "mttr_targets: Value error, SEV1: not a duration: 'soon'"),
    ("mttr_targets", {"SEV9": "1h"}, "mttr_targets.SEV9"),
    ("update_cadence", {"SEV1": [1, 2]}, "update_cadence: Value error, SEV1: expected a duration"),
    ("postmortem/due_after", "soonish", "postmortem.due_after: Value error, not a duration"),
    ("postmortem/required_sections", ["summary", "poetry"], "postmortem.required_sections.1"),
    ("escalation_policies/standard/levels/0/timeout", "0s",
     "escalation_policies.standard.levels.0.timeout: Value error, an acknowledgement timeout must be positive"),
    ("escalation_policies/standard/levels/0/targets", [{"type": "rotation", "rotation": "nope"}],
     "escalation_policies.standard.levels.0.targets.0.rotation: unknown rotation 'nope'"),
    ("escalation_policies/standard/levels/0/targets", [{"type": "person", "person": "mallory"}],
     "escalation_policies.standard.levels.0.targets.0.person: unknown person 'mallory'"),
    ("escalation_policies/standard/levels/0/targets", [{"type": "team_channel", "team": "ghosts"}],
     "escalation_policies.standard.levels.0.targets.0.team: unknown team 'ghosts'"),
    ("escalation_policies/standard/levels/0/targets", [{"type": "person"}],
     "escalation_policies.standard.levels.0.targets.0: Value error, a person target names the person"),
    ("escalation_policies/standard/levels/0/targets", [{"type": "pager"}],
     "escalation_policies.standard.levels.0.targets.0.type"),
    ("escalation_policies/standard/levels", [], "escalation_policies.standard.levels"),
    ("escalation_policies/standard/repeat", 11, "escalation_policies.standard.repeat"),
    ("default_escalation_policy", "gentle", "default_escalation_policy: unknown escalation policy 'gentle'"),
    ("fallback_team", "ghosts", "fallback_team: unknown team 'ghosts'"),
    ("security_team", "ghosts", "security_team: unknown team 'ghosts'"),
    ("compliance_team", "ghosts", "compliance_team: unknown team 'ghosts'"),
    ("incident_url", "http://x/incidents", "incident_url: must contain {incident_id}"),
    ("evidence_max_bytes", 10, "evidence_max_bytes"),
    ("default_severity", "SEV5", "default_severity"),
    ("severity_rules/0/match/label_patterns", {"instance": "("}, "severity_rules.0.match.label_patterns: Value error, label_patterns.instance"),
    ("severity_rules/0/match/source_severities", ["panic"], "source severity 'panic' is not one of critical, error, warning, info"),
    ("severity_rules/0/severity", "SEV0", "severity_rules.0.severity"),
    ("severity_rules/0/match/colour", "red", "severity_rules.0.match.colour: Extra inputs are not permitted"),
    ("playbooks/0/runbook_url", None, "playbooks.0.runbook_url"),
    ("teams/payments/webhook", {"url": "ftp://hooks.example.com/x"},
     "teams.payments.webhook.url: Value error, a webhook url must start with http:// or https://"),
    ("teams/payments/webhook", {"url": "https://hooks.example.com/x", "backoff": "soon"}, "teams.payments.webhook.backoff"),
    ("teams/payments/webhook", {"url": "https://hooks.example.com/x", "max_attempts": 0}, "teams.payments.webhook.max_attempts"),
    ("integrations/default/rate_limit_per_minute", 0, "integrations.default.rate_limit_per_minute"),
    ("notifications/repeat_backoff", "often", "notifications.repeat_backoff"),
    ("teams/payments/colour", "blue", "teams.payments.colour: Extra inputs are not permitted"),
    ("escalation_policy", "standard", "escalation_policy: Extra inputs are not permitted"),  # a typo at the top
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD, ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD])
def test_a_bad_configuration_names_the_field(raw_config, path, value, expected):
    raw = copy.deepcopy(raw_config)
    set_path(raw, path, value)
    with pytest.raises(ConfigError) as info:
        parse_organisation(yaml.safe_dump(raw), "organisation.yaml")
    message = str(info.value)
    assert message.startswith("organisation.yaml: invalid configuration: ")
    assert expected in message


def test_a_good_webhook(raw_config, build_org):
    raw_config["teams"]["payments"]["webhook"] = {"url": "https://hooks.example.com/x", "backoff": "2s", "timeout": 3}
    webhook = build_org(raw_config).teams["payments"].webhook
    assert webhook.backoff == timedelta(seconds=2) and webhook.timeout == timedelta(seconds=3)
    assert webhook.max_attempts == 5


def test_people_are_optional_for_rotations(raw_config, build_org):
    del raw_config["people"]
    raw_config["rotations"]["payments-oncall"]["participants"] = ["anyone"]
    raw_config["escalation_policies"]["standard"]["levels"][0]["targets"] = [{"type": "person", "person": "anyone"}]
    org = build_org(raw_config)
    assert org.rotations["payments-oncall"].participants == ["anyone"]


def test_an_override_with_an_offset_loads(raw_config, build_org):
    raw_config["rotations"]["payments-oncall"]["overrides"] = [
        {"person": "erin", "start": "2026-12-24T09:00:00+01:00", "end": "2026-12-26T09:00:00Z"}
    ]
    override = build_org(raw_config).rotations["payments-oncall"].overrides[0]
    assert override.end - override.start == timedelta(hours=49)


def test_every_problem_is_reported(raw_config):
    raw_config["reopen_window"] = "later"
    raw_config["rotations"]["payments-oncall"]["time_zone"] = "Nowhere/Land"
    with pytest.raises(ConfigError) as info:
        parse_organisation(yaml.safe_dump(raw_config), "o.yaml")
    assert "reopen_window" in str(info.value)
    assert "rotations.payments-oncall.time_zone" in str(info.value)


def test_missing_required_fields_are_named():
    with pytest.raises(ConfigError) as info:
        parse_organisation("organisation: Empty\n", "o.yaml")
    for field in ("teams", "services", "fallback_team", "security_team"):
        assert f"{field}: Field required" in str(info.value)


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(ConfigError, match="o.yaml: not valid YAML"):
        parse_organisation("teams: [unclosed\n", "o.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_organisation("- a\n- b\n", "o.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_organisation("", "o.yaml")


def test_a_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read .*nope.yaml"):
        load_organisation(missing)


def test_load_from_a_file(tmp_path, example_config_text):
    path = tmp_path / "org.yaml"
    path.write_text(example_config_text.replace("Example Corp", "Other Corp"), encoding="utf-8")
    assert load_organisation(path).organisation == "Other Corp"
    path.write_text("reopen_window: 1x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        load_organisation(path)


def test_config_error_stops_the_service():
    assert issubclass(ConfigError, SystemExit)
