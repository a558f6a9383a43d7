"""A token bucket per integration: bursts up to a minute's allowance, refilled continuously.

A request larger than the whole bucket is let in when the bucket is full and paid back
afterwards (the bucket goes below zero): otherwise an Alertmanager group of more alerts
than a minute's allowance would be refused at every retry, forever.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    per_minute: int
    tokens: float | None = None  # None until the first request: the bucket starts full
    updated: float = 0.0

    def take(self, now: float, count: int = 1) -> tuple[bool, float]:
        """(allowed, seconds to wait before ``count`` tokens are available)."""
        if self.tokens is None:
            self.tokens, self.updated = float(self.per_minute), now
        rate = self.per_minute / 60.0
        self.tokens = min(float(self.per_minute), self.tokens + (now - self.updated) * rate)
        self.updated = now
        if count <= self.tokens or self.tokens >= self.per_minute:
            self.tokens -= count
            return True, 0.0
        return False, (min(count, self.per_minute) - self.tokens) / rate
