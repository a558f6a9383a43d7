"""An aiokafka producer of pydantic messages as JSON, keyed by string."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from .liveness import STALLS


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json().encode("utf-8")


class JsonProducer:
    def __init__(self, bootstrap: str, client_id: str) -> None:
        # acks=all + idempotence: an accepted alert is on the broker's log before we answer 2xx.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, message: BaseModel, partition: int | None = None) -> None:
        with STALLS.watch(f"producer send to {topic}"):
            await self._producer.send_and_wait(topic, encode(message), key=key.encode("utf-8"), partition=partition)

    async def send_many(self, topic: str, items: list[tuple[str, BaseModel]]) -> None:
        """Send a batch and wait until every message is acknowledged."""
        with STALLS.watch(f"producer send to {topic}"):
            futures = [
                await self._producer.send(topic, encode(message), key=key.encode("utf-8")) for key, message in items
            ]
            for future in futures:
                await future

    async def connected(self) -> bool:
        try:
            await self._producer.client.fetch_all_metadata()
        except Exception:  # noqa: BLE001 - readiness only reports yes/no
            return False
        return True
