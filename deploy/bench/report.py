"""The bench's headline figures (the flat keys of results.json) and its printed table."""
from __future__ import annotations

SERVICE_NAMES = ("ingestion", "triage", "escalation", "notification", "metrics", "recorder")


def headline(results: dict) -> dict:
    intake = results.get("intake", {})
    pipeline = results.get("pipeline", {})
    storm = results.get("storm", {})
    fleet = results.get("fleet", {})
    accounting = results.get("accounting", {})
    rss = results.get("rss_peak_mb", {})
    services = [mb for name, mb in rss.items() if name in SERVICE_NAMES]
    out = {key: intake.get(key) for key in (
        "intake_single_alerts_per_s", "alertmanager_single_alerts_per_s", "intake_single_ratio",
        "intake_batch100_alerts_per_s", "alertmanager_batch100_alerts_per_s", "intake_batch100_ratio")}
    out.update({
        "pipeline_alerts_per_s": pipeline.get("alerts_per_s"),
        "pipeline_correlation_keys": pipeline.get("correlation_keys"),
        "fleet_first_alerts_per_s": fleet.get("first_alerts_per_s"),
        "fleet_last_alerts_per_s": fleet.get("last_alerts_per_s"),
        "fleet_last_over_first": fleet.get("last_over_first"),
        "page_p50_ms": storm.get("page_p50_ms"),
        "page_p99_ms": storm.get("page_p99_ms"),
        "notify_p99_ms": storm.get("notify_p99_ms"),
        "probes_never_opened": storm.get("probes_never_opened"),
        "lost": accounting.get("lost"),
        "double_counted": accounting.get("double_counted"),
        "max_service_rss_mb": max(services) if services else None,
        "cpu_s_per_1000_alerts": pipeline.get("cpu_s_per_1000_alerts"),
        "load": results.get("load"),
    })
    return out


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def table(results: dict) -> str:
    rows = [
        ("intake, 1 alert/request, 16 clients", _fmt(results["intake_single_alerts_per_s"], " alerts/s"),
         f"Alertmanager {_fmt(results['alertmanager_single_alerts_per_s'], ' alerts/s')}, "
         f"ratio {_fmt(results['intake_single_ratio'])}"),
        ("intake, 100 alerts/request, 8 clients", _fmt(results["intake_batch100_alerts_per_s"], " alerts/s"),
         f"Alertmanager {_fmt(results['alertmanager_batch100_alerts_per_s'], ' alerts/s')}, "
         f"ratio {_fmt(results['intake_batch100_ratio'])}"),
        ("pipeline, accepted -> recorded", _fmt(results["pipeline_alerts_per_s"], " alerts/s"),
         f"{_fmt(results['pipeline_correlation_keys'])} correlation keys, "
         f"{_fmt(results.get('pipeline', {}).get('audit_events_per_alert'))} audit events per alert"),
        ("fleet outage, one incident: first / last quarter",
         f"{_fmt(results['fleet_first_alerts_per_s'])} / {_fmt(results['fleet_last_alerts_per_s'])} alerts/s",
         f"last / first {_fmt(results['fleet_last_over_first'])}"),
        ("page: 2xx -> incident.opened", f"p50 {_fmt(results['page_p50_ms'], ' ms')}",
         f"p99 {_fmt(results['page_p99_ms'], ' ms')}; never opened: {_fmt(results['probes_never_opened'])}"),
        ("page: 2xx -> notifications.<team>", f"p99 {_fmt(results['notify_p99_ms'], ' ms')}", ""),
        ("lost / double counted", f"{_fmt(results['lost'])} / {_fmt(results['double_counted'])}",
         f"of {_fmt(results.get('accounting', {}).get('accepted'))} accepted"),
        ("max service RSS", _fmt(results["max_service_rss_mb"], " MB"),
         ", ".join(f"{k} {v:.0f}" for k, v in results.get("rss_peak_mb", {}).items())),
    ]
    for name, seconds in (results.get("cpu_s_per_1000_alerts") or {}).items():
        rows.append((f"CPU s per 1,000 alerts: {name}", _fmt(seconds), "pipeline phase"))
    if "commands" in results:
        rows.append(("API command round trip", f"p50 {_fmt(results['commands']['p50_ms'], ' ms')}",
                     f"p95 {_fmt(results['commands']['p95_ms'], ' ms')}"))
    if "scrapes" in results:
        rows.append(("/metrics scrape", f"p50 {_fmt(results['scrapes']['p50_ms'], ' ms')}",
                     f"p95 {_fmt(results['scrapes']['p95_ms'], ' ms')}"))
    load = results.get("load") or {}
    rows.append(("machine load (1 min)", f"mean {_fmt(load.get('load1_mean'))}",
                 f"min {_fmt(load.get('load1_min'))}, max {_fmt(load.get('load1_max'))}, "
                 f"at start {_fmt(load.get('load1_at_start'))}, {results['machine']['cpus']} cpus"))
    undrained = [d for d in results.get("drains", []) if not d.get("drained")]
    if undrained:
        rows.append(("NOT DRAINED", f"{len(undrained)} drain(s) timed out",
                     "; ".join(f"after {d['after']}: {d.get('unrecorded')} unrecorded" for d in undrained)))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure'.ljust(width)}  {'result':<22}  detail", "-" * (width + 60)]
    lines += [f"{a.ljust(width)}  {b:<22}  {c}" for a, b, c in rows]
    return "\n".join(lines)
