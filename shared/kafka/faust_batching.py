"""Fewer, fuller requests to the broker from Faust's consumer and producer.

Profiled under a storm (py-spy, ``make bench BENCH_ARGS="--profile"``), a quarter of each
Faust service's CPU went on socket writes of fetch and produce requests and a fifth on
waking the event loop from the consumer thread: faust-streaming 0.15.3 asks for
``fetch_min_bytes=1`` (so a fetch returns with whatever single record arrived, and the
next one is sent at once) and produces with ``linger_ms=0`` (a request per record sent).
Here a fetch waits for 64 KB or 10 ms and the producer lingers 5 ms: a hop costs at most
that much latency when traffic is thin, and in a storm each request carries hundreds of
records instead of one.
"""
from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MIN_BYTES = 64 * 1024
FETCH_MAX_WAIT_MS = 10
PRODUCER_LINGER_SECONDS = 0.005

_original_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer


def _worker_consumer(self, transport):
    consumer = _original_worker_consumer(self, transport)
    # Read by AIOKafkaConsumer.start() when it builds its fetcher.
    consumer._fetch_min_bytes = FETCH_MIN_BYTES
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    return consumer


faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _worker_consumer
