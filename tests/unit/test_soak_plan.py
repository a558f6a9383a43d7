"""The chaos soak's plan and load (deploy/soak): which faults when, and what is sent."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "soak"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from chaos import KILLABLE, Chaos  # noqa: E402
from load import Load  # noqa: E402

from shared.config_loader import load_organisation  # noqa: E402

ORG = load_organisation(REPO / "tests" / "integration" / "organisation.yaml")


def plan(seconds: float, gaps=(30.0, 60.0), seed: int = 1):
    return Chaos(platform=None, broker=None, seconds=seconds, gaps=gaps, seed=seed).plan()


def test_ten_minutes_hold_one_broker_restart_near_the_middle_and_kills_every_30_to_60_s():
    for seed in range(20):
        faults = plan(600, seed=seed)
        times = [t for t, _ in faults]
        assert [what for _, what in faults].count("broker") == 1
        assert all(what in KILLABLE for _, what in faults if what != "broker")
        assert 30 <= times[0] <= 60 and all(30 <= b - a <= 60 for a, b in zip(times, times[1:]))
        assert times[-1] < 595 and len(faults) >= 9
        broker_at = next(t for t, what in faults if what == "broker")
        assert abs(broker_at - 300) <= 30
        assert set(KILLABLE) <= {what for _, what in faults}  # ten minutes kill every service at least once


def test_the_same_seed_gives_the_same_plan():
    assert plan(600, seed=7) == plan(600, seed=7) != plan(600, seed=8)


def test_two_minutes_with_closer_gaps_hold_a_broker_restart_and_kills():
    for seed in range(20):
        kinds = [what for _, what in plan(120, gaps=(20.0, 35.0), seed=seed)]
        assert kinds.count("broker") == 1 and len(kinds) >= 3


def load(seed: int = 3) -> Load:
    return Load("http://127.0.0.1:1", "key", "token", ORG, "run1", keys=30, hosts=4, seed=seed)


def test_alerts_are_valid_native_alerts_over_the_keys_with_resolves_only_after_a_firing():
    sender, fired = load(), set()
    sizes = []
    for _ in range(500):
        alerts = sender.request()
        sizes.append(len(alerts))
        for body, fp in alerts:
            identity = (body["labels"]["alertname"], body["labels"]["instance"])
            if body.get("status") == "resolved":
                assert identity in fired
            fired.add(identity)
            assert sender.ledger.key_of[fp].alertname == body["labels"]["alertname"]
            assert body["labels"]["soak"] == "run1"
    assert 1 in sizes and max(sizes) > 1 and max(sizes) <= 20
    dedup = {fp for fp, key in sender.ledger.key_of.items() if key.dedup}
    assert dedup and len(sender.ledger.key_of) <= 30 * 4


def test_commands_mostly_fit_the_incident_status():
    sender = load()
    picked = [sender.command([("INC-1", "resolved")]) for _ in range(200)]
    kinds = [kind for _, kind, _ in picked]
    assert kinds.count("close") + kinds.count("reopen") + kinds.count("updates") > 150
    assert sender.command([]) is None


def test_the_process_check_names_what_is_left_and_what_died():
    import subprocess

    import invariants

    gone = subprocess.Popen(["true"])
    gone.wait()
    me = __import__("os").getpid()
    assert invariants.processes({"gone": {gone.pid}}).ok
    left = invariants.processes({"services": {gone.pid, me}})
    assert not left.ok and str(me) in left.violations[0] and left.figures["left_behind"] == 1
    borrowed = invariants.processes({"services": {gone.pid, me}}, still_running={"triage": me, "web": gone.pid})
    assert borrowed.violations == [f"web (pid {gone.pid}) is not running"]


def test_a_database_row_equal_to_the_table_value_has_no_differences_and_each_change_is_named(open_incident):
    import json
    from enum import Enum

    import invariants

    from shared.domain.incident_summary import FIELDS, IncidentSummary

    incident = open_incident().state
    table_value = {"incident": incident.model_dump(mode="json"), "audit_head": "abc", "applied_offset": 3}
    summary = IncidentSummary.of(incident)
    row = {name: (v.value if isinstance(v := getattr(summary, name), Enum) else v) for name in FIELDS}
    row.update(audit_head="abc", record=json.dumps(incident.model_dump(mode="json")))
    assert invariants._differences(table_value, row) == []
    row.update(status="closed", audit_head="def",
               record=json.dumps({**incident.model_dump(mode="json"), "title": "another"}))
    found = invariants._differences(table_value, row)
    assert [f.split(":")[0] for f in found] == ["status", "audit_head", "record.title"]
