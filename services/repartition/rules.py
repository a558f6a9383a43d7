"""One rule per table: the partition each key takes on the new count, and what of its value is reset.

A Faust table write lands on the partition of the event being processed, and a worker holds
the keys of the partitions it owns: so a key belongs on the partition its events come from,
which for most tables is its own key's (``partition_of``, the producers' partitioner), since
their source topics are keyed as the table is. Offsets of the old cluster mean nothing on the
new one, where every partition starts again at 0: a value that remembers positions forgets
them, or every new message would be taken for one already applied.

tests/unit/test_repartition_rules.py keeps this set equal to the apps' tables: a new table
without a rule fails it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from services.triage.folding import STATE_KEY_SEPARATOR
from shared.kafka.partitioning import partition_of


class NoRule(ValueError):
    """A table, or a key, that no rule places."""


def own_key(key: str, partitions: int) -> int:
    return partition_of(key, partitions)


def correlation_key_of_state(key: str, partitions: int) -> int:
    """``<correlation key>\\x1f<fingerprint>``: written while the correlation key's alerts are folded."""
    correlation_key, separator, _ = key.partition(STATE_KEY_SEPARATOR)
    if not separator:
        raise NoRule(f"alert state key {key!r} has no correlation key")
    return partition_of(correlation_key, partitions)


def named_partition(key: str, partitions: int) -> int:
    """``<topic>:<partition>``: the counts of that source partition, counted while reading it."""
    _, _, number = key.rpartition(":")
    if not number.isdigit() or int(number) >= partitions:
        raise NoRule(f"partition counts key {key!r} names no partition below {partitions}")
    return int(number)


def kept(value: Any) -> Any:
    return value


def positions_forgotten(value: Any) -> Any:
    """The highest position seen per source stream: none yet on the new cluster."""
    return {**value, "positions": {}} if isinstance(value, dict) else value


def offsets_forgotten(value: Any) -> Any:
    """An incident's record: positions, and the last applied ``incident.commands`` offset."""
    return {**value, "positions": {}, "applied_offset": -1} if isinstance(value, dict) else value


def offset_forgotten(value: Any) -> Any:
    """A partition's counts carry on (counters never go back); its last counted offset is reset."""
    return {**value, "offset": -1} if isinstance(value, dict) else value


@dataclass(frozen=True)
class Rule:
    table: str  # <service>.<table name>
    events: str  # where the key's events come from: why it goes where it goes
    partition: Callable[[str, int], int]
    reset: Callable[[Any], Any] = kept


RULES: dict[str, Rule] = {rule.table: rule for rule in (
    Rule("triage.fingerprints", "triage.alerts, keyed by fingerprint", own_key, positions_forgotten),
    Rule("triage.correlations", "alerts.intake and triage.correlation, keyed by correlation key", own_key,
         positions_forgotten),
    Rule("triage.alert_states", "its correlation key's partition (alerts.intake, triage.correlation)",
         correlation_key_of_state),
    Rule("triage.incidents", "incident.commands, keyed by incident id", own_key, offsets_forgotten),
    Rule("escalation.deadlines", "incident.audit and escalation.deadline-checks, keyed by incident id", own_key),
    Rule("escalation.heartbeats", "heartbeats.pings and heartbeats.checks, keyed by heartbeat name", own_key),
    Rule("notification.notified", "incident.audit, keyed by incident id", own_key),
    Rule("metrics.incident_facts", "incident.audit, keyed by incident id", own_key),
    Rule("metrics.notification_log", "incident.communications, keyed by incident id", own_key),
    Rule("metrics.partition_counts", "the source partition its key names", named_partition, offset_forgotten),
    Rule("metrics.heartbeat_last_pings", "heartbeats.pings, keyed by heartbeat name", own_key),
)}


def place(table: str, key: Any, value: Any, partitions: int) -> tuple[int, Any]:
    """The partition of ``key`` of ``table`` on ``partitions`` partitions, and its value there."""
    rule = RULES.get(table)
    if rule is None:
        raise NoRule(f"no rule for table {table} (services/repartition/rules.py)")
    if not isinstance(key, str):
        raise NoRule(f"table {table} has a key that is not text: {key!r}")
    return rule.partition(key, partitions), rule.reset(value)
