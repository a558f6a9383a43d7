"""Importers: the PagerDuty and Opsgenie API answers (hand-written after their public docs) as organisation YAML."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from services.cli.importers import opsgenie, pagerduty
from services.cli.importers.plan import Imported, merge, render, slug
from shared.config_loader import parse_organisation
from shared.domain.rotations import on_call

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"
NOW = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)


def _export(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _skipped(imported: Imported) -> dict[str, str]:
    return {s.what: s.reason for s in imported.skipped}


@pytest.mark.parametrize("text, key", [("Payments Platform", "payments-platform"), ("Search On-Call", "search-on-call"),
                                       ("  Storage_Schedule ", "storage-schedule"), ("!!!", "unnamed")])
def test_keys_are_slugs_usable_in_topic_names(text, key):
    assert slug(text) == key


def test_pagerduty_users_teams_and_a_weekly_layer(org):
    imported = pagerduty.translate(_export("pagerduty"), NOW, "incident-managers")
    s = imported.sections
    assert s["people"]["priya"] == {"name": "Priya Patel", "email": "priya@example.com"}
    assert set(s["people"]) == {"priya", "marco", "sam-stone", "lee"}
    assert s["teams"]["payments-platform"] == {"description": "Checkout and billing", "escalation_policy":
                                               "payments-escalation", "rotation": "payments-primary"}
    primary = s["rotations"]["payments-primary"]
    assert primary == {"participants": ["priya", "marco"], "length": "7d", "handoff": "09:00",
                       "time_zone": "Europe/Berlin", "start": "2026-01-05",
                       "overrides": [{"person": "marco", "start": "2099-03-02T09:00:00+01:00",
                                      "end": "2099-03-03T09:00:00+01:00"}]}


def test_pagerduty_policies_and_services(org):
    imported = pagerduty.translate(_export("pagerduty"), NOW, "incident-managers")
    s = imported.sections
    assert s["escalation_policies"]["payments-escalation"] == {"repeat": 2, "levels": [
        {"timeout": "15m", "targets": [{"type": "rotation", "rotation": "payments-primary", "position": "primary"}]},
        {"timeout": "30m", "targets": [{"type": "person", "person": "marco"}]},
    ]}
    assert s["escalation_policies"]["search-escalation"]["levels"] == [
        {"timeout": "10m", "targets": [{"type": "rotation", "rotation": "search-on-call-business-hours",
                                        "position": "primary"}]}]
    assert s["services"]["checkout-api"] == {"team": "payments-platform", "escalation_policy": "payments-escalation",
                                             "description": "Takes the money"}
    assert s["services"]["search-indexer"]["team"] == "search", "found through its escalation policy's team"
    assert s["services"]["legacy-cron"] == {"team": "incident-managers"}


def test_pagerduty_says_what_it_cannot_carry_over_and_why():
    skipped = _skipped(pagerduty.translate(_export("pagerduty"), NOW, "incident-managers"))
    assert "layering" in skipped["schedule 'Search On-Call'"]
    assert "around the clock" in skipped["schedule 'Search On-Call' layer 'Business Hours'"]
    assert skipped["schedule 'Search On-Call' layer 'Old Nights'"] == "the layer has ended"
    assert skipped["schedule 'Search On-Call' layer 'Contractors'"] == "no participant could be carried over"
    assert "already over" in skipped["schedule 'Payments Primary' override 2026-01-06T09:00:00+01:00 to "
                                     "2026-01-07T09:00:00+01:00"]
    assert "round-robin" in skipped["escalation policy 'Search Escalation' rule 1"]
    assert "incidentctl token create" in skipped["service 'Checkout API' integrations"]
    assert "severity rules" in skipped["service 'Search Indexer'"]
    assert "fallback team" in skipped["service 'Legacy Cron'"]
    assert "contact methods" in skipped["user Priya Patel"]


def test_opsgenie_rotations_overrides_and_escalation():
    imported = opsgenie.translate(_export("opsgenie"), NOW, "incident-managers")
    s = imported.sections
    assert set(s["people"]) == {"noor", "tomas", "ines"}
    assert s["teams"]["storage"] == {"description": "Object storage and databases",
                                     "rotation": "storage-schedule-primary", "escalation_policy": "storage-escalation"}
    primary = s["rotations"]["storage-schedule-primary"]
    # 08:00 UTC is 09:00 in Berlin (CET); the "no one" slot is left out.
    assert primary == {"participants": ["noor", "tomas"], "length": "7d", "handoff": "09:00",
                       "time_zone": "Europe/Berlin", "start": "2026-01-05",
                       "overrides": [{"person": "ines", "start": "2099-12-24T08:00:00Z", "end": "2099-12-27T08:00:00Z"}]}
    assert s["rotations"]["storage-schedule-nights"]["participants"] == ["ines"]
    # Opsgenie's delays count from the alert's creation (0, 5, 15, 60 min): each level here waits from its page.
    assert s["escalation_policies"]["storage-escalation"] == {"repeat": 1, "levels": [
        {"timeout": "5m", "targets": [{"type": "rotation", "rotation": "storage-schedule-primary", "position": "primary"}]},
        {"timeout": "10m", "targets": [{"type": "rotation", "rotation": "storage-schedule-primary",
                                        "position": "secondary"}]},
        {"timeout": "45m", "targets": [{"type": "team_channel", "team": "storage"}]},
        {"timeout": "10m", "targets": [{"type": "person", "person": "noor"}]},
    ]}
    assert s["services"]["object-store"] == {"team": "storage", "description": "S3-compatible storage"}
    assert s["services"]["mystery"] == {"team": "incident-managers"}
    skipped = _skipped(imported)
    assert skipped["schedule 'Edge_Schedule'"] == "unknown time zone 'Mars/Olympus'"
    assert "'no one' slot" in skipped["schedule 'Storage_Schedule' rotation 'Primary' participant"]
    assert "only people rotate" in skipped["schedule 'Storage_Schedule' rotation 'Nights' participant Edge"]
    assert "primary or its secondary" in skipped["escalation 'Storage_Escalation' rule 4"]
    assert "stops when somebody acknowledges" in skipped["escalation 'Storage_Escalation' rule 3"]
    assert skipped["schedule 'Storage_Schedule' override last-year"] == "already over"


@pytest.mark.parametrize("source, module", [("pagerduty", pagerduty), ("opsgenie", opsgenie)])
def test_the_merged_file_is_a_valid_organisation_and_a_rerun_changes_nothing(raw_config, source, module):
    imported = module.translate(_export(source), NOW, raw_config["fallback_team"])
    merged, changes = merge(raw_config, imported)
    org = parse_organisation(yaml.safe_dump(merged, sort_keys=False), "merged.yaml")
    assert {c.action for c in changes} <= {"add", "update"}
    again, second = merge(yaml.safe_load(yaml.safe_dump(merged, sort_keys=False)), imported)
    assert {c.action for c in second} == {"unchanged"} and again == yaml.safe_load(yaml.safe_dump(merged))
    assert raw_config != merged, "the input is not changed in place"
    for name in imported.sections["rotations"]:
        assert on_call(org.rotations[name], NOW).primary in org.people


def test_a_merged_team_keeps_what_the_file_says_beyond_the_import(raw_config):
    base = copy.deepcopy(raw_config)
    base["teams"]["payments-platform"] = {"description": "old", "webhook": {"url": "https://chat.example.com/hook"}}
    merged, changes = merge(base, pagerduty.translate(_export("pagerduty"), NOW, "incident-managers"))
    assert merged["teams"]["payments-platform"]["webhook"] == {"url": "https://chat.example.com/hook"}
    assert merged["teams"]["payments-platform"]["description"] == "Checkout and billing"
    assert [c.action for c in changes if c.key == "payments-platform"] == ["update"]


def test_the_plan_lists_the_mapping_and_what_is_left_out(raw_config):
    imported = opsgenie.translate(_export("opsgenie"), NOW, "incident-managers")
    merged, changes = merge(raw_config, imported)
    text = render(imported, changes, "org.yaml", applied=False)
    assert "team Storage" in text and "teams.storage" in text and "add" in text
    assert f"Not carried over ({len(imported.skipped)}):" in text
    assert text.endswith("Nothing written (--plan); --apply writes it.")


def test_an_export_that_is_not_shaped_like_the_api_is_refused():
    with pytest.raises((KeyError, TypeError)):
        pagerduty.translate({"teams": {"teams": [{"description": "no name or id"}]}}, NOW, "x")
    assert pagerduty.translate({}, NOW, "x").sections["teams"] == {}
