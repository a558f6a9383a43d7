"""Poison messages for every topic a service of ours consumes, derived from the catalogue.

``readers()`` expands each catalogue topic's consumers into the services that read it, so
a topic (or a reader) added to shared/catalogue.py without a poison case here fails
tests/integration/test_fault_poison.py instead of being forgotten.
"""
from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from shared import catalogue as cat
from shared.kafka.partitioning import partition_of

SERVICES = ("triage", "escalation", "notification", "metrics", "recorder")

# Readers that pass a poison over (logged) instead of dead-lettering it, and why. Every other
# reader must write a dead letter for each poison it reads.
PASSES_OVER: dict[tuple[str, str], str] = {
    **{(topic, "metrics"): "metrics only counts; the topic's owner dead-letters (a second letter would count twice)"
       for topic in (cat.ALERTS_INTAKE.name, cat.INCIDENT_AUDIT.name, cat.COMMUNICATIONS.name,
                     cat.HEARTBEAT_PINGS.name)},
    (cat.DEAD_LETTER.name, "metrics"): "a dead letter about a dead letter would loop forever",
    (cat.HEALTH_PROBES.name, "recorder"): "probes carry nothing to keep; the Faust services dead-letter them",
    **{(topic, service): "a whole-topic view (shared/kafka/view.py); the recorder dead-letters"
       for topic, service in ((cat.ONCALL_OVERRIDES.name, "triage"), (cat.ONCALL_OVERRIDES.name, "escalation"),
                              (cat.MAINTENANCE_WINDOWS.name, "escalation"),
                              (cat.MAINTENANCE_WINDOWS.name, "notification"))},
}


def readers(spec: cat.TopicSpec) -> tuple[str, ...]:
    """The services of ours that consume ``spec`` ("escalation (heartbeats)" is escalation)."""
    found: list[str] = []
    for consumer in spec.consumers:
        if consumer == "every service":
            found.extend(SERVICES)
        elif (name := consumer.split(" ", 1)[0]) in SERVICES:
            found.append(name)
    return tuple(dict.fromkeys(found))


def consumed_topics() -> dict[str, tuple[str, ...]]:
    """Every topic some service of ours reads, with its readers."""
    return {spec.name: readers(spec) for spec in cat.all_topics() if readers(spec)}


def dead_letterers(topic: str) -> tuple[str, ...]:
    return tuple(s for s in consumed_topics()[topic] if (topic, s) not in PASSES_OVER)


def poison_kinds(unique: str) -> dict[str, bytes]:
    """Undecodable bytes, and JSON of the wrong shape (an object, and no object at all).

    The object carries the fields other tests' topic readers look up (incident_id, name, ...),
    with values of its own: it must trip the services, not the suite's readers of the topic.
    """
    marker = f"poison-{unique}"
    wrong_object = {"incident_id": marker, "name": marker, "key": marker, "kind": "poison", "data": {},
                    "notification": {"incident_id": marker}, "summary": marker, "service": 42,
                    "poison": "well-formed JSON of the wrong shape"}
    return {
        "undecodable": b"\xff\xfe\x00\x9c not JSON {" + marker.encode(),
        "wrong-shape object": json.dumps(wrong_object).encode(),
        "wrong-shape array": json.dumps([marker, {"service": 42}]).encode(),
    }


@dataclass(frozen=True)
class Poison:
    topic: str
    partition: int
    offset: int
    key: str
    kind: str

    @property
    def origin(self) -> tuple[str, int, int]:
        return self.topic, self.partition, self.offset


def key_for(prefix: str, partition: int, partitions: int) -> str:
    """A key that the default partitioner puts on ``partition`` (as a real producer would)."""
    index = 0
    while partition_of(f"{prefix}-{index}", partitions) != partition:
        index += 1
    return f"{prefix}-{index}"


def produce_poison(topics: list[str], unique: str) -> list[Poison]:
    """Every kind of poison on every partition of each topic, in that order; their positions."""

    async def run() -> list[Poison]:
        producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], acks="all")
        await producer.start()
        try:
            planned, sent = [], []
            for topic in topics:
                partitions = sorted(await producer.partitions_for(topic))
                for partition in partitions:
                    for kind, value in poison_kinds(unique).items():
                        key = key_for(f"poison-{unique}-{topic}-{kind}", partition, len(partitions))
                        planned.append((topic, partition, key, kind))
                        sent.append(await producer.send(topic, value, key=key.encode(), partition=partition))
            written = await asyncio.gather(*sent)
            return [Poison(topic, meta.partition, meta.offset, key, kind)
                    for (topic, partition, key, kind), meta in zip(planned, written)]
        finally:
            await producer.stop()

    return asyncio.run(run())
