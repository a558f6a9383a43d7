"""What a restricted-incident leak test needs besides the harness: a loopback webhook
receiver that keeps every body it is sent, and every team's notification topic read whole."""
from __future__ import annotations

import asyncio
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiokafka import AIOKafkaConsumer, TopicPartition

from harness import TEST_CONFIG
from shared.catalogue import team_topic_name
from shared.config_loader import load_organisation


class Receiver:
    """Answers 200 to every POST on 127.0.0.1:``port`` and keeps (path, body text) of each."""

    def __init__(self, port: int) -> None:
        self.received: list[tuple[str, str]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode("utf-8", "replace")
                with lock:
                    received.append((self.path, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[str]:
        return [body for _, body in list(self.received)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def team_names() -> list[str]:
    return sorted(load_organisation(TEST_CONFIG).teams)


def notifications_by_team(needles: set[str]) -> dict[str, list[dict]]:
    """Every message on each team's notification topic, from the beginning to its end now, whose
    text holds one of ``needles`` (incident ids, summaries, service names). One consumer reads
    every topic: a consumer per team would cost a second each."""
    topics = {team_topic_name(team): team for team in team_names()}

    async def run() -> dict[str, list[dict]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP"], enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
            partitions = [TopicPartition(topic, p) for topic in topics
                          for p in sorted(consumer.partitions_for_topic(topic) or ())]
            missing = set(topics) - {tp.topic for tp in partitions}
            assert not missing, f"no such topics: {missing}"
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            found: dict[str, list[dict]] = {team: [] for team in topics.values()}
            async def behind() -> bool:
                for tp in partitions:
                    if await consumer.position(tp) < end[tp]:
                        return True
                return False

            while await behind():
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    for record in records:
                        text = record.value.decode("utf-8", "replace")
                        if any(needle in text for needle in needles):
                            found[topics[tp.topic]].append(json.loads(text))
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())
