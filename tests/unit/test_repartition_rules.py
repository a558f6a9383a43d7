"""The move to more partitions: one rule per table, each placing keys where their events will come from."""
from __future__ import annotations

import pytest

from services.metrics.handlers import PartitionCounts
from services.repartition.inventory import inventory
from services.repartition.rules import RULES, NoRule, place
from services.triage.folding import state_key
from services.triage.handlers import CorrelationRecord, FingerprintRecord, IncidentRecord
from shared.kafka.partitioning import partition_of
from shared.settings import Settings


@pytest.fixture(scope="module")
def tables(org, tmp_path_factory):
    return inventory(Settings(data_dir=tmp_path_factory.mktemp("data")), org).changelogs


def test_every_table_of_the_apps_has_one_rule_and_every_rule_a_table(tables):
    assert set(tables) == set(RULES)


def test_every_rule_places_any_key_inside_the_new_count():
    keys = ["INC-2026-03-02-001", "grp:abc\x1ffp:1", "alerts.intake:3", "nightly-backup", "é \x00 x\x1fy"]
    for table, rule in RULES.items():
        for key in keys:
            for partitions in (4, 8, 13):
                try:
                    partition, _ = place(table, key, {}, partitions)
                except NoRule:
                    assert table in ("metrics.partition_counts", "triage.alert_states"), (table, key)
                    continue
                assert 0 <= partition < partitions, (table, key, partitions)


def test_an_incident_goes_to_its_ids_partition_with_the_old_clusters_offsets_forgotten():
    record = IncidentRecord(applied_offset=812, positions={"escalation.deadline-checks:2/1": 40},
                            recent_commands=["c0ffee"], audit_head="h").model_dump(mode="json")
    partition, value = place("triage.incidents", "INC-2026-03-02-007", record, 8)
    assert partition == partition_of("INC-2026-03-02-007", 8)
    moved = IncidentRecord.model_validate(value)
    # A command at offset 0 of the new incident.commands, or an escalation step from a new position, applies.
    assert moved.applied_offset == -1 and moved.positions == {}
    assert moved.recent_commands == ["c0ffee"] and moved.audit_head == "h"  # API command ids are not positions


@pytest.mark.parametrize("table,model,key", [
    ("triage.correlations", CorrelationRecord, "grp:5f1e"),
    ("triage.fingerprints", FingerprintRecord, "fp:77aa"),
])
def test_correlation_and_fingerprint_records_forget_positions(table, model, key):
    before = {"correlation_key": "grp:5f1e", "service": "s", "alert_name": "a", "incident_id": "INC-1",
              "positions": {"alerts.intake:1": 99}}
    fields = {name: before[name] for name in model.model_fields if name in before}
    partition, value = place(table, key, model(**fields).model_dump(mode="json"), 8)
    assert partition == partition_of(key, 8)
    assert model.model_validate(value).positions == {}


def test_an_alert_state_goes_to_its_correlation_keys_partition_not_its_own_keys():
    # A pair whose own hash differs from its correlation key's, so that the test can tell them apart.
    ckey, fingerprint = next((f"grp:{n}", f"fp:{n}") for n in range(100)
                             if partition_of(state_key(f"grp:{n}", f"fp:{n}"), 8) != partition_of(f"grp:{n}", 8))
    partition, value = place("triage.alert_states", state_key(ckey, fingerprint), {"incident_id": "INC-1"}, 8)
    assert partition == partition_of(ckey, 8)
    assert value == {"incident_id": "INC-1"}
    with pytest.raises(NoRule):
        place("triage.alert_states", "no separator", {}, 8)


def test_partition_counts_stay_on_their_partition_and_keep_counting():
    counts = PartitionCounts(offset=1234, counts={'["alerts_received_total",[["integration","x"]]]': 1235})
    partition, value = place("metrics.partition_counts", "alerts.intake:3", counts.model_dump(), 8)
    moved = PartitionCounts.model_validate(value)
    # Offset 0 of the new alerts.intake partition 3 is counted, on top of what was counted before.
    assert partition == 3 and moved.offset == -1 and moved.counts == counts.counts
    assert place("metrics.partition_counts", "dead-letter:0", {}, 8)[0] == 0
    with pytest.raises(NoRule):
        place("metrics.partition_counts", "alerts.intake:9", {}, 8)


def test_tables_keyed_by_incident_or_heartbeat_keep_their_values():
    for table in ("escalation.deadlines", "escalation.heartbeats", "notification.notified", "metrics.incident_facts",
                  "metrics.notification_log", "metrics.heartbeat_last_pings"):
        value = {"last_version": 3, "at": "2026-03-02T12:00:00+00:00"}
        assert place(table, "INC-2026-03-02-001", value, 8) == (partition_of("INC-2026-03-02-001", 8), value)


def test_a_table_without_a_rule_is_refused():
    with pytest.raises(NoRule, match="no rule for table triage.something_new"):
        place("triage.something_new", "k", {}, 8)
    with pytest.raises(NoRule, match="not text"):
        place("triage.incidents", 7, {}, 8)
