"""An outage told as changes of state (shared/outage.py)."""
from __future__ import annotations

from shared.outage import Outage


def test_an_outage_is_one_line_down_one_every_ten_seconds_and_one_back():
    outage = Outage("Kafka broker (ingestion)", every=10.0)
    lines = [outage.failed(100.0 + i * 0.5, "connection refused") for i in range(41)]  # 20 s of attempts
    told = [line for line in lines if line]
    assert told == [
        "Kafka broker (ingestion) unavailable: connection refused",
        "Kafka broker (ingestion) still unavailable after 10s (21 attempts), retrying: connection refused",
        "Kafka broker (ingestion) still unavailable after 20s (41 attempts), retrying: connection refused",
    ]
    assert outage.down
    assert outage.recovered(121.5, "a fresh producer") == (
        "Kafka broker (ingestion) back after 21.5s (41 failed attempts): a fresh producer")
    assert not outage.down and outage.recovered(122.0) is None


def test_a_second_outage_counts_afresh():
    outage = Outage("broker")
    outage.failed(0.0, "x")
    outage.recovered(1.0)
    assert outage.failed(50.0, "y") == "broker unavailable: y"
    assert outage.recovered(52.0) == "broker back after 2.0s (1 failed attempts)"
