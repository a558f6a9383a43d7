"""Create every topic with its explicit partition count (never broker auto-creation), check
the ones that exist, and wait until the broker's metadata shows a leader for every partition.

Waiting for leaders matters: a topic the broker has just created has no leader for a
moment, and a producer that sends to it then waits for metadata (Faust's first offset
commit hung for five minutes in ``producer.flush()`` on its own assignor topic, created
by Faust after the worker was already running).
"""
from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ..catalogue import TopicSpec

log = logging.getLogger(__name__)


class TopologyError(SystemExit):
    """Existing topics disagree with the configuration: the service must not start on them."""


def _new_topic(spec: TopicSpec, partitions: int) -> NewTopic:
    configs = dict(spec.configs)
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    return NewTopic(name=spec.name, num_partitions=partitions, replication_factor=1, topic_configs=configs)


def mismatches(expected: dict[str, int], described: list[dict]) -> list[str]:
    """The topics whose partition count differs from the one configured, as sentences."""
    problems = []
    for topic in described:
        want = expected.get(topic["topic"])
        have = len(topic.get("partitions") or [])
        if want is not None and topic.get("error_code", 0) == 0 and have and have != want:
            problems.append(f"{topic['topic']} has {have} partitions, the configuration expects {want}")
    return problems


def check_partitions(expected: dict[str, int], described: list[dict], configured: int) -> None:
    """Raise TopologyError naming TOPIC_PARTITIONS, its value and each differing topic's count."""
    problems = mismatches(expected, described)
    if problems:
        raise TopologyError(
            f"TOPIC_PARTITIONS does not match the existing topics (TOPIC_PARTITIONS={configured}): "
            + "; ".join(problems)
            + " (use the partition count the topics were created with, or move to a new cluster:"
            " see the README, 'Growing past one machine')"
        )


def settled(expected: dict[str, int], described: list[dict]) -> list[str]:
    """What is not ready yet: topics missing from the metadata, or partitions without a leader."""
    seen = {topic["topic"]: topic for topic in described}
    pending = []
    for name in expected:
        topic = seen.get(name)
        if topic is None or topic.get("error_code", 0) != 0 or not topic.get("partitions"):
            pending.append(f"{name} (not in the metadata yet)")
            continue
        leaderless = [p["partition"] for p in topic["partitions"] if p.get("leader", -1) < 0 or p.get("error_code", 0)]
        if leaderless:
            pending.append(f"{name} partitions {leaderless} (no leader yet)")
    return pending


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], default_partitions: int, timeout: float = 90.0) -> None:
    """Every topic in ``specs`` exists with its partition count and has a leader on every partition.

    Raises TopologyError when an existing topic has another partition count (naming
    TOPIC_PARTITIONS), and TimeoutError when the broker does not settle in ``timeout``.
    """
    expected = {spec.name: spec.partition_count(default_partitions) for spec in specs}
    by_name = {spec.name: spec for spec in specs}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "broker not reachable"
    while loop.time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [_new_topic(by_name[name], n) for name, n in expected.items() if name not in existing]
            if missing:
                try:
                    await admin.create_topics(missing)
                    log.info("created topics: %s", ", ".join(t.name for t in missing))
                except TopicAlreadyExistsError:
                    pass  # another process created them first
            while loop.time() < deadline:
                described = await admin.describe_topics(list(expected))
                check_partitions(expected, described, default_partitions)
                pending = settled(expected, described)
                if not pending:
                    return
                last = "waiting for " + ", ".join(pending[:5])
                await asyncio.sleep(0.2)  # the controller is still electing leaders
        except KafkaError as exc:
            last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)  # broker not reachable yet: retry until the deadline
        finally:
            await admin.close()
    raise TimeoutError(f"topics not ready after {timeout:.0f}s: {last}")
