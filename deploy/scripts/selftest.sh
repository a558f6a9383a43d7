#!/usr/bin/env bash
# Proves that a running local stack works with the clients the services use:
#   - creates a topic with 4 partitions (AIOKafkaAdminClient) and checks them,
#   - produces one message and consumes it back in a consumer group,
#   - deletes the topic,
#   - runs `select 1` through asyncpg against DATABASE_URL.
#
# Usage: PYTHON=/path/to/python deploy/scripts/selftest.sh [--profile local|test]
#   PYTHON must have aiokafka and asyncpg (default: python3).
#   Addresses: with --profile, those of `stack.sh env --profile P`; without it,
#   KAFKA_BOOTSTRAP / DATABASE_URL from the environment if both are set,
#   else the test profile's.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
PYTHON=${PYTHON:-python3}
PROFILE=""
while (($#)); do
  case $1 in
    --profile) [[ $# -ge 2 ]] || { echo "selftest.sh: --profile needs a value" >&2; exit 2; }; PROFILE=$2; shift 2 ;;
    --profile=*) PROFILE=${1#--profile=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "selftest.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [[ -n $PROFILE || -z ${KAFKA_BOOTSTRAP:-} || -z ${DATABASE_URL:-} ]]; then
  stack_env=$("$SCRIPT_DIR/stack.sh" env --profile "${PROFILE:-test}")
  eval "$stack_env"
fi
export KAFKA_BOOTSTRAP DATABASE_URL

"$PYTHON" - <<'PY'
import asyncio
import os
import sys
import time
import uuid

try:
    import asyncpg
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
except ImportError as exc:
    sys.exit(f"selftest: {sys.executable} lacks aiokafka/asyncpg: {exc}")

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP"]
DSN = os.environ["DATABASE_URL"]
PARTITIONS = 4


def step(msg: str, t0: float) -> None:
    print(f"selftest: {msg} ({time.monotonic() - t0:.2f}s)", flush=True)


async def kafka_check() -> None:
    t0 = time.monotonic()
    topic = f"stack-selftest-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            parts: set[int] = set()
            for _ in range(50):  # metadata of a brand-new topic
                parts = await producer.partitions_for(topic) or set()
                if len(parts) == PARTITIONS:
                    break
                await asyncio.sleep(0.1)
            if len(parts) != PARTITIONS:
                raise SystemExit(f"selftest: {topic} has partitions {sorted(parts)}, wanted {PARTITIONS}")
            step(f"created topic {topic} with {len(parts)} partitions on {BOOTSTRAP}", t0)
            payload = f"hello {uuid.uuid4()}".encode()
            meta = await producer.send_and_wait(topic, value=payload, key=b"incident-1")
            step(f"produced to partition {meta.partition} offset {meta.offset}", t0)
        finally:
            await producer.stop()

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), timeout=60)
            await consumer.commit()
        finally:
            await consumer.stop()
        if msg.value != payload or msg.key != b"incident-1":
            raise SystemExit(f"selftest: consumed {msg.key!r}={msg.value!r}, wanted {payload!r}")
        step(f"consumed it back in a consumer group (partition {msg.partition}) and committed", t0)
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


async def pg_check() -> None:
    t0 = time.monotonic()
    conn = await asyncpg.connect(DSN, timeout=30)
    try:
        one = await conn.fetchval("select 1")
        version = await conn.fetchval("show server_version")
        db, user = await conn.fetchrow("select current_database(), current_user")
    finally:
        await conn.close()
    if one != 1:
        raise SystemExit(f"selftest: select 1 returned {one!r}")
    step(f"select 1 -> {one} on PostgreSQL {version} (database {db}, role {user})", t0)


async def main() -> None:
    await asyncio.wait_for(kafka_check(), timeout=120)
    await asyncio.wait_for(pg_check(), timeout=60)


asyncio.run(main())
print("selftest: OK", flush=True)
PY
