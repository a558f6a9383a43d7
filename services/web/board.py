"""The incident board: open incidents first by severity, filters, search, recent closed, pages."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from shared.domain.incident import IncidentStatus
from shared.domain.organisation import Severity

from .api import ApiRefusal
from .deps import api_for, is_htmx, refusal_page, render, signed_in
from .sessions import Session

router = APIRouter()
PAGE = 50
OPEN = [s.value for s in IncidentStatus if s.is_open]
# The board's views: what the API is asked for, and in which order.
VIEWS = {
    "open": (OPEN, "severity"),
    "closed": (["closed"], "closed"),
    "all": ([], "newest"),
}


@dataclass(frozen=True)
class BoardQuery:
    view: str
    status: str
    severity: str
    team: str
    service: str
    q: str
    page: int

    @classmethod
    def from_request(cls, request: Request) -> "BoardQuery":
        p = request.query_params
        view = p.get("view", "open")
        status = p.get("status", "")
        severity = p.get("severity", "")
        page = p.get("page", "1")
        return cls(
            view=view if view in VIEWS else "open",
            status=status if status in {s.value for s in IncidentStatus} else "",
            severity=severity if severity in {s.value for s in Severity} else "",
            team=p.get("team", "")[:200],
            service=p.get("service", "")[:200],
            q=p.get("q", "").strip()[:200],
            page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
        )

    def api_params(self) -> list[tuple[str, str | int]]:
        statuses, sort = VIEWS[self.view]
        params: list[tuple[str, str | int]] = [("sort", sort), ("limit", PAGE), ("offset", (self.page - 1) * PAGE)]
        params += [("status", s) for s in ([self.status] if self.status else statuses)]
        for name in ("severity", "team", "service", "q"):
            if getattr(self, name):
                params.append((name, getattr(self, name)))
        return params

    def url(self, **changes) -> str:
        values = {**self.__dict__, **changes}
        kept = {k: v for k, v in values.items() if v and not (k == "page" and v == 1) and not (k == "view" and v == "open")}
        return "/" + (f"?{urlencode(kept)}" if kept else "")


@router.get("/")
async def board(request: Request, session: Session = Depends(signed_in)) -> Response:
    query = BoardQuery.from_request(request)
    try:
        listing = await api_for(request, session).get("/v1/incidents", params=query.api_params())
    except ApiRefusal as refusal:
        return refusal_page(request, refusal)
    pages = max(1, -(-listing["total"] // PAGE))
    template = "board_rows.html" if is_htmx(request) and request.headers.get("hx-target") == "board-rows" else "board.html"
    return render(request, template, query=query, incidents=listing["incidents"], total=listing["total"], pages=pages,
                  views=VIEWS, statuses=[s.value for s in IncidentStatus], severities=[s.value for s in Severity])
