"""What the platform keeps and reads: each table's changelog, the two topics every worker reads
whole, and the topics each consumer group reads. Taken from the apps themselves (built, no I/O),
so that a table or an agent added later is exported and checked without a change here."""
from __future__ import annotations

from dataclasses import dataclass

from shared import catalogue as cat
from shared.domain.organisation import Organisation
from shared.kafka import faust_fixes
from shared.settings import Settings

# Compacted, one partition, read whole by every worker (shared/kafka/view.py): no table holds them.
WHOLE_TOPICS = (cat.ONCALL_OVERRIDES, cat.MAINTENANCE_WINDOWS)
# Readiness probes carry no state; ingestion sends them with no group of its own reading them.
STATELESS = frozenset({cat.HEALTH_PROBES.name})


@dataclass(frozen=True)
class Inventory:
    changelogs: dict[str, str]  # "<service>.<table>" -> its changelog topic
    reads: dict[str, frozenset[str]]  # consumer group -> the topics it reads (probes left out)

    @property
    def whole_topics(self) -> list[str]:
        return [spec.name for spec in WHOLE_TOPICS]


def inventory(settings: Settings, org: Organisation) -> Inventory:
    from services.recorder.consumer import _PARSERS as RECORDED
    from services.topology import faust_builders

    changelogs: dict[str, str] = {}
    for service, build in faust_builders().items():
        for table in build(settings, org).tables.values():
            changelogs[f"{service}.{table.name}"] = table.changelog_topic.get_topic_name()
    reads: dict[str, set[str]] = {}
    for agent, topics in faust_fixes.agent_topics().items():  # "<service>.<handler>" -> its topics
        service = agent.split(".", 1)[0]
        if service in faust_builders():
            reads.setdefault(f"{settings.app_prefix}-{service}", set()).update(topics)
    reads[f"{settings.app_prefix}-recorder"] = set(RECORDED)
    return Inventory(changelogs, {group: frozenset(topics - STATELESS) for group, topics in reads.items()})
