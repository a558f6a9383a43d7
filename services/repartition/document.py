"""The export file: the tables' state and the two whole topics, in JSON lines, with a checksum.

    {"format": "incident-platform-state", "version": 1, "source_partitions": 4, ...}   the header
    {"table": "triage.incidents", "key": "INC-...", "value": {...}}                   one per table key
    {"topic": "oncall.overrides", "key": "ovr-1", "value": "<the message as written>"}
    {"end": true, "records": 1234, "sha256": "<of every byte before this line>"}        the trailer

A file cut short has no trailer (truncated); one changed anywhere fails the checksum or the
count (damaged). Either is refused before anything is written.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "incident-platform-state"
VERSION = 1


class DocumentError(ValueError):
    """The file is not a whole, unchanged export."""


@dataclass
class Export:
    source_partitions: int
    app_prefix: str
    exported_at: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)  # table -> key -> value (JSON)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)  # topic -> key -> message text

    def records(self) -> int:
        return sum(map(len, self.tables.values())) + sum(map(len, self.topics.values()))


def _line(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def encode(export: Export) -> bytes:
    header = {"format": FORMAT, "version": VERSION, "source_partitions": export.source_partitions,
              "app_prefix": export.app_prefix, "exported_at": export.exported_at,
              "tables": sorted(export.tables), "topics": sorted(export.topics)}
    body = [_line(header)]
    for table in sorted(export.tables):
        body.extend(_line({"table": table, "key": k, "value": v}) for k, v in sorted(export.tables[table].items()))
    for topic in sorted(export.topics):
        body.extend(_line({"topic": topic, "key": k, "value": v}) for k, v in sorted(export.topics[topic].items()))
    data = b"".join(body)
    return data + _line({"end": True, "records": len(body) - 1, "sha256": hashlib.sha256(data).hexdigest()})


def decode(data: bytes) -> Export:
    if not data.endswith(b"\n"):
        raise DocumentError("truncated: it does not end with a whole line")
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, last = data[:cut], data[cut:]
    try:
        trailer = json.loads(last)
    except ValueError:
        trailer = None
    if not isinstance(trailer, dict) or trailer.get("end") is not True:
        raise DocumentError("truncated: its last line is not the end record")
    if hashlib.sha256(body).hexdigest() != trailer.get("sha256"):
        raise DocumentError("damaged: the checksum does not match its contents")
    lines = body.splitlines()
    if len(lines) - 1 != trailer.get("records"):
        raise DocumentError(f"damaged: {len(lines) - 1} records, the end record says {trailer.get('records')}")
    try:
        header, records = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise DocumentError(f"not an export of this version ({FORMAT} {VERSION})")
        export = Export(source_partitions=int(header["source_partitions"]), app_prefix=header["app_prefix"],
                        exported_at=header["exported_at"], tables={t: {} for t in header["tables"]},
                        topics={t: {} for t in header["topics"]})
        for record in records:
            into = export.tables[record["table"]] if "table" in record else export.topics[record["topic"]]
            into[record["key"]] = record["value"]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise DocumentError(f"damaged: {type(exc).__name__}: {exc}") from None
    return export


def write(path: Path, export: Export) -> None:
    """Written whole or not at all: an interrupted export leaves no file that looks like one."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(encode(export))
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def read(path: Path) -> Export:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot be read: {exc.strerror}") from None
    return decode(data)
