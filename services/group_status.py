"""Which worker owns which partitions: each service's consumer group as the broker describes it.

    python -m services.group_status        one line per worker (make status, with WORKERS>1)

A worker is named by its Kafka client id (``<APP_PREFIX>-triage-2``: services/workers.py
gives each worker one); the partitions are those of the keyed topics (``TOPIC_PARTITIONS``
partitions each; changelogs included), written once for all of them.
"""
from __future__ import annotations

import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from shared.settings import load_settings

GROUPS = ("recorder", "triage", "escalation", "notification", "metrics")


def owned(assignment: bytes, keyed: int) -> tuple[list[int], int, list[str]]:
    """From a member's assignment: the partitions it owns of the keyed topics, how many keyed
    topics, and the other (single-partition) topics it holds."""
    if not assignment:
        return [], 0, []
    decoded = ConsumerProtocolMemberAssignment.decode(assignment)
    partitions: set[int] = set()
    topics, others = 0, []
    for topic, numbers in decoded.assignment:
        if not numbers:
            continue
        if topic.endswith("-__assignor-__leader"):  # Faust's one-partition leader topic
            others.append(topic)
            continue
        partitions.update(numbers)
        topics += 1
    return sorted(partitions), topics, others


def lines(groups: list[tuple], keyed: int, prefix: str) -> list[str]:
    """One short line per member of each described group (tuples as the broker answers)."""
    out = []
    for group in groups:
        error_code, group_id, state, _ptype, _protocol, members = group[:6]
        if error_code:
            out.append(f"    {group_id}: error {error_code}")
            continue
        if not members:
            out.append(f"    {group_id}: no members ({state})")
            continue
        for member in sorted(members, key=lambda m: m[1]):
            client_id, assignment = member[1], member[4]
            # A worker's own client id names it; the only worker of a service keeps the default one.
            name = client_id[len(prefix) + 1:] if client_id.startswith(prefix + "-") else group_id[len(prefix) + 1:]
            partitions, topics, others = owned(assignment, keyed)
            extra = f" and {', '.join(others)}" if others else ""
            out.append(f"    {name:<16} partitions {partitions or 'none'} of {topics} topics{extra} ({state})")
    return out


async def describe(bootstrap: str, prefix: str) -> list[tuple]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        found = []
        for service in GROUPS:
            for response in await admin.describe_consumer_groups([f"{prefix}-{service}"]):
                found.extend(response.groups)
        return found
    finally:
        await admin.close()


def main() -> None:
    settings = load_settings()
    try:
        groups = asyncio.run(describe(settings.kafka_bootstrap, settings.app_prefix))
    except Exception as exc:  # noqa: BLE001 - a status line, not a crash
        print(f"    consumer groups not readable: {type(exc).__name__}: {exc}")
        sys.exit(1)
    print("\n".join(lines(groups, settings.topic_partitions, settings.app_prefix)))


if __name__ == "__main__":
    main()
