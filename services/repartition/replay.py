"""Replay: an export written into a new cluster's changelogs, each key on its partition of the new count.

Order matters. Everything that can refuse is checked first (the file, the counts, the target);
then the incident id allocations are set aside in PostgreSQL, before anything reaches Kafka,
so that no service started on the new cluster can be handed an old incident's id; then the
records are written and each partition's end offset is checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import TopicPartition
from faust.serializers import codecs

from services.topology import platform_topics
from shared.db.ids import set_aside_openings
from shared.domain.organisation import Organisation
from shared.kafka.partitioning import partition_of
from shared.settings import Settings

from . import broker, document
from .checks import Refused, not_empty, target_problems, unwritten
from .inventory import inventory
from .rules import RULES, NoRule, place


@dataclass(frozen=True)
class Replayed:
    records: int
    partitions: int
    source_partitions: int
    openings_set_aside: int


def _json(value) -> bytes:
    return codecs.dumps("json", value)  # byte for byte what Faust writes


def planned(export: document.Export, changelogs: dict[str, str], whole: dict[str, int],
            partitions: int) -> list[tuple[str, int, bytes, bytes]]:
    """Every record of the export as (topic, partition, key, value) on the target."""
    unknown = sorted(set(export.tables) - set(RULES)) + sorted(set(export.topics) - set(whole))
    if unknown:
        raise Refused(f"replay refused: the export holds {', '.join(unknown)}, which this version has no rule for")
    records = []
    try:
        for table, values in export.tables.items():
            for key, value in values.items():
                partition, value = place(table, key, value, partitions)
                records.append((changelogs[table], partition, _json(key), _json(value)))
    except NoRule as exc:
        raise Refused(f"replay refused: {exc}") from None
    for topic, values in export.topics.items():
        records.extend((topic, partition_of(key, whole[topic]), key.encode(), value.encode())
                       for key, value in values.items())
    return records


async def replay(settings: Settings, org: Organisation, path: Path) -> Replayed:
    try:
        export = document.read(path)
    except document.DocumentError as exc:
        raise Refused(f"replay refused: {path} is {exc}; nothing was written") from None
    partitions = settings.topic_partitions
    if partitions < export.source_partitions:
        raise Refused(f"replay refused: TOPIC_PARTITIONS={partitions} is fewer than the export's"
                      f" {export.source_partitions} partitions (a move only adds partitions)")
    found = inventory(settings, org)
    expected = {spec.name: spec.partition_count(partitions) for spec in platform_topics(settings, org)}
    records = planned(export, found.changelogs, {t: expected[t] for t in found.whole_topics}, partitions)
    written = [*found.changelogs.values(), *found.whole_topics]
    counts = await broker.partition_counts(settings.kafka_bootstrap, expected)
    problems = target_problems(expected, counts, partitions)
    if not problems:
        _, ends = await broker.offsets(settings.kafka_bootstrap,
                                       [TopicPartition(t, p) for t in written for p in range(expected[t])])
        problems = not_empty(ends)
    if problems:
        raise Refused("replay refused, nothing was written: " + "; ".join(problems))
    conn = await asyncpg.connect(settings.database_url)
    try:
        moved = await set_aside_openings(conn, export.exported_at)
    finally:
        await conn.close()
    await broker.write(settings.kafka_bootstrap, records)
    per_partition: dict[TopicPartition, int] = {}
    for topic, partition, _, _ in records:
        tp = TopicPartition(topic, partition)
        per_partition[tp] = per_partition.get(tp, 0) + 1
    _, ends = await broker.offsets(settings.kafka_bootstrap, list(per_partition))
    problems = unwritten(per_partition, ends)
    if problems:
        raise Refused("replay incomplete: " + "; ".join(problems))
    return Replayed(len(records), partitions, export.source_partitions, moved)
