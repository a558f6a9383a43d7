"""The export file (damage and truncation are detected) and what export and replay refuse, without a broker.

The broker and PostgreSQL are replaced by fakes that record what would have been written."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import TopicPartition

from services.repartition import broker, document, export as export_module, replay as replay_module
from services.repartition.checks import Group, Refused, behind, not_empty, target_problems, unwritten
from services.repartition.document import DocumentError, Export
from shared.settings import Settings

UNREACHABLE = {"kafka_bootstrap": "127.0.0.1:9", "database_url": "postgresql://nobody@127.0.0.1:9/none"}


def sample() -> Export:
    return Export(source_partitions=4, app_prefix="incident", exported_at="20261202T150000Z",
                  tables={"triage.incidents": {"INC-1": {"applied_offset": 5, "positions": {"x:0": 1}}},
                          "metrics.partition_counts": {"alerts.intake:0": {"offset": 9, "counts": {"c": 10}}}},
                  topics={"oncall.overrides": {"ovr-1": '{"override_id": "ovr-1"}'}, "maintenance.windows": {}})


def test_an_export_reads_back_as_written():
    data = document.encode(sample())
    assert document.decode(data) == sample()
    assert json.loads(data.splitlines()[0])["source_partitions"] == 4


def test_a_file_cut_anywhere_is_refused():
    data = document.encode(sample())
    for cut in range(len(data)):
        with pytest.raises(DocumentError, match="truncated|damaged"):
            document.decode(data[:cut])


def test_a_file_changed_anywhere_is_refused():
    data = document.encode(sample())
    body_end = data.rfind(b"\n", 0, len(data) - 1)
    for at in range(0, body_end, 7):
        changed = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]
        with pytest.raises(DocumentError, match="damaged|truncated"):
            document.decode(changed)
    lines = data.splitlines(keepends=True)
    with pytest.raises(DocumentError, match="damaged"):
        document.decode(b"".join(lines[:2] + lines[3:]))  # a record left out, the trailer kept


def test_a_file_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "state.jsonl"
    document.write(path, sample())
    assert document.read(path) == sample()
    assert [p.name for p in tmp_path.iterdir()] == ["state.jsonl"]
    with pytest.raises(DocumentError, match="cannot be read"):
        document.read(tmp_path / "missing.jsonl")


def test_lag_is_named_by_group_topic_partition_and_amount():
    tp = TopicPartition("alerts.intake", 2)
    groups = [Group("incident-triage", 0, {tp: 10}), Group("incident-metrics", 1, {})]
    reads = {"incident-triage": frozenset({"alerts.intake"}), "incident-metrics": frozenset({"alerts.intake"})}
    starts = {TopicPartition("alerts.intake", p): 0 for p in range(4)}
    ends = {**{TopicPartition("alerts.intake", p): 0 for p in range(4)}, tp: 15}
    problems = behind(groups, reads, {"alerts.intake": 4}, starts, ends)
    assert problems == [
        "consumer group incident-metrics still has 1 member(s): stop every service first",
        "consumer group incident-triage is 5 message(s) behind on alerts.intake partition 2 (committed 10, end 15)",
        "consumer group incident-metrics is 15 message(s) behind on alerts.intake partition 2 (committed nothing,"
        " end 15)",
    ]
    # Caught up, or nothing left to read since retention removed it: nothing to say.
    assert behind([Group("incident-triage", 0, {tp: 15})], reads, {"alerts.intake": 4}, starts, ends) == []
    assert behind([Group("incident-triage", 0, {})], reads, {"alerts.intake": 4}, {**starts, tp: 15}, ends) == []


def test_target_problems_name_missing_topics_and_wrong_counts():
    problems = target_problems({"a": 8, "b": 8, "c": 1}, {"a": 8, "b": 4, "c": None}, 8)
    assert problems[0] == "b has 4 partitions, not 8"
    assert problems[1].startswith("c is missing (create the topics first: TOPIC_PARTITIONS=8")
    assert not_empty({TopicPartition("a", 0): 0, TopicPartition("a", 1): 3})[0].startswith("a is not empty (3 record")
    assert unwritten({TopicPartition("a", 1): 3}, {TopicPartition("a", 1): 2}) == [
        "a partition 1 ends at 2, 3 record(s) were written"]


def test_replay_refuses_a_damaged_file_before_touching_anything(tmp_path, org):
    path = tmp_path / "state.jsonl"
    path.write_bytes(document.encode(sample())[:-5])
    with pytest.raises(Refused, match="truncated.*nothing was written"):
        asyncio.run(replay_module.replay(Settings(**UNREACHABLE, topic_partitions=8, data_dir=tmp_path), org, path))


def test_replay_refuses_fewer_partitions_than_the_export_had(tmp_path, org):
    path = tmp_path / "state.jsonl"
    document.write(path, sample())
    with pytest.raises(Refused, match="TOPIC_PARTITIONS=2 is fewer than the export's 4"):
        asyncio.run(replay_module.replay(Settings(**UNREACHABLE, topic_partitions=2, data_dir=tmp_path), org, path))


def test_replay_refuses_a_table_it_has_no_rule_for():
    export = sample()
    export.tables["triage.something_new"] = {"k": {}}
    with pytest.raises(Refused, match="triage.something_new"):
        replay_module.planned(export, {}, {"oncall.overrides": 1, "maintenance.windows": 1}, 8)


class FakeCluster:
    """Every platform topic with ``partitions`` partitions, ``full`` of them holding records."""

    def __init__(self, monkeypatch, partitions: int, full: set[str] = frozenset()) -> None:
        self.partitions, self.full = partitions, full
        self.events: list[str] = []
        self.written: list = []
        monkeypatch.setattr(broker, "partition_counts", self.partition_counts)
        monkeypatch.setattr(broker, "offsets", self.offsets)
        monkeypatch.setattr(broker, "write", self.write)
        monkeypatch.setattr(replay_module.asyncpg, "connect", self.connect)
        monkeypatch.setattr(replay_module, "set_aside_openings", self.set_aside)

    async def partition_counts(self, bootstrap, topics):
        return {t: 1 if t in ("oncall.overrides", "maintenance.windows") or t.endswith("__leader") else self.partitions
                for t in topics}

    async def offsets(self, bootstrap, partitions):
        ends = {tp: (2 if tp.topic in self.full else 0) for tp in partitions}
        if self.written:
            for topic, partition, _, _ in self.written:
                ends[TopicPartition(topic, partition)] += 1
        return {tp: 0 for tp in partitions}, ends

    async def write(self, bootstrap, records):
        self.events.append("kafka")
        self.written = list(records)

    async def connect(self, url):
        class Conn:
            async def close(self):
                pass
        return Conn()

    async def set_aside(self, conn, moved_at):
        self.events.append(f"postgres moved-{moved_at}")
        return 3


def test_replay_sets_old_openings_aside_in_postgresql_before_writing_to_kafka(tmp_path, org, monkeypatch):
    fake = FakeCluster(monkeypatch, 8)
    path = tmp_path / "state.jsonl"
    document.write(path, sample())
    done = asyncio.run(replay_module.replay(Settings(**UNREACHABLE, topic_partitions=8, data_dir=tmp_path), org, path))
    assert fake.events == ["postgres moved-20261202T150000Z", "kafka"]
    assert (done.records, done.partitions, done.source_partitions, done.openings_set_aside) == (3, 8, 4, 3)
    by_topic = {topic: (partition, json.loads(value)) for topic, partition, _, value in fake.written}
    assert by_topic["incident-triage-incidents-changelog"][1]["applied_offset"] == -1
    assert by_topic["incident-metrics-partition_counts-changelog"] == (0, {"offset": -1, "counts": {"c": 10}})
    assert by_topic["oncall.overrides"] == (0, {"override_id": "ovr-1"})


@pytest.mark.parametrize("partitions,full,why", [
    (8, {"incident-triage-incidents-changelog"}, "incident-triage-incidents-changelog is not empty"),
    (4, set(), "has 4 partitions, not 8"),
])
def test_replay_onto_a_used_or_wrong_target_writes_nothing(tmp_path, org, monkeypatch, partitions, full, why):
    fake = FakeCluster(monkeypatch, partitions, full)
    path = tmp_path / "state.jsonl"
    document.write(path, sample())
    with pytest.raises(Refused, match=why):
        asyncio.run(replay_module.replay(Settings(**UNREACHABLE, topic_partitions=8, data_dir=tmp_path), org, path))
    assert fake.events == []


def test_export_refuses_while_a_group_is_behind_and_writes_no_file(tmp_path, org, monkeypatch):
    async def counts(bootstrap, topics):
        return {t: 1 if t in ("oncall.overrides", "maintenance.windows") else 4 for t in topics}

    async def offsets(bootstrap, partitions):
        return {tp: 0 for tp in partitions}, {tp: (7 if tp == TopicPartition("incident.audit", 1) else 0)
                                              for tp in partitions}

    async def groups(bootstrap, ids):
        return [Group(g, 0, {}) for g in ids]

    async def latest(bootstrap, topics):
        raise AssertionError("read the changelogs although a group is behind")

    for name, fake in (("partition_counts", counts), ("offsets", offsets), ("groups", groups), ("latest", latest)):
        monkeypatch.setattr(broker, name, fake)
    path = tmp_path / "state.jsonl"
    with pytest.raises(Refused) as refused:
        asyncio.run(export_module.export(Settings(**UNREACHABLE, data_dir=tmp_path), org, path))
    assert "consumer group incident-recorder is 7 message(s) behind on incident.audit partition 1" in str(refused.value)
    assert not path.exists()
