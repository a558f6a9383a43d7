"""Filters on text a client sent, such as a search term in a query string.

PostgreSQL text cannot hold U+0000, so no stored value contains a NUL, and a query with one as
an argument fails (CharacterNotInRepertoireError). A filter on such a value is therefore a
filter that matches nothing: it is answered as one (an empty page), not sent to the server,
so that a schema-valid search is never refused.
"""
from __future__ import annotations

MATCHES_NOTHING = "false"


def storable(value: str) -> bool:
    """Whether a text value could be equal to, or inside, a stored one."""
    return "\x00" not in value
