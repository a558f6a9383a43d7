"""Jinja2 templates and how the console writes times: in the viewer's zone, UTC on hover."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).with_name("templates")
TZ_COOKIE = "tz"  # set by console.js from the browser's Intl time zone


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def span(seconds: float) -> str:
    """A duration as people say it: 45s, 12m, 3h 05m, 2d 4h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


class Times:
    """Times for one viewer: rendered in their zone, with the UTC time as the hover title."""

    def __init__(self, zone_name: str | None, now: datetime | None = None) -> None:
        try:
            self.zone = ZoneInfo(zone_name) if zone_name else timezone.utc
        except (ZoneInfoNotFoundError, ValueError):
            self.zone = timezone.utc
        self.zone_name = zone_name if self.zone is not timezone.utc else "UTC"
        self.now = now or datetime.now(timezone.utc)

    def when(self, value, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
        at = parse_time(value)
        if at is None:
            return Markup("—")
        utc = at.astimezone(timezone.utc)
        local = at.astimezone(self.zone)
        label = local.strftime(fmt) + ("" if self.zone_name == "UTC" else f" {local.tzname()}")
        return Markup('<time datetime="{iso}" title="{utc} UTC">{label}</time>').format(
            iso=utc.isoformat(), utc=utc.strftime("%Y-%m-%d %H:%M:%S"), label=label
        )

    def since(self, value) -> Markup:
        """How long ago, kept ticking by console.js."""
        at = parse_time(value)
        if at is None:
            return Markup("—")
        return Markup('<span class="ticking" data-since="{iso}" title="since {utc} UTC">{text}</span>').format(
            iso=at.astimezone(timezone.utc).isoformat(), utc=at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            text=span((self.now - at).total_seconds()),
        )

    def minutes(self, value: float | None) -> str:
        return "—" if value is None else span(value * 60)

    def elapsed_minutes(self, value) -> float | None:
        at = parse_time(value)
        return None if at is None else (self.now - at).total_seconds() / 60


def http_url(value: str | None) -> str:
    """Links from alerts and people are shown only when they are http(s): never javascript:."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) else "#"


def templates() -> Jinja2Templates:
    engine = Jinja2Templates(directory=str(TEMPLATES))
    engine.env.globals["span"] = span
    engine.env.filters["http_url"] = http_url
    engine.env.filters["label"] = lambda value: escape(str(value).replace("_", " "))
    return engine


def times_for(request: Request) -> Times:
    return Times(unquote(request.cookies.get(TZ_COOKIE) or ""))
