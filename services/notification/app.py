"""Notification: fans incident changes out to notifications.<team> and team webhooks."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import faust
import httpx

from shared import catalogue as cat
from shared.domain.organisation import Organisation
from shared.kafka.faust_app import Lazy, create_app, declare, guarded_agent, table
from shared.kafka.streams import Outbox, decode, key_of, send_model
from shared.kafka.view import whole_topic
from shared.messages import AuditEvent, AuditHead, WebhookDelivery
from shared.settings import Settings

from .handlers import (
    NotifiedRecord,
    after_attempt,
    handle_event,
    response_error,
    slack_payload,
)

log = logging.getLogger("notification")
SERVICE = "notification"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def _new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient()


def build(settings: Settings, org: Organisation) -> faust.App:
    app = create_app(SERVICE, settings)
    n = settings.topic_partitions
    audit = declare(app, cat.INCIDENT_AUDIT, n)
    communications = declare(app, cat.COMMUNICATIONS, n)
    retries = declare(app, cat.WEBHOOK_RETRIES, n)
    webhook_dead = declare(app, cat.NOTIFICATIONS_DEAD_LETTER, n)
    dead = declare(app, cat.DEAD_LETTER, n)
    team_topics = {team: declare(app, cat.team_topic(team), n) for team in org.teams}
    notified = table(app, "notified", n)
    http = Lazy(_new_client, lambda client: client.aclose())
    http.close_on_shutdown(app)
    windows = whole_topic(app, settings, cat.MAINTENANCE_WINDOWS, SERVICE)

    async def notify(event) -> None:
        message = await decode(event, AuditHead, dead, SERVICE)
        if message is None or message.only_an_alert:
            return  # alerts attaching to an incident notify nobody (an alert storm would flood)
        message = AuditEvent.model_validate_json(event.value)
        key = key_of(event)
        record = NotifiedRecord.model_validate(notified.get(key) or {})
        if message.change in ("opened", "reopened"):
            await windows.sync()  # an opening is held by a window created just before it
        planned = handle_event(record, message, org, utcnow(), windows.values())
        if planned.duplicate:
            return
        outbox = Outbox()
        for notification in planned.notifications:
            topic = team_topics.get(notification.team)
            if topic is None:
                # A team removed from the configuration since the incident opened: the
                # other teams are still told, and the log keeps the message.
                log.error("no topic for team %r (not in the configuration)", notification.team)
                continue
            await outbox.send(topic, key, notification)
        for delivery in planned.webhooks:
            await outbox.send(retries, key, delivery)
        for entry in planned.log:
            await outbox.send(communications, key, entry)
        await outbox.confirm()
        notified[key] = planned.record.model_dump(mode="json")

    async def deliver(event) -> None:
        """Post to team webhooks; failures come back here later, then go to the dead-letter topic."""
        delivery = await decode(event, WebhookDelivery, dead, SERVICE)
        if delivery is None:
            return
        key = key_of(event)
        wait = (delivery.not_before - utcnow()).total_seconds()
        if wait > 0:
            await asyncio.sleep(min(wait, 300.0))  # back-off before the next attempt
        team = org.teams.get(delivery.notification.team)
        timeout = team.webhook.timeout.total_seconds() if team and team.webhook else 5.0
        try:
            response = await (await http.get()).post(delivery.url, json=slack_payload(delivery.notification),
                                                  timeout=timeout)
            error, retryable = response_error(response.status_code)
        except httpx.HTTPError as exc:  # refused, timed out, reset: worth another attempt
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            retryable = True
        attempted = after_attempt(delivery, error, retryable, org, utcnow())
        await send_model(communications, key, attempted.log)
        if attempted.retry is not None:
            await send_model(retries, key, attempted.retry)
        if attempted.dead is not None:
            await send_model(webhook_dead, key, attempted.dead)
            log.warning("webhook for %s dead-lettered after %s attempts: %s",
                        delivery.notification.incident_id, delivery.attempt, attempted.dead.last_error)


    guarded_agent(app, audit, notify, dead, SERVICE)
    guarded_agent(app, retries, deliver, dead, SERVICE)
    return app
