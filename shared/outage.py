"""An outage of a dependency told as changes of state: down, still down (now and then), back.

Pure (the caller passes the clock and logs the line returned), so that the rule is tested
on its own. A broker outage used to be thousands of lines a second from the clients'
retry loops; with this, it is one line when it starts, one every ``every`` seconds while
it lasts, and one when it ends.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Outage:
    what: str
    every: float = 10.0
    since: float | None = None
    attempts: int = 0
    _told: float = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, now: float, reason: str) -> str | None:
        """Another failed attempt: the line to log when it starts the outage or has been
        quiet for ``every`` seconds, otherwise None."""
        if self.since is None:
            self.since, self._told, self.attempts = now, now, 1
            return f"{self.what} unavailable: {reason}"
        self.attempts += 1
        if now - self._told < self.every:
            return None
        self._told = now
        return (f"{self.what} still unavailable after {now - self.since:.0f}s "
                f"({self.attempts} attempts), retrying: {reason}")

    def recovered(self, now: float, detail: str = "") -> str | None:
        """The attempt succeeded: the line that ends the outage, or None when there was none."""
        if self.since is None:
            return None
        line = f"{self.what} back after {now - self.since:.1f}s ({self.attempts} failed attempts)"
        self.since, self.attempts = None, 0
        return f"{line}: {detail}" if detail else line
