"""incident.audit as a stream of signals for the browsers: which incident changed, nothing more.

An audit event is used only as a signal (incident id, type, change, version): what a
browser shows is always read again from the API with that browser's own token, so a
restricted incident never reaches a session that may not see it, and the event's
incident snapshot (which is going away for alert attachments) is never rendered.
The console reads the topic from its end without a consumer group: each console
process sees every event, and a restart needs no committed offsets.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import BaseModel, ConfigDict, ValidationError

from shared import catalogue as cat

log = logging.getLogger("web.audit")


class AuditSignal(BaseModel):
    model_config = ConfigDict(extra="ignore")
    incident_id: str
    type: str
    change: str
    version: int


@dataclass(eq=False)
class Subscription:
    """What one browser connection waits for: changed incident ids, folded into a set."""

    incident_id: str | None = None  # None: every incident (the board)
    pending: set[str] = field(default_factory=set)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, signal: AuditSignal) -> None:
        if self.incident_id is None or self.incident_id == signal.incident_id:
            self.pending.add(signal.incident_id)
            self.wake.set()

    def take(self) -> set[str]:
        taken, self.pending = self.pending, set()
        self.wake.clear()
        return taken


class AuditFeed:
    def __init__(self, bootstrap: str, client_id: str) -> None:
        self._bootstrap, self._client_id = bootstrap, client_id
        self._subscriptions: set[Subscription] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self.assigned = asyncio.Event()

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, client_id=self._client_id, enable_auto_commit=False
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="audit-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def healthy(self) -> bool:
        return self.assigned.is_set() and self._task is not None and not self._task.done()

    @contextmanager
    def subscribe(self, incident_id: str | None = None) -> Iterator[Subscription]:
        subscription = Subscription(incident_id=incident_id)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    def publish(self, signal: AuditSignal) -> None:
        for subscription in list(self._subscriptions):
            subscription.offer(signal)

    async def _assign(self) -> None:
        assert self._consumer is not None
        topic = cat.INCIDENT_AUDIT.name
        while True:
            partitions = self._consumer.partitions_for_topic(topic)
            if partitions:
                break
            # The topic is created by the services at start; wait for it to appear.
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            await asyncio.sleep(0.5)
        assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(assignment)
        await self._consumer.seek_to_end(*assignment)
        for tp in assignment:  # resolve the end offsets now, so nothing after "ready" is missed
            await self._consumer.position(tp)
        self.assigned.set()

    async def _run(self) -> None:
        assert self._consumer is not None
        await self._assign()
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
            for records in batches.values():
                for record in records:
                    try:
                        signal = AuditSignal.model_validate_json(record.value)
                    except (ValidationError, ValueError, TypeError):
                        log.debug("not an audit event at %s:%s", record.partition, record.offset)
                        continue
                    self.publish(signal)
