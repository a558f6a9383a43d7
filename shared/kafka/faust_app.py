"""One way to build a service's Faust app: distinct id, web port and absolute data dir."""
from __future__ import annotations

import asyncio

import faust
from prometheus_client import generate_latest

from ..catalogue import TopicSpec
from . import faust_backpressure, faust_batching, faust_fixes, faust_flush  # noqa: F401 - faust_flush and faust_backpressure correct Faust on import
from .liveness import ACTIVITY
from ..settings import Settings

SERVICE_INDEX = {"triage": 0, "escalation": 1, "notification": 2, "metrics": 3}


def create_app(service: str, settings: Settings, web_port: int | None = None, process_metrics: bool = True) -> faust.App:
    name = service if settings.worker == 0 else f"{service}-{settings.worker}"
    datadir = (settings.data_dir / name).resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    # Several workers of one service share its app id (one consumer group); the client id tells
    # them apart in the group's description (make status).
    worker_conf = {} if settings.worker == 0 else {"broker_client_id": f"{settings.app_prefix}-{name}"}
    app = faust.App(
        f"{settings.app_prefix}-{service}",
        **worker_conf,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.topic_partitions,
        # Only for a topic Faust would create itself: services.topology creates them all first.
        topic_replication_factor=settings.topic_replication,
        # One worker per service locally; a standby needs a second worker to live on.
        table_standby_replicas=0,
        web_host=settings.faust_web_host,
        web_bind=settings.faust_web_host,
        web_port=web_port or settings.faust_web_port_base + SERVICE_INDEX[service],
        datadir=str(datadir),
        autodiscover=False,
        producer_acks=-1,
        producer_linger=faust_batching.PRODUCER_LINGER_SECONDS,
        broker_commit_interval=1.0,
        # A worker killed without leaving its group holds its partitions until its session
        # expires: 6 s (the broker's minimum) instead of Faust's 60 s, so a restarted worker
        # resumes within seconds. (Static membership would skip even that wait, but with
        # Faust's incremental subscription a rejoining static member was seen to get back
        # only the assignor topic and stall.)
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.5,
        consumer_auto_offset_reset="earliest",
        # Events queued per agent: enough for a batch, not so many that a partition rewound
        # (faust_fixes) waits long behind copies it will not take.
        stream_buffer_maxsize=1024,
        key_serializer="raw",
        value_serializer="raw",
    )
    if process_metrics:
        _serve_process_metrics(app)
    return app


def _serve_process_metrics(app: faust.App) -> None:
    """/metrics with the process's own metrics, so Prometheus can tell the service is up."""

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(), content_type="text/plain; version=0.0.4")


def declare(app: faust.App, spec: TopicSpec, partitions: int) -> faust.TopicT:
    """A catalogue topic as a Faust topic of raw bytes (decoded with pydantic by the agent)."""
    return app.topic(
        spec.name,
        partitions=spec.partition_count(partitions),
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def table(app: faust.App, name: str, partitions: int) -> faust.Table:
    """A table of JSON values keyed by strings, co-partitioned with the keyed topics."""
    schema = faust.Schema(key_serializer="json", value_serializer="json")
    return app.Table(name, default=None, partitions=partitions, schema=schema)


class Lazy:
    """A client made on first use inside the running loop (never at import), closed at shutdown."""

    def __init__(self, factory, closer) -> None:
        self._factory, self._closer = factory, closer
        self._value = None
        self._lock: asyncio.Lock | None = None

    async def get(self):
        if self._value is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._value is None:
                    self._value = await self._factory()
        return self._value

    async def close(self) -> None:
        if self._value is not None:
            value, self._value = self._value, None
            await self._closer(value)

    def close_on_shutdown(self, app: faust.App) -> None:
        @app.on_before_shutdown.connect
        async def _close(app_: faust.App, **_: object) -> None:
            await self.close()


def guarded_agent(app: faust.App, channel, handle, dead_letter_topic, service: str):
    """An agent (concurrency 1: Faust 0.15 can commit past an unfinished message with more)
    that runs ``handle(event)`` for each event under ``streams.process``."""
    from .streams import process

    async def agent(stream):
        ACTIVITY.waiting(name)  # the time between messages is the watchdog's evidence (liveness.Progress)
        async for event in stream.events():
            ACTIVITY.working(name)
            if faust_fixes.admit(app.consumer, event.message):
                await process(event, handle, dead_letter_topic, service)
                faust_fixes.handled(event.message)
            # else out of order: left unhandled, read again once its partition is rewound
            ACTIVITY.waiting(name)

    agent.__doc__ = handle.__doc__
    name = f"{service}.{handle.__name__}"
    faust_fixes.guard_topics(channel, name)
    return app.agent(channel, name=name, concurrency=1)(agent)

