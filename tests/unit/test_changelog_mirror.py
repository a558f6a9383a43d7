"""The metrics workers' mirror of the whole tables (shared/kafka/changelog_mirror.py) applies
changelog records as Faust's tables do: a value replaces the key's, a tombstone removes it."""
from __future__ import annotations

import json

from shared.kafka.changelog_mirror import ChangelogMirror


def _mirror() -> ChangelogMirror:
    return ChangelogMirror("127.0.0.1:1", {"incident_facts": "app-metrics-incident_facts-changelog",
                                           "partition_counts": "app-metrics-partition_counts-changelog"}, 4, "test")


def test_records_of_every_partition_land_in_their_table_and_the_last_value_wins():
    mirror = _mirror()
    facts = "app-metrics-incident_facts-changelog"
    mirror.apply(facts, json.dumps("INC-1").encode(), json.dumps({"version": 1}).encode())
    mirror.apply(facts, json.dumps("INC-2").encode(), json.dumps({"version": 1}).encode())
    mirror.apply(facts, json.dumps("INC-1").encode(), json.dumps({"version": 3}).encode())
    mirror.apply("app-metrics-partition_counts-changelog", json.dumps("alerts.intake:2").encode(),
                 json.dumps({"counts": {"a": 4}}).encode())
    assert mirror.tables == {"incident_facts": {"INC-1": {"version": 3}, "INC-2": {"version": 1}},
                             "partition_counts": {"alerts.intake:2": {"counts": {"a": 4}}}}
    assert mirror.applied == 4


def test_a_tombstone_removes_the_key_and_a_keyless_record_is_no_write():
    mirror = _mirror()
    facts = "app-metrics-incident_facts-changelog"
    mirror.apply(facts, json.dumps("INC-1").encode(), json.dumps({"version": 1}).encode())
    mirror.apply(facts, json.dumps("INC-1").encode(), None)
    mirror.apply(facts, json.dumps("INC-9").encode(), None)  # never there: nothing to remove
    mirror.apply(facts, None, b"{}")
    assert mirror.tables["incident_facts"] == {}
    assert not mirror.caught_up.is_set()  # caught up only once it has read what was there at its start
