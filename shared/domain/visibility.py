"""Who may know that a restricted (security) incident exists: the one rule, written once.

A security incident is restricted. Only a role that may read restricted incidents
(``security-admin``) sees it, and everything else behaves as if it did not exist:
reads answer 404, lists, counts and searches leave it out, it is told only on the
security team's topic, and what is exported without credentials (Prometheus label
values) names it ``restricted`` instead of its service.
"""
from __future__ import annotations

from .organisation import Category

# The label value that stands in for a restricted incident's service on /metrics.
RESTRICTED = "restricted"
# The rule as a PostgreSQL condition over the incidents table's ``restricted`` column.
SQL_HIDDEN = "NOT restricted"


def is_restricted(category: Category) -> bool:
    """An incident of this category is restricted (decided once, when it opens)."""
    return category is Category.SECURITY


def visible(restricted: bool, may_read_restricted: bool) -> bool:
    """Whether someone may learn that an incident exists."""
    return may_read_restricted or not restricted


def metric_service(service: str, restricted: bool) -> str:
    """The service as a metric label value: a restricted incident's real service never appears."""
    return RESTRICTED if restricted else service
