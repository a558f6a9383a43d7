"""Page latency: a probe alert that opens a new incident, from its 2xx to its
``incident.opened`` on incident.audit and to its message on ``notifications.<team>``.

Times are the records' own CreateTime (stamped by the producing service on this
machine's clock), so the watcher's own fetch delay is not counted against the pipeline.
"""
from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from load import native


class Watcher:
    """Reads incident.audit and one team's notifications from their ends, matching probe tokens."""

    def __init__(self, bootstrap: str, team: str) -> None:
        self.audit_topic, self.note_topic = "incident.audit", f"notifications.{team}"
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                          fetch_max_wait_ms=50, max_partition_fetch_bytes=4 * 1024 * 1024)
        self.sent: dict[bytes, float] = {}  # probe token -> wall time of its 2xx
        self.opened: dict[bytes, float] = {}
        self.notified: dict[bytes, float] = {}
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions = []
        for topic in (self.audit_topic, self.note_topic):
            await self._consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            found = self._consumer.partitions_for_topic(topic) or set()
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self._consumer.position(tp)  # resolve "the end" now, before any probe is sent
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, records in batches.items():
                waiting = [t for t in self.sent if t not in (self.opened if tp.topic == self.audit_topic
                                                              else self.notified)]
                if not waiting:
                    continue
                for record in records:
                    value = record.value or b""
                    for token in waiting:
                        if token not in value:
                            continue
                        if tp.topic == self.audit_topic and b'"incident.opened"' in value:
                            self.opened.setdefault(token, record.timestamp / 1000)
                        elif tp.topic == self.note_topic and b'"opened"' in value:
                            self.notified.setdefault(token, record.timestamp / 1000)

    def latencies_ms(self) -> tuple[list[float], list[float], int]:
        """(to incident.opened, to the notification, probes never opened)."""
        opened = [(self.opened[t] - sent) * 1000 for t, sent in self.sent.items() if t in self.opened]
        notified = [(self.notified[t] - sent) * 1000 for t, sent in self.sent.items() if t in self.notified]
        return opened, notified, len(self.sent) - len(self.opened)

    async def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (len(self.opened) < len(self.sent) or
                                               len(self.notified) < len(self.sent)):
            await asyncio.sleep(0.2)


async def send_probes(client: aiohttp.ClientSession, url: str, watcher: Watcher, service: str, seconds: float,
                      accepted: dict) -> None:
    """One probe a second: a new alert name on ``service``, so each opens a new incident."""
    started = time.perf_counter()
    n = 0
    while (due := started + n) < started + seconds:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        token = f"BenchProbe{uuid.uuid4().hex[:12]}"
        body = native(service, token, "probe-host", summary=f"{token} page probe")
        async with client.post(url, json=body) as response:
            await response.read()
            if 200 <= response.status < 300:
                watcher.sent[token.encode()] = time.time()
                accepted[(service, token)] = accepted.get((service, token), 0) + 1
        n += 1
