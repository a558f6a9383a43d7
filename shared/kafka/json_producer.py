"""An aiokafka producer of pydantic messages as JSON, keyed by string."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import BaseModel

from .liveness import STALLS

# Alert storms repeat the same few thousand keys: the key's partition is remembered
# rather than hashed again (pure-Python murmur2 was a quarter of aiokafka's cost per message).
_PARTITION_CACHE_KEYS = 100_000
# A batch per partition, up to this size, rides each produce request (aiokafka's default of
# 16 KB is about 40 alerts, which capped intake at a few thousand alerts per round trip).
MAX_BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 1024 * 1024  # aiokafka's default, under the broker's message.max.bytes


class CachedPartitioner:
    """Kafka's default partitioning (murmur2 of the key, as the Java client), memoised per key."""

    def __init__(self) -> None:
        self._cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            # Only keyed messages are produced here; spread the odd one like aiokafka would.
            return (available or all_partitions)[0]
        slot = (key, len(all_partitions))
        partition = self._cache.get(slot)
        if partition is None:
            if len(self._cache) >= _PARTITION_CACHE_KEYS:
                self._cache.clear()
            partition = self._cache[slot] = all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
        return partition


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
            # One produce request is in flight at a time; what arrives meanwhile waits for the
            # next anyway, so lingering longer would only add latency to a lone alert.
            linger_ms=1,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
            partitioner=CachedPartitioner(),
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
        await self.send_encoded(topic, [(key.encode("utf-8"), encode(message)) for key, message in items])

    async def send_encoded(self, topic: str, items: list[tuple[bytes, bytes]]) -> None:
        """Send already encoded (key, value) pairs and wait until every one is acknowledged.

        A message too large for the broker refuses the whole batch before any is sent."""
        for key, value in items:
            if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) > MAX_REQUEST_BYTES:
                raise MessageSizeTooLargeError(f"a message of {len(value)} bytes is over {MAX_REQUEST_BYTES}")
        with STALLS.watch(f"producer send to {topic}"):
            futures = [await self._producer.send(topic, value, key=key) for key, value in items]
            failure = None
            for future in futures:
                try:
                    await future
                except KafkaError as exc:  # wait for the rest all the same, then say why
                    failure = failure or exc
        if failure is not None:
            raise failure

    async def connected(self) -> bool:
        try:
            await self._producer.client.fetch_all_metadata()
        except Exception:  # noqa: BLE001 - readiness only reports yes/no
            return False
        return True
