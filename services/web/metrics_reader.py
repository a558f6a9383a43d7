"""Numbers at a glance, read from the metrics exporter's /metrics (the same numbers Prometheus sees)."""
from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

WANTED = {
    "mttr_minutes", "mttr_target_minutes", "mttr_incidents", "reopen_rate", "reopen_rate_incidents",
    "postmortem_completion_rate", "postmortems_required", "postmortems_completed", "postmortems_overdue",
    "incidents_open",
}


@dataclass
class Numbers:
    by_severity: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> severity -> value
    plain: dict[str, float] = field(default_factory=dict)
    problem: str | None = None

    def severity(self, metric: str, severity: str) -> float | None:
        return self.by_severity.get(metric, {}).get(severity)


def parse(text: str) -> Numbers:
    numbers = Numbers()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in WANTED:
                continue
            severity = sample.labels.get("severity")
            if severity is None:
                numbers.plain[sample.name] = sample.value
            else:
                numbers.by_severity.setdefault(sample.name, {})[severity] = sample.value
    return numbers


async def read_numbers(http: httpx.AsyncClient, url: str, include_restricted: bool) -> Numbers:
    """The numbers this user may see: without restricted incidents unless their role may read them
    (the metrics service leaves them out when asked; its visibility rule is shared/domain/visibility.py)."""
    params = {} if include_restricted else {"restricted": "exclude"}
    try:
        response = await http.get(url, params=params, timeout=2.0)
    except httpx.HTTPError as exc:
        return Numbers(problem=f"the metrics service cannot be reached ({type(exc).__name__})")
    if response.status_code != 200:
        # 503 while the metrics service replays its tables after a restart.
        return Numbers(problem=f"the metrics service answered {response.status_code}; try again in a moment")
    return parse(response.text)
