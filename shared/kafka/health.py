"""Readiness that proves the work path, and liveness, for a Faust service.

``/readyz`` on the service's web port sends a probe through the app's own producer
onto a ``health.probes`` partition this worker owns, and answers 200 only once the
app's own consumer has handed that probe to its agent: the fetch loop, the agents
and the producer all work. A log line saying "Ready" proved none of that (a worker
logged it and then hung in its first offset commit for five minutes).
"""
from __future__ import annotations

import asyncio

import faust
from faust.transport.consumer import Consumer

from .. import catalogue as cat
from ..messages import Probe
from ..settings import Settings
from . import faust_fixes
from .liveness import STALLS, Watchdog, lagging_partitions
from .probes import Probes
from .streams import decode


def _watch_consumer() -> None:
    """Offset commits and the wait before a rebalance register with the liveness watchdog."""
    if getattr(Consumer, "_liveness_watched", False):
        return
    commit, wait_empty = Consumer.force_commit, Consumer.wait_empty

    async def force_commit(self, *args, **kwargs):
        with STALLS.watch("offset commit (producer flush, then commit)"):
            return await commit(self, *args, **kwargs)

    async def watched_wait_empty(self, *args, **kwargs):
        with STALLS.watch("waiting for in-flight messages before a rebalance"):
            return await wait_empty(self, *args, **kwargs)

    Consumer.force_commit, Consumer.wait_empty = force_commit, watched_wait_empty
    Consumer._liveness_watched = True


def lagging_of(consumer: Consumer, agents: dict) -> dict:
    """Per agent, its partitions with messages waiting past what it has taken (the watchdog's view)."""
    return lagging_partitions(consumer.assignment(), agents, lambda tp: faust_fixes.taken(consumer, tp),
                              consumer.highwater)


def install(app: faust.App, service: str, settings: Settings) -> Probes:
    """The probe agent, ``/readyz``, and the liveness watchdog on ``app``."""
    from .faust_app import declare, guarded_agent  # faust_app builds on this module's peers

    _watch_consumer()
    probes = Probes(service)
    topic = declare(app, cat.HEALTH_PROBES, settings.topic_partitions)
    dead = declare(app, cat.DEAD_LETTER, settings.topic_partitions)
    agents = faust_fixes.agent_topics()

    def lagging() -> dict | None:
        """Per agent, its partitions with messages waiting past what it has taken."""
        if app.rebalancing or app.in_recovery or not app.tables.recovery.completed.is_set():
            return None
        return lagging_of(app.consumer, agents)

    def mend(tp, _position: int) -> None:
        # From the commit, not the position: reread forgets what was taken, so what follows
        # the commit is admitted again in order (what was taken comes again as copies).
        committed = app.consumer._committed_offset.get(tp)
        asyncio.get_running_loop().create_task(faust_fixes.reread(app.consumer, tp, committed or 0))

    watchdog = Watchdog(settings.kafka_bootstrap, settings.liveness_seconds, service, lagging=lagging, mend=mend)

    async def answer_probe(event) -> None:
        """Probes of this service (every service reads them all) complete a readiness check."""
        probe = await decode(event, Probe, dead, service)
        if probe is not None:
            probes.seen(probe)

    guarded_agent(app, topic, answer_probe, dead, service)

    async def send_probe(probe: Probe, partition: int) -> None:
        await app.producer.send_and_wait(
            cat.HEALTH_PROBES.name, service.encode(), probe.model_dump_json().encode(), partition, None, None
        )

    @app.page("/readyz")
    async def readyz(web, request):
        stalled = watchdog.oldest()
        if stalled is not None and stalled[1] > settings.liveness_seconds:
            body = {"ready": False, "reason": f"unhealthy: {stalled[0]} running for {stalled[1]:.0f}s"}
        elif app.rebalancing:
            body = {"ready": False, "reason": "rebalancing"}
        elif app.in_recovery or not app.tables.recovery.completed.is_set():
            body = {"ready": False, "reason": "recovering tables"}
        else:
            owned = [tp.partition for tp in app.consumer.assignment() if tp.topic == cat.HEALTH_PROBES.name]
            body = await probes.round_trip(owned, send_probe)
        return web.json({"service": service, **body}, status=200 if body["ready"] else 503)

    @app.task
    async def liveness() -> None:
        await watchdog.run()

    return probes
