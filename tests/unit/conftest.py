"""Fixtures for the pure domain core: the example organisation, a fixed clock, and
helpers that build alerts and drive one incident through ``decide``/``evolve``.

There is no ``tests/__init__.py``: the repository root is put on ``sys.path`` here so
that ``shared`` imports the same way it does in the services.
"""
from __future__ import annotations

import copy
import itertools
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from shared.config_loader import load_organisation, parse_organisation  # noqa: E402
from shared.domain.alerts import Alert, correlation_key, fingerprint  # noqa: E402
from shared.domain.commands import OpenIncident  # noqa: E402
from shared.domain.events import evolve  # noqa: E402
from shared.domain.incident import Incident  # noqa: E402
from shared.domain.lifecycle import Context, decide  # noqa: E402
from shared.domain.organisation import Organisation  # noqa: E402

EXAMPLE_CONFIG = ROOT / "deploy" / "config" / "organisation.yaml"

# A Monday, 12:00 UTC (13:00 in Berlin): integrations-oncall is in its 9th week
# (index 8 -> carol primary, alice secondary).
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


class Timeline:
    """One incident driven through the lifecycle the way triage does it."""

    def __init__(self, org: Organisation, now: datetime, actor: str = "alice") -> None:
        self.org = org
        self.now = now
        self.actor = actor
        self.state: Incident | None = None
        self.history: list = []
        # What triage keeps beside the incident: each fingerprint's reference.
        self.refs: dict = {}
        self._offsets = itertools.count()

    def ctx(self, actor: str | None = None) -> Context:
        return Context(now=self.now, org=self.org, actor=actor or self.actor)

    def decide(self, command, actor: str | None = None) -> list:
        """Only decide (nothing applied): for checking rejections and idempotence."""
        return decide(self.state, command, self.ctx(actor))

    def run(self, command, actor: str | None = None) -> list:
        """Decide and apply every event; each event must add exactly one version."""
        events = decide(self.state, command, self.ctx(actor))
        for event in events:
            before = self.state.version if self.state is not None else 0
            self.state = evolve(self.state, event)
            assert self.state.version == before + 1
            assert self.state.updated_at == event.at
            self.history.append(event)
            for ref in getattr(event, "refs", ()):
                self.refs[ref.fingerprint] = ref
        return events

    def attach(self, *alerts: Alert, actor: str | None = None) -> list:
        """Alerts folded into one command the way triage folds a batch (services/triage/folding.py)."""
        envelope = fold_alerts(self.state, self.refs, alerts, self.org, self._offsets)
        return self.run(envelope.command, actor=actor or envelope.actor)


    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def fold_alerts(state: Incident, refs: dict, alerts, org: Organisation, offsets, fingerprint_: str | None = None):
    """The one command triage makes of ``alerts`` for ``state``'s incident, given the
    fingerprints' references so far (``refs``, by fingerprint; ``fingerprint_`` for all)."""
    from services.triage.folding import FingerprintState, IncidentFold
    from shared.messages import CorrelateAlert, Origin

    fold = IncidentFold(state.incident_id, state.firing_alerts, state.distinct_alerts, max_alert_age=org.max_alert_age)
    for alert in alerts:
        fp = fingerprint_ or fingerprint(alert, org)
        stored = refs.get(fp)
        message = CorrelateAlert(alert=alert, fingerprint=fp, correlation_key=state.correlation_key,
                                 origin=Origin(topic="alerts.intake", partition=0, offset=next(offsets)))
        fold.add(message, FingerprintState(incident_id=state.incident_id, ref=stored) if stored else None)
    return fold.command()


@pytest.fixture(scope="session")
def example_config_text() -> str:
    return EXAMPLE_CONFIG.read_text(encoding="utf-8")


@pytest.fixture
def raw_config(example_config_text: str) -> dict[str, Any]:
    """The example configuration as a fresh, mutable dict."""
    return yaml.safe_load(example_config_text)


@pytest.fixture(scope="session")
def org() -> Organisation:
    return load_organisation(EXAMPLE_CONFIG)


@pytest.fixture
def build_org() -> Callable[[dict[str, Any]], Organisation]:
    """Validate a raw configuration dict through the real loader path (YAML text)."""

    def build(raw: dict[str, Any]) -> Organisation:
        return parse_organisation(yaml.safe_dump(raw), "test.yaml")

    return build


@pytest.fixture
def make_org(raw_config: dict[str, Any], build_org) -> Callable[..., Organisation]:
    """The example organisation with some top-level keys replaced."""

    def make(**updates: Any) -> Organisation:
        raw = copy.deepcopy(raw_config)
        raw.update(updates)
        return build_org(raw)

    return make


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_alert(now: datetime) -> Callable[..., Alert]:
    """An ERP connector alert (tier 2, integrations, no playbook, error -> SEV3)."""
    counter = itertools.count(1)

    def make(**overrides: Any) -> Alert:
        fields: dict[str, Any] = {
            "alert_id": f"alert-{next(counter)}",
            "service": "connector:ERP",
            "summary": "ERP sync backlog",
            "source_severity": "error",
            "labels": {"alertname": "QueueBacklog", "instance": "erp-1"},
            "received_at": now,
            "source": "alertmanager",
            "integration": "alertmanager",
        }
        fields.update(overrides)
        return Alert(**fields)

    return make


@pytest.fixture
def timeline(org: Organisation, now: datetime) -> Callable[..., Timeline]:
    """A fresh, empty timeline (nothing opened yet)."""

    def make(organisation: Organisation | None = None) -> Timeline:
        return Timeline(organisation or org, now)

    return make


@pytest.fixture
def open_incident(org: Organisation, now: datetime, make_alert) -> Callable[..., Timeline]:
    """Open an incident through decide/evolve and return its timeline.

    ``open_incident()`` opens from a default alert; pass ``alert=`` for another one,
    ``declared=True`` for an incident declared by a person, and any other
    OpenIncident field (severity, commander, ...) as keywords.
    """

    def open_(
        alert: Alert | None = None,
        *,
        declared: bool = False,
        organisation: Organisation | None = None,
        incident_id: str = "INC-2026-03-02-001",
        **fields: Any,
    ) -> Timeline:
        the_org = organisation or org
        line = Timeline(the_org, now)
        if declared:
            command = OpenIncident(incident_id=incident_id, correlation_key=f"declared:{incident_id}", **fields)
        else:
            alert = alert or make_alert()
            command = OpenIncident(
                incident_id=incident_id,
                correlation_key=correlation_key(alert, the_org),
                alert=alert,
                fingerprint=fingerprint(alert, the_org),
                **fields,
            )
        events = line.run(command, actor="triage")
        assert len(events) == 1 and events[0].change == "opened"
        return line

    return open_
