"""A whole small compacted topic, read by every worker of a service and kept as a dict by key.

Overrides and maintenance windows are needed by whichever worker handles an incident,
whatever partition it owns: so each worker reads every partition from the beginning,
without a consumer group (the topic is compacted: its size is the number of keys). Before
a decision, ``sync()`` waits until everything on the topic at that moment has been read,
so a window created before an alert is never missed because this reader lagged.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError
from pydantic import BaseModel, ValidationError

from ..catalogue import TopicSpec
from ..settings import Settings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class TopicView(Generic[M]):
    def __init__(self, bootstrap: str, topic: str, model: type[M], client_id: str,
                 sync_timeout: float = 10.0) -> None:
        self._bootstrap, self._topic, self._model, self._client_id = bootstrap, topic, model, client_id
        self._sync_timeout = sync_timeout
        self._values: dict[str, M] = {}
        self._consumer: AIOKafkaConsumer | None = None
        # Asks for end offsets on a connection of its own: on the reader's, a ListOffsets would
        # queue behind the long-polling fetch (a broker answers one connection in order).
        self._offsets: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None
        self._next: dict[TopicPartition, int] = {}  # the offset after the last record read, per partition
        self._progress: asyncio.Event | None = None
        self.version = 0  # moves on with every record read (callers cache what they derive)

    def values(self) -> list[M]:
        return list(self._values.values())

    async def _start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, client_id=self._client_id,
                                    enable_auto_commit=False, fetch_max_wait_ms=100)
        await consumer.start()
        try:
            for _ in range(100):
                found = consumer.partitions_for_topic(self._topic)
                if found:
                    break
                await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
                await asyncio.sleep(0.1)
            else:
                raise KafkaTimeoutError(f"topic {self._topic} has no partitions yet")
            self._partitions = [TopicPartition(self._topic, p) for p in sorted(found)]
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
            offsets = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, client_id=f"{self._client_id}-offsets",
                                       enable_auto_commit=False)
            await offsets.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._offsets = consumer, offsets
        self._task = asyncio.create_task(self._run(), name=f"view:{self._topic}")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200)
            except KafkaError as exc:  # the broker is away: keep trying, sync() waits meanwhile
                log.warning("%s: reading failed (%s); retrying", self._topic, exc)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batches.items():
                for record in records:
                    self._apply(record)
                if records:
                    self._next[tp] = records[-1].offset + 1
            if batches and self._progress is not None:
                self._progress.set()

    def _apply(self, record) -> None:
        key = record.key.decode("utf-8", errors="replace") if record.key else ""
        try:
            self._values[key] = self._model.model_validate_json(record.value or b"")
        except (ValidationError, ValueError, TypeError) as exc:
            # The topic's recorder dead-letters what it cannot read; here it is only passed over.
            log.warning("%s@%s:%s not read: %s", self._topic, record.partition, record.offset, exc)
            return
        self.version += 1

    async def sync(self) -> None:
        """Read everything the topic holds now (starting the reader on first use).

        Bounded: a broker that does not answer in time is a retriable error (the agent waits
        and tries the message again), never a wait without end.
        """
        try:
            await asyncio.wait_for(self._catch_up(), self._sync_timeout)
        except asyncio.TimeoutError:
            raise KafkaTimeoutError(f"{self._topic}: not caught up within {self._sync_timeout}s") from None

    async def _catch_up(self) -> None:
        if self._consumer is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._consumer is None:
                    await self._start()
        assert self._offsets is not None
        end = await self._offsets.end_offsets(self._partitions)
        # Positions counted from the records read, not the consumer's: position() can wait
        # unboundedly on an offset reset. Compaction keeps each partition's last record.
        while any(self._next.get(tp, 0) < end[tp] for tp in self._partitions):
            self._progress = self._progress or asyncio.Event()
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: its failure is moot
                pass
        for consumer in (self._consumer, self._offsets):
            if consumer is not None:
                await consumer.stop()
        self._consumer = self._offsets = None

    def start_with(self, app) -> None:
        """Read the topic as soon as the service runs, so the first decision does not wait for it."""

        @app.task
        async def _warm_up() -> None:
            try:
                await self.sync()
            except KafkaError as exc:  # the first decision will try again
                log.warning("%s: not read at start (%s)", self._topic, exc)

    def close_on_shutdown(self, app) -> None:
        @app.on_before_shutdown.connect
        async def _close(app_, **_: object) -> None:
            await self.close()


class Derived(Generic[M]):
    """Something computed from a view (the organisation with its overrides), recomputed only when it moved on."""

    def __init__(self, view: TopicView, derive: Callable[[list], object]) -> None:
        self._view, self._derive = view, derive
        self._version = -1
        self._value: object = None

    async def get(self, fresh: bool = True):
        """With ``fresh``, after catching up with the topic; without, from what is read so far."""
        if fresh:
            await self._view.sync()
        if self._version != self._view.version:
            self._value, self._version = self._derive(self._view.values()), self._view.version
        return self._value


def whole_topic(app, settings: Settings, spec: TopicSpec, service: str) -> TopicView:
    """A view of one catalogue topic for a Faust service: read as soon as it runs, closed at shutdown."""
    view = TopicView(settings.kafka_bootstrap, spec.name, spec.value, client_id=f"{settings.app_prefix}-{service}-{spec.name}")
    view.start_with(app)
    view.close_on_shutdown(app)
    return view
