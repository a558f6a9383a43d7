"""A request body read from ASGI with a size limit, and the answer an intake handler gives."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from .errors import ApiError


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # JSON
    headers: dict[str, str] | None = None


class Body:
    def __init__(self, receive: Receive, content_length: str | None) -> None:
        self._receive, self._declared = receive, content_length

    async def read(self, endpoint: str, limit: int, refused: Counter | None = None) -> bytes:
        """The whole body, or 413 as soon as it is known to be over ``limit`` bytes."""
        if self._declared and self._declared.isdigit() and int(self._declared) > limit:
            self._too_large(endpoint, limit, refused)
        chunks, size = [], 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                self._too_large(endpoint, limit, refused)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @staticmethod
    def _too_large(endpoint: str, limit: int, refused: Counter | None) -> None:
        if refused is not None:
            refused.labels(endpoint, "too_large").inc()
        raise ApiError(413, f"the request is larger than {limit} bytes", {"limit_bytes": limit})
