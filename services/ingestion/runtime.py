"""What the ingestion process holds while it runs (built in the lifespan, never at import)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import asyncpg

from shared.domain.organisation import Integration, Organisation
from shared.domain.ratelimit import TokenBucket
from shared.kafka.json_producer import JsonProducer
from shared.settings import Settings

from .recorded import RecordedListener
from .security import TokenCache


@dataclass
class Runtime:
    settings: Settings
    org: Organisation
    pool: asyncpg.Pool
    producer: JsonProducer
    recorded: RecordedListener
    tokens: TokenCache = field(default_factory=TokenCache)
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    def integration(self, name: str) -> Integration:
        return self.org.integrations.get(name) or self.org.integrations.get("default") or Integration()

    def take(self, integration_name: str, count: int) -> tuple[bool, float]:
        """(allowed, seconds to wait); the buckets are this process's own (README, "Intake limits")."""
        bucket = self.buckets.get(integration_name)
        if bucket is None:
            limit = self.integration(integration_name).rate_limit_per_minute
            if limit is None:
                return True, 0.0
            bucket = TokenBucket(per_minute=limit)
            self.buckets[integration_name] = bucket
        return bucket.take(time.monotonic(), count)
