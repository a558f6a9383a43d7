"""Notification logic: audit event in, notifications and communication-log records out."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from shared.catalogue import team_topic_name
from shared.domain import maintenance
from shared.domain.incident import Incident
from shared.domain.maintenance import MaintenanceWindow, Subject
from shared.domain.notifications import BACKED_OFF, RESETS_BACKOFF, back_off, plan
from shared.domain.organisation import Organisation
from shared.messages import AuditEvent, CommunicationRecord, Notification, WebhookDelivery


class NotifiedRecord(BaseModel):
    """Per incident: the last audit version handled and when each repeating kind was last sent."""

    last_version: int = 0
    sent: dict[str, tuple[datetime, float | None]] = {}
    # Since when a maintenance window holds the incident's automatic notifications back (None: it does not).
    held_since: datetime | None = None


@dataclass
class Planned:
    record: NotifiedRecord
    notifications: list[Notification] = field(default_factory=list)
    webhooks: list[WebhookDelivery] = field(default_factory=list)
    log: list[CommunicationRecord] = field(default_factory=list)
    duplicate: bool = False


def slack_payload(notification: Notification) -> dict:
    """Slack incoming-webhook format (also understood by Mattermost and Rocket.Chat)."""
    fields = [
        {"title": "Severity", "value": notification.severity, "short": True},
        {"title": "Status", "value": notification.status, "short": True},
        {"title": "Service", "value": notification.service, "short": True},
        {"title": "Commander", "value": notification.commander or "unassigned", "short": True},
    ]
    if notification.runbook_url:
        fields.append({"title": "Runbook", "value": notification.runbook_url, "short": False})
    return {
        "text": notification.text,
        "attachments": [
            {"fallback": notification.text, "title": notification.incident_id, "title_link": notification.incident_url,
             "fields": fields}
        ],
    }


def _log(notification_id: str, suffix: str, incident: Incident, outgoing, status: str, text: str,
         now: datetime) -> CommunicationRecord:
    return CommunicationRecord(
        record_id=f"{notification_id}:{suffix}", incident_id=incident.incident_id,
        channel=f"kafka:{team_topic_name(outgoing.team)}", team=outgoing.team, kind=outgoing.kind, status=status,
        text=text, notification_id=notification_id, occurred_at=now,
    )


def _held_since(record: NotifiedRecord, event: AuditEvent, incident: Incident,
                windows: list[MaintenanceWindow]) -> datetime | None:
    """Since when the incident's automatic notifications are held back by maintenance windows, if still at this event."""
    subject = Subject(incident.service, incident.labels)
    since = record.held_since
    if event.change in ("opened", "reopened"):
        since = None
        if maintenance.holds_opening(event.change, incident.declared, bool(event.data.get("recurrence"))):
            moment = incident.opened_at if event.change == "opened" else event.occurred_at
            since = moment if maintenance.covering(windows, subject, moment) is not None else None
    return since if maintenance.held(windows, subject, since, event.occurred_at) else None


def handle_event(record: NotifiedRecord, event: AuditEvent, org: Organisation, now: datetime,
                 windows: list[MaintenanceWindow] = ()) -> Planned:
    """The notifications, webhook posts and log records one audit event causes (once per version)."""
    if event.version <= record.last_version:
        return Planned(record=record, duplicate=True)
    incident = Incident.model_validate(event.incident)
    sent = {kind: last for kind, last in record.sent.items() if kind not in RESETS_BACKOFF.get(event.change, ())}
    planned = Planned(record=record)
    outgoing_all = plan(event.change, incident, event.data, event.summary, org)
    held_since = _held_since(record, event, incident, list(windows))
    if held_since is not None and maintenance.automatic(event.actor) and outgoing_all:
        # In a maintenance window: recorded, nobody told. People's own changes are still told.
        window = maintenance.covering(windows, Subject(incident.service, incident.labels), event.occurred_at)
        why = f"maintenance window {window.window_id}: {window.reason}" if window else "maintenance window"
        planned.log = [_log(f"{event.event_id}:{o.team}", "suppressed", incident, o, "suppressed",
                            f"held back ({why}): {o.text}", now) for o in outgoing_all]
        planned.record = NotifiedRecord(last_version=event.version, sent=sent, held_since=held_since)
        return planned
    # One decision per change, not per team: every team hears a repeat, or none does.
    last = sent.get(event.change)
    interval = timedelta(seconds=last[1]) if last and last[1] is not None else None
    send, following = back_off(event.change, last[0] if last else None, interval, now, org.notifications)
    if send and outgoing_all and event.change in BACKED_OFF:
        sent[event.change] = (now, following.total_seconds() if following else None)
    for outgoing in outgoing_all:
        notification_id = f"{event.event_id}:{outgoing.team}"
        if not send:
            text = f"held back (repeat within {interval}): {outgoing.text}"
            planned.log.append(_log(notification_id, "suppressed", incident, outgoing, "suppressed", text, now))
            continue
        notification = Notification(
            notification_id=notification_id,
            kind=outgoing.kind,
            team=outgoing.team,
            incident_id=incident.incident_id,
            title=incident.title,
            text=outgoing.text,
            severity=incident.severity.value,
            service=incident.service,
            status=incident.status.value,
            commander=incident.commander,
            category=incident.category.value,
            targets=list(outgoing.targets),
            runbook_url=incident.playbook.runbook_url if incident.playbook else None,
            incident_url=org.incident_url.format(incident_id=incident.incident_id),
            event_id=event.event_id,
            occurred_at=event.occurred_at,
        )
        planned.notifications.append(notification)
        planned.log.append(_log(notification_id, "topic", incident, outgoing, "sent", outgoing.text, now))
        team = org.teams.get(outgoing.team)
        if team is not None and team.webhook is not None:
            planned.webhooks.append(
                WebhookDelivery(notification=notification, url=team.webhook.url, attempt=1, not_before=now)
            )
    planned.record = NotifiedRecord(last_version=event.version, sent=sent, held_since=held_since)
    return planned


def after_failure(delivery: WebhookDelivery, org: Organisation, now: datetime) -> WebhookDelivery | None:
    """The next attempt (exponential back-off), or None when every attempt is spent."""
    team = org.teams.get(delivery.notification.team)
    if team is None or team.webhook is None or delivery.attempt >= team.webhook.max_attempts:
        return None
    delay = team.webhook.backoff * (2 ** (delivery.attempt - 1))
    return delivery.model_copy(update={"attempt": delivery.attempt + 1, "not_before": now + delay})


def response_error(status_code: int) -> tuple[str | None, bool]:
    """(the error, worth retrying?) for a webhook's HTTP answer; no error for a 2xx."""
    if 200 <= status_code < 300:
        return None, False
    # Only a server error, a timeout or a rate limit may heal; a redirect or another 4xx
    # (a revoked hook, a malformed payload) fails the same way every time.
    retryable = status_code >= 500 or status_code in (408, 429)
    return f"HTTP {status_code}", retryable


@dataclass
class Attempted:
    log: CommunicationRecord
    retry: WebhookDelivery | None = None
    dead: WebhookDelivery | None = None


def after_attempt(delivery: WebhookDelivery, error: str | None, retryable: bool, org: Organisation,
                  now: datetime) -> Attempted:
    """What one webhook attempt leads to: logged as sent, failed (retried later) or dead-lettered."""
    if error is None:
        return Attempted(log=webhook_record(delivery, "sent", now))
    following = after_failure(delivery, org, now) if retryable else None
    if following is not None:
        return Attempted(log=webhook_record(delivery, "failed", now, error), retry=following)
    reason = error if retryable else f"{error} (not retried)"
    return Attempted(
        log=webhook_record(delivery, "dead_lettered", now, reason),
        dead=delivery.model_copy(update={"not_before": now, "last_error": reason}),
    )


def webhook_record(delivery: WebhookDelivery, status: str, now: datetime, error: str | None = None) -> CommunicationRecord:
    n = delivery.notification
    return CommunicationRecord(
        record_id=f"{n.notification_id}:webhook:{delivery.attempt}",
        incident_id=n.incident_id,
        channel=f"webhook:{n.team}",
        team=n.team,
        kind=n.kind,
        status=status,
        text=n.text,
        attempt=delivery.attempt,
        error=error,
        notification_id=n.notification_id,
        occurred_at=now,
    )
