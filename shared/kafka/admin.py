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
from ..settings import Settings

log = logging.getLogger(__name__)


class TopologyError(SystemExit):
    """Existing topics disagree with the configuration: the service must not start on them."""


# A cluster short of TOPIC_REPLICATION brokers when topics must be created: given this long
# for the missing brokers to register (a cluster still starting), then a configuration error.
BROKERS_GRACE_SECONDS = 15.0


def _new_topic(spec: TopicSpec, partitions: int, replication: int = 1, min_insync: int = 1) -> NewTopic:
    configs = {"min.insync.replicas": str(min_insync), **dict(spec.configs)}
    if spec.compacted:
        configs["cleanup.policy"] = "compact"
    return NewTopic(name=spec.name, num_partitions=partitions, replication_factor=replication, topic_configs=configs)


def replication(settings: Settings) -> dict[str, int]:
    """ensure_topics' keyword arguments for the configured replication."""
    return {"replication": settings.topic_replication, "min_insync": settings.topic_min_insync_replicas}


def replication_mismatches(replication: int, described: list[dict]) -> list[str]:
    """The topics whose partitions have another number of replicas than configured, as sentences.

    A stopped broker still counts: the metadata lists every assigned replica, live or not."""
    problems = []
    for topic in described:
        counts = {len(p.get("replicas") or ()) for p in topic.get("partitions") or ()}
        if topic.get("error_code", 0) == 0 and counts and counts != {replication}:
            have = "/".join(str(n) for n in sorted(counts))
            problems.append(f"{topic['topic']} has {have} replicas, the configuration expects {replication}")
    return problems


def too_few_brokers(replication: int, brokers: int) -> str | None:
    """Why topics with ``replication`` copies cannot be created on ``brokers`` live brokers."""
    if brokers >= replication:
        return None
    return (f"TOPIC_REPLICATION is {replication} but the cluster has {brokers} broker(s): every copy of a"
            " partition needs a broker of its own (set TOPIC_REPLICATION to at most the number of brokers)")


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


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], default_partitions: int, timeout: float = 90.0, *,
                        replication: int = 1, min_insync: int = 1) -> None:
    """Every topic in ``specs`` exists with its partition count and ``replication`` copies (new ones
    with ``min_insync`` as min.insync.replicas) and has a leader on every partition.

    Raises TopologyError when an existing topic has another partition count or replication
    (naming TOPIC_PARTITIONS or TOPIC_REPLICATION), or when topics must be created and the
    cluster has fewer brokers than TOPIC_REPLICATION; TimeoutError when the broker does not
    settle in ``timeout``.
    """
    expected = {spec.name: spec.partition_count(default_partitions) for spec in specs}
    by_name = {spec.name: spec for spec in specs}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    short_since: float | None = None
    last = "broker not reachable"
    while loop.time() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [_new_topic(by_name[name], n, replication, min_insync)
                       for name, n in expected.items() if name not in existing]
            if missing:
                short = too_few_brokers(replication, len((await admin.describe_cluster())["brokers"]))
                if short:
                    short_since = short_since if short_since is not None else loop.time()
                    if loop.time() - short_since >= min(BROKERS_GRACE_SECONDS, timeout / 2):
                        raise TopologyError(short)
                    last = short
                    await asyncio.sleep(0.5)  # a cluster still starting: its brokers are registering
                    continue
                try:
                    await admin.create_topics(missing)
                    log.info("created topics: %s", ", ".join(t.name for t in missing))
                except TopicAlreadyExistsError:
                    pass  # another process created them first
            while loop.time() < deadline:
                described = await admin.describe_topics(list(expected))
                check_partitions(expected, described, default_partitions)
                problems = replication_mismatches(replication, described)
                if problems:
                    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
                    raise TopologyError(
                        "TOPIC_REPLICATION does not match the existing topics: " + "; ".join(problems[:3]) + more
                        + " (use the replication the topics were created with, or move to a new cluster)"
                    )
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
