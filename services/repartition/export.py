"""Export: every table's state and the two whole topics, once every consumer has caught up."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from aiokafka import TopicPartition

from shared.domain.organisation import Organisation
from shared.settings import Settings

from . import broker, document
from .checks import Refused, behind, one_count
from .inventory import inventory


async def export(settings: Settings, org: Organisation, path: Path) -> document.Export:
    """Write the export to ``path``; Refused while a group runs or has messages not committed."""
    found = inventory(settings, org)
    bootstrap = settings.kafka_bootstrap
    read = sorted(set().union(*found.reads.values()))
    counts = await broker.partition_counts(bootstrap, [*read, *found.changelogs.values(), *found.whole_topics])
    partitions = [TopicPartition(topic, p) for topic in read for p in range(counts.get(topic) or 0)]
    starts, ends = await broker.offsets(bootstrap, partitions)
    groups = await broker.groups(bootstrap, sorted(found.reads))
    problems = behind(groups, found.reads, counts, starts, ends)
    if problems:
        raise Refused("export refused: " + "; ".join(problems)
                      + " (start the services, let them catch up, stop them, and export again)")
    source = one_count({topic: counts.get(topic) for topic in found.changelogs.values()})
    missing = [topic for topic in found.whole_topics if counts.get(topic) is None]
    if missing:
        raise Refused(f"export refused: no such topic: {', '.join(missing)}")
    topics = {**{topic: source for topic in found.changelogs.values()},
              **{topic: counts[topic] for topic in found.whole_topics}}
    state = await broker.latest(bootstrap, topics)
    exported = document.Export(
        source_partitions=source, app_prefix=settings.app_prefix,
        exported_at=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        # Faust writes table keys and values as JSON; the whole topics' messages are kept as written.
        tables={table: {json.loads(k): json.loads(v) for k, v in state[topic].items()}
                for table, topic in found.changelogs.items()},
        topics={topic: {k.decode(): v.decode() for k, v in state[topic].items()} for topic in found.whole_topics},
    )
    document.write(path, exported)
    return exported
