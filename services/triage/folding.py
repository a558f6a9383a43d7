"""Folding a batch of alerts into one command per incident (pure: data in, data out).

The correlator takes a correlation key's alerts of one batch in order. Each is first
recognised as redelivery or not (the highest position seen per source stream), then
routed (handlers.route_alert): dropped, the opening alert of a new incident, or one
more alert of the incident the key feeds. The alerts of one incident become one
``AttachAlerts`` command: its count, the references of the fingerprints it touched
(each as it stands after the batch, with its labels), and the incident's totals of
distinct and firing fingerprints. What each fingerprint last said is kept per
(key, fingerprint) beside the correlation record, so one more alert costs the same
however many fingerprints the incident already has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.domain.alerts import AlertAction, AlertRef, AlertStatus, fold_ref
from shared.domain.commands import AlertOrigin, AttachAlerts
from shared.domain.detection import DEFAULT_MAX_ALERT_AGE
from shared.messages import CommandEnvelope, CorrelateAlert

from .handlers import CorrelationRecord


class FingerprintState(BaseModel):
    """What one fingerprint last said, on the incident it was last part of."""

    incident_id: str
    ref: AlertRef


STATE_KEY_SEPARATOR = "\x1f"  # a correlation key never holds it (services/repartition/rules.py splits on it)


def state_key(correlation_key: str, fingerprint: str) -> str:
    return f"{correlation_key}{STATE_KEY_SEPARATOR}{fingerprint}"


@dataclass
class IncidentFold:
    """The alerts of one batch for one incident, on their way to one command."""

    incident_id: str
    firing: int
    distinct: int
    refs: dict[str, AlertRef] = field(default_factory=dict)
    states: dict[str, FingerprintState] = field(default_factory=dict)
    origins: list[AlertOrigin] = field(default_factory=list)
    detected_at: datetime | None = None
    detected_at_clamped: datetime | None = None  # the starts_at detected_at was clamped from, if it was
    first_trigger_summary: str | None = None
    last: CorrelateAlert | None = None
    max_alert_age: timedelta = DEFAULT_MAX_ALERT_AGE  # the organisation's (detection.py)

    def previous(self, fingerprint: str, stored: FingerprintState | None) -> AlertRef | None:
        """The fingerprint's reference on this incident before this alert (None: new to it)."""
        if fingerprint in self.states:  # touched earlier in this batch (the opening alert too)
            return self.states[fingerprint].ref
        return stored.ref if stored is not None and stored.incident_id == self.incident_id else None

    def count(self, fingerprint: str, ref: AlertRef, before: AlertRef | None) -> None:
        """Keep the totals of distinct and firing fingerprints (the opening alert's too)."""
        firing_now = ref.status is AlertStatus.FIRING
        if before is None:
            self.distinct += 1
            self.firing += 1 if firing_now else 0
        elif (before.status is AlertStatus.FIRING) != firing_now:
            self.firing += 1 if firing_now else -1
        self.states[fingerprint] = FingerprintState(incident_id=self.incident_id, ref=ref)

    def opening(self, message: CorrelateAlert) -> None:
        ref = fold_ref(None, message.alert, message.fingerprint)
        self.count(message.fingerprint, ref, None)

    def add(self, message: CorrelateAlert, stored: FingerprintState | None) -> None:
        alert = message.alert
        before = self.previous(message.fingerprint, stored)
        ref = fold_ref(before, alert, message.fingerprint)
        self.count(message.fingerprint, ref, before)
        self.refs[message.fingerprint] = ref
        self.origins.append(AlertOrigin(stream=message.origin.stream, offset=message.origin.offset,
                                        action=alert.action, alert_id=alert.alert_id, fingerprint=message.fingerprint,
                                        received_at=alert.received_at))
        if alert.action is AlertAction.TRIGGER:
            if self.first_trigger_summary is None:
                self.first_trigger_summary = alert.summary
            detection = alert.detection(self.max_alert_age)
            if self.detected_at is None or detection.at < self.detected_at:
                self.detected_at, self.detected_at_clamped = detection.at, detection.clamped_from
        self.last = message

    def command(self) -> CommandEnvelope | None:
        """The one command for this batch's alerts, or None when only the opening came."""
        if not self.origins:
            return None
        assert self.last is not None
        first = self.origins[0]
        return CommandEnvelope(
            command_id=f"alerts:{first.stream}:{first.offset}:{len(self.origins)}",
            incident_id=self.incident_id,
            actor=f"monitoring:{self.last.alert.integration}",
            issued_at=self.last.alert.received_at,
            command=AttachAlerts(
                origins=self.origins,
                refs=list(self.refs.values()),
                firing_alerts=max(self.firing, 0),
                distinct_alerts=self.distinct,
                detected_at=self.detected_at,
                detected_at_clamped=self.detected_at_clamped,
                first_trigger_summary=self.first_trigger_summary,
            ),
        )

    def recorded(self, record: CorrelationRecord) -> CorrelationRecord:
        """The correlation record with this fold's totals."""
        return record.model_copy(update={"firing": max(self.firing, 0), "distinct": self.distinct})
