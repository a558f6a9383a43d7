"""Human durations in configuration: parse and format."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("72h", timedelta(hours=72)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("5m5s", timedelta(minutes=5, seconds=5)),
        ("1m500ms", timedelta(minutes=1, milliseconds=500)),
        ("0s", timedelta(0)),
        (" 5 m ", timedelta(minutes=5)),
        ("45", timedelta(seconds=45)),
        ("1.5", timedelta(seconds=1.5)),
        (30, timedelta(seconds=30)),
        (0, timedelta(0)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(hours=3), timedelta(hours=3)),
    ],
)
def test_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "5x", "m", "h5", "-5m", "5m-", "1.5h", "5M", "five minutes", "5m 3", "1..5", "ms", "5mm"],
)
def test_parse_rejects_bad_text(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_error_explains_the_form():
    with pytest.raises(ValueError, match=r"not a duration: '5x' \(use forms like 30s, 5m, 72h, 30d\)"):
        parse_duration("5x")
    with pytest.raises(ValueError, match="empty duration"):
        parse_duration(" ")


@pytest.mark.parametrize("number", [-1, -0.5])
def test_parse_rejects_negative_numbers(number):
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(number)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=1), "1d"),
        (timedelta(days=30), "30d"),
        (timedelta(weeks=1), "7d"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=25), "25h"),
        (timedelta(hours=72), "3d"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=90), "90s"),
        (timedelta(seconds=1), "1s"),
        (timedelta(0), "0s"),
    ],
)
def test_format(value, text):
    assert format_duration(value) == text


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 3600, 3660, 86399, 86400, 90000, 7 * 86400])
def test_format_then_parse_round_trips(seconds):
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
