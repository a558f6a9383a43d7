"""Every partition of some Faust tables, read from their changelog topics.

A worker's Faust tables hold only the partitions it owns. That is all its agents need, but
not what the metrics service exports: MTTR, the reopen rate and the time to acknowledge are
means over every incident, and two workers' partial means cannot be added. So with several
metrics workers each one keeps a mirror of the whole tables, read from the changelogs the
workers write, and answers ``/metrics`` from it: every worker exports the whole truth, and
one that dies takes nothing away from what the others answer. (Faust's standby replicas do
not serve: its in-memory store drops every key outside the worker's active partitions each
time a recovery completes.)

The mirror is a plain Kafka consumer outside every consumer group: it reads each changelog
partition from its start, applies what it reads in order (a value replaces the key's, a
tombstone removes it) and is ``caught_up`` once it has read up to where the changelogs ended
when it started. Thereafter it follows them, a fetch behind the tables' writers.
"""
from __future__ import annotations

import asyncio
import json
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)


class ChangelogMirror:
    def __init__(self, bootstrap: str, changelogs: dict[str, str], partitions: int, client_id: str) -> None:
        """``changelogs``: table name -> its changelog topic, each of ``partitions`` partitions
        (TOPIC_PARTITIONS, which every service checks against the topics at start)."""
        self.bootstrap, self.client_id, self.partitions = bootstrap, client_id, partitions
        self._tables_of = {topic: name for name, topic in changelogs.items()}
        self.tables: dict[str, dict] = {name: {} for name in changelogs}
        self.caught_up = asyncio.Event()
        self.applied = 0

    def apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """One changelog record: the table's key (JSON) takes the value (JSON), or is removed."""
        if key is None:
            return  # not a table write (Faust never writes one without a key)
        table = self.tables[self._tables_of[topic]]
        name = json.loads(key)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = json.loads(value)
        self.applied += 1

    async def run(self, poll_ms: int = 200) -> None:
        """Read the changelogs for as long as the process runs (an essential task)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for topic in self._tables_of for p in range(self.partitions)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            behind = {tp for tp, end in ends.items() if end > 0}
            while True:
                batches = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
                for tp, records in batches.items():
                    for record in records:
                        self.apply(tp.topic, record.key, record.value)
                if behind:
                    behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
                    if not behind:
                        log.info("table mirror caught up: %d changelog records applied", self.applied)
                if not behind:
                    self.caught_up.set()
        finally:
            await consumer.stop()
