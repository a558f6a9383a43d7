"""The Prometheus exporter: metric values computed from the durable tables at scrape time."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.domain import metrics as defs
from shared.domain.organisation import Organisation

COUNTERS = {
    "incidents_opened_total": ("Incidents opened", ["severity", "service"]),
    "incidents_acknowledged_total": ("Incidents acknowledged", ["severity"]),
    "incidents_resolved_total": ("Times incidents were resolved", ["severity"]),
    "incidents_closed_total": ("Incidents closed", ["severity"]),
    "incidents_reopened_total": ("Times incidents were reopened", ["severity"]),
    "escalations_total": ("Escalation levels paged", ["team"]),
    "escalation_failures_total": ("Escalations that ran out of levels with nobody acknowledging", ["team"]),
    "mttr_target_breaches_total": ("Incidents that stayed open past their severity's MTTR target", ["severity"]),
    "notifications_sent_total": ("Notifications delivered, by channel type", ["team", "channel"]),
    "notifications_failed_total": ("Notification attempts that failed (webhook errors, dead letters)", ["team", "channel"]),
    "alerts_received_total": ("Alerts accepted onto the intake topic", ["integration"]),
    "alerts_deduplicated_total": ("Alerts that attached to an incident already open for them", ["service"]),
    "alerts_rejected_total": ("Alerts on the intake path that could not be processed (dead-lettered)", ["reason"]),
    "postmortem_reminders_total": ("Reminders sent for overdue postmortems", ["team"]),
}


def _strip_total(name: str) -> str:
    # prometheus_client appends _total to counter names itself.
    return name[: -len("_total")] if name.endswith("_total") else name


class IncidentCollector(Collector):
    def __init__(
        self,
        org: Organisation,
        facts: Callable[[], Iterable[defs.IncidentFacts]],
        counters: Callable[[], Iterable[tuple[str, float]]],
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._org, self._facts, self._counters, self._clock = org, facts, counters, clock

    def describe(self):
        return []

    def collect(self):
        now = self._clock()
        window = self._org.metrics_window
        facts = list(self._facts())

        mttr = GaugeMetricFamily("mttr_minutes", "Mean minutes from detection to resolution, incidents resolved in the window", labels=["severity"])
        mttr_count = GaugeMetricFamily("mttr_incidents", "Incidents counted in mttr_minutes", labels=["severity"])
        for severity, (mean, count) in sorted(defs.mttr_minutes(facts, now, window).items()):
            mttr.add_metric([severity], round(mean, 3))
            mttr_count.add_metric([severity], count)
        yield mttr
        yield mttr_count

        reopen = GaugeMetricFamily("reopen_rate", "Share of incidents first resolved in the window that were reopened", labels=["severity"])
        for severity, (rate, _) in sorted(defs.reopen_rate(facts, now, window).items()):
            reopen.add_metric([severity], round(rate, 6))
        yield reopen

        stats = defs.postmortem_stats(facts, now, window)
        yield GaugeMetricFamily("postmortem_completion_rate", "Completed / (completed + overdue) required postmortems created in the window", value=stats.completion_rate)
        yield GaugeMetricFamily("postmortems_required", "Required postmortems created in the window", value=stats.required)
        yield GaugeMetricFamily("postmortems_completed", "Of those, completed", value=stats.completed)
        yield GaugeMetricFamily("postmortems_overdue", "Of those, past their due date and not completed", value=stats.overdue)

        open_ = GaugeMetricFamily("incidents_open", "Incidents triggered, acknowledged or mitigating", labels=["severity"])
        counts = defs.open_incidents(facts)
        for severity in ("SEV1", "SEV2", "SEV3", "SEV4"):
            open_.add_metric([severity], counts.get(severity, 0))
        yield open_

        tta = GaugeMetricFamily("time_to_acknowledge_minutes", "Mean minutes from opening to acknowledgement, acknowledged in the window", labels=["severity"])
        for severity, (mean, _) in sorted(defs.time_to_acknowledge(facts, now, window).items()):
            tta.add_metric([severity], round(mean, 3))
        yield tta

        targets = GaugeMetricFamily("mttr_target_minutes", "The configured MTTR target per severity", labels=["severity"])
        for severity, target in sorted(self._org.mttr_targets.items(), key=lambda kv: kv[0].value):
            targets.add_metric([severity.value], target.total_seconds() / 60.0)
        yield targets

        families = {name: CounterMetricFamily(_strip_total(name), help_, labels=labels) for name, (help_, labels) in COUNTERS.items()}
        totals: dict[tuple[str, tuple[str, ...]], float] = {}
        for key, value in self._counters():
            name, labels = parse_counter_key(key)
            if name not in families:
                continue
            wanted = COUNTERS[name][1]
            values = tuple(labels.get(label, "") for label in wanted)
            totals[(name, values)] = totals.get((name, values), 0.0) + value
        for (name, values), total in sorted(totals.items()):
            families[name].add_metric(list(values), total)
        yield from families.values()


def counter_key(name: str, labels: Iterable[tuple[str, str]], stream: str) -> str:
    """One table key per (counter, labels, source partition): each key has a single writer."""
    rendered = ",".join(f"{k}={v}" for k, v in labels)
    return f"{name}|{rendered}|{stream}"


def parse_counter_key(key: str) -> tuple[str, dict[str, str]]:
    name, rendered, _ = key.split("|", 2)
    labels = dict(part.split("=", 1) for part in rendered.split(",") if part)
    return name, labels
