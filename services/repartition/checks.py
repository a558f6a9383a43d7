"""What export and replay refuse, as sentences (pure: the broker's answers in, problems out).

A move is refused rather than half done: every problem found is named, and nothing is
written while there is one.
"""
from __future__ import annotations

from dataclasses import dataclass

from aiokafka import TopicPartition


class Refused(SystemExit):
    """The move cannot go on: the message says why and what to do. Exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Group:
    group_id: str
    members: int
    committed: dict[TopicPartition, int]


def behind(groups: list[Group], reads: dict[str, frozenset[str]], counts: dict[str, int | None],
           starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]) -> list[str]:
    """Groups still running, and every partition a group reads whose messages it has not all
    committed (a partition it never committed counts from its first offset)."""
    problems = [f"consumer group {g.group_id} still has {g.members} member(s): stop every service first"
                for g in groups if g.members]
    for group in groups:
        for topic in sorted(reads.get(group.group_id, ())):
            for partition in range(counts.get(topic) or 0):
                tp = TopicPartition(topic, partition)
                done = group.committed.get(tp, -1)
                lag = ends[tp] - max(done, starts[tp])
                if lag > 0:
                    problems.append(f"consumer group {group.group_id} is {lag} message(s) behind on {topic} partition"
                                    f" {partition} (committed {done if done >= 0 else 'nothing'}, end {ends[tp]})")
    return problems


def one_count(counts: dict[str, int | None]) -> int:
    """The partition count every changelog shares (the export's source count)."""
    missing = sorted(topic for topic, n in counts.items() if n is None)
    if missing:
        raise Refused(f"export refused: no such changelog: {', '.join(missing)}")
    found = sorted(set(counts.values()))
    if len(found) != 1:
        raise Refused("export refused: the changelogs have different partition counts: "
                      + ", ".join(f"{topic} {n}" for topic, n in sorted(counts.items())))
    return found[0]


def target_problems(expected: dict[str, int], found: dict[str, int | None], partitions: int) -> list[str]:
    """Every platform topic exists on the target with its count (changelogs: TOPIC_PARTITIONS)."""
    problems = []
    for topic, want in sorted(expected.items()):
        have = found.get(topic)
        if have is None:
            problems.append(f"{topic} is missing")
        elif have != want:
            problems.append(f"{topic} has {have} partitions, not {want}")
    if problems:
        problems[-1] += (f" (create the topics first: TOPIC_PARTITIONS={partitions} python -m services.topology)")
    return problems


def not_empty(ends: dict[TopicPartition, int]) -> list[str]:
    """Topics the replay writes that already hold records (a second replay, or a used cluster)."""
    full: dict[str, int] = {}
    for tp, end in ends.items():
        if end > 0:
            full[tp.topic] = full.get(tp.topic, 0) + end
    return [f"{topic} is not empty ({n} record(s)): replayed already, or not a new cluster"
            for topic, n in sorted(full.items())]


def unwritten(written: dict[TopicPartition, int], ends: dict[TopicPartition, int]) -> list[str]:
    """Partitions whose end offset is not the number of records the replay wrote to them."""
    return [f"{tp.topic} partition {tp.partition} ends at {ends.get(tp)}, {n} record(s) were written"
            for tp, n in sorted(written.items()) if ends.get(tp) != n]
