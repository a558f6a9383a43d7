"""A token bucket per integration: bursts up to a minute's allowance, refilled continuously."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    per_minute: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float, count: int = 1) -> tuple[bool, float]:
        """(allowed, seconds to wait before ``count`` tokens are available)."""
        if self.tokens < 0:
            self.tokens, self.updated = float(self.per_minute), now
        rate = self.per_minute / 60.0
        self.tokens = min(float(self.per_minute), self.tokens + (now - self.updated) * rate)
        self.updated = now
        if count <= self.tokens:
            self.tokens -= count
            return True, 0.0
        return False, (count - self.tokens) / rate
