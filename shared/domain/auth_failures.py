"""Failed authentication slowed per client: a small bucket of failures, refilled slowly.

Each client address may fail ``burst`` times at once; after that one more try is looked at
every ``60 / per_minute`` seconds, and until then it is answered 429 with Retry-After
before its credential is even hashed or looked up (so guessing keys cannot be turned into
a PostgreSQL query per request). A credential known to be good is never slowed: a person
behind the same address as a misconfigured sender keeps working. Pure: time is passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FailedAuthentications:
    burst: int = 20
    per_minute: float = 20.0
    max_clients: int = 10_000
    # client -> (failures it may still make, when that was computed)
    allowance: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _left(self, client: str, now: float) -> float:
        held = self.allowance.get(client)
        if held is None:
            return float(self.burst)
        left, since = held
        return min(float(self.burst), left + (now - since) * self.per_minute / 60.0)

    def wait(self, client: str, now: float) -> float:
        """Seconds before this client's next credential is checked (0: check it now)."""
        left = self._left(client, now)
        return 0.0 if left >= 1.0 else (1.0 - left) * 60.0 / self.per_minute

    def failed(self, client: str, now: float) -> None:
        """A credential from ``client`` was unknown, revoked or expired."""
        left = self._left(client, now) - 1.0
        self.allowance.pop(client, None)
        if len(self.allowance) >= self.max_clients:
            # The longest since their last failure go first (dicts keep insertion order).
            for old in list(self.allowance)[: max(1, self.max_clients // 10)]:
                del self.allowance[old]
        self.allowance[client] = (left, now)
