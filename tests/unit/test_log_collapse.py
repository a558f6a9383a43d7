"""The filter that collapses repeated log lines (shared/log_collapse.py), on a fake clock."""
from __future__ import annotations

import io
import logging

from shared.log_collapse import CollapseRepeats, install, kind_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str = "aiokafka.consumer.group_coordinator", burst: int = 3, window: float = 30.0):
    clock = Clock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(CollapseRepeats(handler.handle, burst=burst, window=window, clock=clock))
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream, clock, handler


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_a_flood_of_one_kind_is_the_first_lines_a_notice_and_one_count_per_window():
    logger, stream, clock, _ = _logger()
    for i in range(100_000):
        logger.warning("OffsetCommit failed for group %s due to group error (%s), will retry", "g", "GroupLoad")
        clock.now += 0.0002  # 100,000 lines in 20 s
    clock.now += 15.0  # the window of the flood is over: the next record brings the count
    logger.info("Kafka producer back after 20.0s")
    lines = _lines(stream)
    assert len(lines) == 6, lines
    assert lines[:2] == ["WARNING aiokafka.consumer.group_coordinator: OffsetCommit failed for group g due to group "
                         "error (GroupLoad), will retry"] * 2
    assert "the next line repeats (3 times within 30s)" in lines[2]
    assert "99997 more lines like this in 35s (collapsed): OffsetCommit failed for group g" in lines[4]
    assert lines[4].startswith("WARNING aiokafka.consumer.group_coordinator: ")
    assert lines[5].endswith("Kafka producer back after 20.0s")


def test_lines_that_differ_only_in_numbers_are_one_kind_and_other_kinds_pass():
    logger, stream, clock, _ = _logger(burst=2)
    for offset in range(50):
        logger.warning(f"offsets {offset}..{offset + 10} skipped by the fetch loop")
    logger.error("something else entirely")
    lines = _lines(stream)
    assert [line.split(": ", 1)[1] for line in lines if "repeats" not in line] == [
        "offsets 0..10 skipped by the fetch loop", "offsets 1..11 skipped by the fetch loop",
        "something else entirely"]
    clock.now += 31
    logger.error("something else entirely")
    assert "48 more lines like this in 31s (collapsed): offsets 2..12 skipped by the fetch loop" in stream.getvalue()


def test_a_kind_is_logger_level_and_template():
    def record(name, level, msg):
        return logging.LogRecord(name, level, "", 0, msg, None, None)

    assert kind_of(record("a", logging.INFO, "took 12 ms")) == kind_of(record("a", logging.INFO, "took 7 ms"))
    assert kind_of(record("a", logging.INFO, "x")) != kind_of(record("b", logging.INFO, "x"))
    assert kind_of(record("a", logging.INFO, "x")) != kind_of(record("a", logging.WARNING, "x"))


def test_only_the_first_line_of_a_kind_keeps_its_traceback():
    logger, stream, _, _ = _logger()
    for _ in range(3):
        try:
            raise ConnectionRefusedError("broker away")
        except ConnectionRefusedError:
            logger.exception("Unable to connect")
    assert stream.getvalue().count("Traceback") == 1


def test_a_quiet_kind_starts_afresh_and_nothing_is_counted_when_nothing_was_suppressed():
    logger, stream, clock, handler = _logger()
    logger.info("probe sent")
    clock.now += 40
    logger.info("probe sent")
    handler.filters[0].flush()
    assert _lines(stream) == ["INFO aiokafka.consumer.group_coordinator: probe sent"] * 2


def test_install_puts_one_filter_on_each_root_handler_once():
    root = logging.Logger("root-under-test")
    first, second = logging.StreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())
    root.handlers = [first, second]
    install(root)
    install(root)
    assert [len([f for f in h.filters if isinstance(f, CollapseRepeats)]) for h in root.handlers] == [1, 1]


def test_summaries_format_under_faust_s_formatter_even_with_a_percent_sign():
    from mode.utils.logging import ExtensionFormatter

    logger, stream, clock, handler = _logger(burst=1)
    handler.setFormatter(ExtensionFormatter(stream=stream, fmt="%(levelname)s %(message)s"))
    for _ in range(5):
        logger.warning("disk %s%% full", 99)
    clock.now += 31
    handler.filters[0].flush()
    assert "4 more lines like this in 31s (collapsed): disk 99% full" in stream.getvalue()


def test_distinct_lines_of_one_template_stay_distinct():
    logger, stream, _, _ = _logger(burst=1)
    for name in ("001_initial.sql", "002_alert_references.sql", "003_oncall.sql"):
        logger.info("applied migration %s", name)
    for took in (0.105, 0.2, 0.37):
        logger.info("producer flush took %s", took)
    assert stream.getvalue().count("applied migration") == 3
    assert stream.getvalue().count("producer flush took") == 1
