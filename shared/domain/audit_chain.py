"""The audit trail as a hash chain: each event carries the SHA-256 of the one before it.

The canonical form of an event is defined here, once. It is what PostgreSQL keeps of
an event (audit_events) and what an export bundle carries, so that a bundle is checked
offline with nothing but this module:

- the fields ``CHAIN_FIELDS`` only (never ``hash`` itself, never ``recorded_at`` or the
  incident snapshot, which is a projection of the events);
- ``occurred_at`` as UTC ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, whatever offset it came with;
- a float with an integral value as that integer (PostgreSQL's jsonb gives ``1e+16`` back
  as ``10000000000000000``);
- JSON with sorted keys, no whitespace, ASCII only (``\\uXXXX`` escapes);
- ``hash`` is the lowercase hex SHA-256 of those bytes; the first event's ``prev_hash``
  is ``GENESIS``.

Pure: no I/O.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64
CHAIN_FIELDS = ("event_id", "incident_id", "version", "type", "change", "actor", "occurred_at", "summary",
                "causation_id", "data", "prev_hash")


def utc_text(moment: datetime | str) -> str:
    """A moment as the canonical form writes it (text in RFC 3339 is accepted as well)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        raise ValueError(f"occurred_at {moment.isoformat()} has no UTC offset")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return utc_text(value)
    return value


def canonical(event: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash is taken over (see the module's docstring)."""
    fields = {name: event.get(name) for name in CHAIN_FIELDS}
    fields["occurred_at"] = utc_text(fields["occurred_at"])
    return json.dumps(_plain(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """The first event at which a chain does not hold, and why."""

    incident_id: str
    version: int | None
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        where = f"version {self.version}, event {self.event_id}" if self.event_id else "the chain head"
        return f"incident {self.incident_id}: broken at {where}: {self.reason}"


@dataclass(frozen=True)
class Verified:
    incident_id: str
    events: int
    unchained: int  # events recorded before the chain existed (a prefix, never after a chained one)
    head: str | None


def verify(incident_id: str, events: Iterable[Mapping[str, Any]], head: str | None) -> Verified | BrokenLink:
    """Check an incident's audit events (in any order) and its stored head; the first broken link.

    Each event must belong to the incident, versions must run 1, 2, 3... without a gap, each
    ``hash`` must be the hash of the event's canonical form, each ``prev_hash`` the hash of
    the event before it (``GENESIS`` for the first chained one), and ``head`` the last hash.
    Events without a hash are accepted only before the first chained event (recorded
    before the chain existed).
    """
    ordered = sorted(events, key=lambda e: (e.get("version") is None, e.get("version") or 0))
    previous: str | None = None
    unchained = 0
    for expected, event in enumerate(ordered, start=1):
        version, event_id = event.get("version"), event.get("event_id")

        def broken(reason: str) -> BrokenLink:
            return BrokenLink(incident_id, version, event_id, reason)

        if event.get("incident_id") != incident_id:
            return broken(f"belongs to incident {event.get('incident_id')!r}")
        if version != expected:
            return broken(f"version {expected} expected (an event is missing or repeated)")
        if event.get("hash") is None:
            if previous is not None:
                return broken("no hash after a chained event (the hash was removed)")
            unchained += 1
            continue
        expected_prev = previous if previous is not None else GENESIS
        if event.get("prev_hash") != expected_prev:
            return broken(f"prev_hash {event.get('prev_hash')} is not the previous event's hash {expected_prev}")
        try:
            actual = event_hash(event)
        except (TypeError, ValueError) as exc:
            return broken(f"cannot be put in canonical form: {exc}")
        if actual != event["hash"]:
            return broken(f"content does not match its hash (recorded {event['hash']}, computed {actual})")
        previous = actual
    if head != previous:
        last = ordered[-1] if ordered else {}
        return BrokenLink(incident_id, last.get("version"), last.get("event_id"),
                          f"the incident's stored chain head {head} is not the last event's hash {previous}")
    return Verified(incident_id=incident_id, events=len(ordered), unchained=unchained, head=previous)


def chain_summary(incident_id: str, events: list[Mapping[str, Any]], head: str | None) -> dict[str, Any]:
    """What an export bundle says of its chain: how it is built, its head, and whether it holds."""
    verdict = verify(incident_id, events, head)
    broken = None
    if isinstance(verdict, BrokenLink):
        broken = {"incident_id": verdict.incident_id, "version": verdict.version, "event_id": verdict.event_id,
                  "reason": verdict.reason}
    return {"algorithm": "sha256", "fields": list(CHAIN_FIELDS), "genesis": GENESIS, "head": head,
            "verified": broken is None, "broken_at": broken}


def verify_bundle(bundle: Mapping[str, Any]) -> Verified | BrokenLink:
    """Check an export bundle on its own (``incidentctl export ID --verify``): its audit events
    against their hashes and against the head it says the incident has."""
    incident_id = (bundle.get("incident") or {}).get("incident_id") or "?"
    chain = bundle.get("audit_chain") or {}
    return verify(incident_id, bundle.get("audit_events") or [], chain.get("head"))
