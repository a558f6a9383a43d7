"""The Prometheus exporter: metric values computed from the durable tables at scrape time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.domain import metrics as defs
from shared.domain.organisation import Organisation, Severity
from shared.domain.visibility import RESTRICTED

SEVERITIES = [s.value for s in Severity]

COUNTERS = {
    "incidents_opened_total": ("Incidents opened, by severity at opening and service", ["severity", "service"]),
    "incidents_acknowledged_total": ("Acknowledgements (a reopened incident is acknowledged again)", ["severity"]),
    "incidents_resolved_total": ("Times incidents were resolved", ["severity"]),
    "incidents_closed_total": ("Times incidents were closed", ["severity"]),
    "incidents_reopened_total": ("Times incidents were reopened", ["severity"]),
    "escalations_total": ("Escalation levels paged", ["team"]),
    "escalation_failures_total": ("Escalations that ran out of levels with nobody acknowledging", ["team"]),
    "mttr_target_breaches_total": ("Open incidents that passed their severity's MTTR target", ["severity"]),
    "notifications_sent_total": ("Notifications delivered (team topic or webhook)", ["team", "channel"]),
    "notifications_failed_total": ("Webhook attempts that failed, including the last one (dead-lettered)", ["team", "channel"]),
    "alerts_received_total": ("Alerts on the intake topic", ["integration"]),
    "alerts_deduplicated_total": ("Alerts that attached to an incident already open for them", ["service"]),
    "alerts_rejected_total": ("Alerts on the intake path that could not be processed (dead-lettered)", ["reason"]),
    "postmortem_reminders_total": ("Reminders sent for overdue postmortems", ["team"]),
}


def _strip_total(name: str) -> str:
    # prometheus_client appends _total to counter names itself.
    return name[: -len("_total")] if name.endswith("_total") else name


def _gauge(name: str, help_: str, values: dict[str, float]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_, labels=["severity"])
    for severity, value in sorted(values.items()):
        family.add_metric([severity], value)
    return family


class IncidentCollector(Collector):
    def __init__(
        self,
        org: Organisation,
        facts: Callable[[], Iterable[defs.IncidentFacts]],
        counts: Callable[[], Iterable[dict[str, int]]],
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        pings: Callable[[], dict[str, datetime]] = dict,
    ) -> None:
        self._org, self._facts, self._counts, self._clock = org, facts, counts, clock
        self._pings = pings

    def describe(self):
        return []

    def collect(self):
        now, window = self._clock(), self._org.metrics_window
        facts = list(self._facts())
        days = f"{window.total_seconds() / 86400:g}d"

        mttr = defs.mttr_minutes(facts, now, window)
        yield _gauge("mttr_minutes", f"Mean minutes from detection to latest resolution, incidents resolved in the last {days}",
                     {sev: round(mean, 4) for sev, (mean, _) in mttr.items()})
        yield _gauge("mttr_incidents", "Incidents counted in mttr_minutes", {sev: n for sev, (_, n) in mttr.items()})
        yield _gauge("incidents_over_mttr_target", "Of the incidents counted in mttr_minutes, those resolved later than their target",
                     {sev: defs.over_mttr_target(facts, now, window).get(sev, 0) for sev in mttr})
        yield _gauge("mttr_target_minutes", "The configured MTTR target per severity",
                     {sev.value: target.total_seconds() / 60.0 for sev, target in self._org.mttr_targets.items()})

        reopen = defs.reopen_rate(facts, now, window)
        yield _gauge("reopen_rate", f"Share of the incidents first resolved in the last {days} that were reopened since",
                     {sev: round(rate, 6) for sev, (rate, _) in reopen.items()})
        yield _gauge("reopen_rate_incidents", "Incidents counted in reopen_rate", {sev: n for sev, (_, n) in reopen.items()})

        stats = defs.postmortem_stats(facts, now, window)
        yield GaugeMetricFamily("postmortem_completion_rate",
                                "Completed / (completed + overdue) required postmortems created in the window; 1 when none is due",
                                value=stats.completion_rate)
        yield GaugeMetricFamily("postmortems_required", "Required postmortems created in the window", value=stats.required)
        yield GaugeMetricFamily("postmortems_completed", "Of those, completed", value=stats.completed)
        yield GaugeMetricFamily("postmortems_overdue", "Of those, past their due date and not completed", value=stats.overdue)

        open_ = defs.open_incidents(facts)
        yield _gauge("incidents_open", "Incidents triggered, acknowledged or mitigating now",
                     {sev: open_.get(sev, 0) for sev in SEVERITIES})
        tta = defs.time_to_acknowledge(facts, now, window)
        yield _gauge("time_to_acknowledge_minutes", "Mean minutes from opening to first acknowledgement, acknowledged in the window",
                     {sev: round(mean, 4) for sev, (mean, _) in tta.items()})

        yield from self._heartbeats(now)
        yield from self._counters()

    def _heartbeats(self, now: datetime):
        """Seconds since each configured heartbeat's last ping (none before its first), and its limit."""
        pings = self._pings()
        age = GaugeMetricFamily("heartbeat_last_ping_age_seconds", "Seconds since the heartbeat was last pinged",
                                labels=["name"])
        timeout = GaugeMetricFamily("heartbeat_timeout_seconds",
                                    "The heartbeat's interval plus grace: silence longer than this is a missed beat",
                                    labels=["name"])
        for name, beat in sorted(self._org.heartbeats.items()):
            timeout.add_metric([name], beat.timeout.total_seconds())
            if name in pings:
                age.add_metric([name], round(max(0.0, (now - pings[name]).total_seconds()), 3))
        yield age
        yield timeout

    def _counters(self):
        families = {name: CounterMetricFamily(_strip_total(name), help_, labels=labels)
                    for name, (help_, labels) in COUNTERS.items()}
        totals = {key: 0 for key in known_series(self._org)}
        for key, total in defs.counter_totals(self._counts()).items():
            if key[0] in families:
                totals[key] = totals.get(key, 0) + total
        for (name, labels), total in sorted(totals.items()):
            values = dict(labels)
            families[name].add_metric([values.get(label, "") for label in COUNTERS[name][1]], total)
        yield from families.values()


def known_series(org: Organisation) -> list[tuple[str, defs.Labels]]:
    """Counter series exported as 0 before their first event: increase() in an alert rule
    sees nothing when a series is born at 1, so the first escalation failure would not alert."""
    series: list[tuple[str, defs.Labels]] = []
    for severity in SEVERITIES:
        sev = ("severity", severity)
        series += [(name, (sev,)) for name in (
            "incidents_acknowledged_total", "incidents_resolved_total", "incidents_closed_total",
            "incidents_reopened_total", "mttr_target_breaches_total")]
        series += [("incidents_opened_total", (sev, ("service", service))) for service in [*org.services, RESTRICTED]]
    for team_name, team in org.teams.items():
        t = ("team", team_name)
        series += [(name, (t,)) for name in ("escalations_total", "escalation_failures_total", "postmortem_reminders_total")]
        series.append(("notifications_sent_total", (t, ("channel", "kafka"))))
        if team.webhook is not None:
            series += [(name, (t, ("channel", "webhook"))) for name in ("notifications_sent_total", "notifications_failed_total")]
    series += [("alerts_deduplicated_total", (("service", service),)) for service in [*org.services, RESTRICTED]]
    series += [("alerts_rejected_total", (("reason", reason),)) for reason in ("invalid message", "processing failed")]
    return series
