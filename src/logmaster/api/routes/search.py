"""Search: the query language of ``index/query.py`` over the caller's permitted devices.

The caller's ``DeviceScope("view")`` is part of the index query itself (``SearchRequest.devices``
becomes ``device IN (...)`` in the SQL), so events, histogram and per-device counts never see a
device outside it; no result is filtered afterwards. A query that names a device outside the
scope (``device:other``) simply finds nothing, like a device that does not exist; the
``devices`` parameter naming one is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from logmaster.api.audit import OK, record
from logmaster.api.deps import DeviceScope, Principal, SourceIp, device_scope, require
from logmaster.api.logdata import EventOut, LogDataDep, event_out, zone_of
from logmaster.api.problems import PROBLEM_RESPONSES, ProblemError, not_found
from logmaster.index.base import SearchRequest
from logmaster.index.query import Node, QueryError, parse_query, time_range

router = APIRouter(prefix="/search", tags=["search"], responses=PROBLEM_RESPONSES)

MAX_RANGE = dt.timedelta(days=800)  # retention is 730 days; a wider range is a typo

QueryText = Annotated[
    str,
    Query(
        alias="q",
        max_length=4000,
        description='Query: words, "phrases", field:value, CIDR, ranges, AND/OR/NOT; '
        "empty or * = everything.",
    ),
]
FromText = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=64,
        description="Start: -15m, -2h, -7d, today, 2026-11-28T10:00[+03:00], 28.11.2026 10:00. "
        "Default: 15 minutes before the end.",
    ),
]
ToText = Annotated[str | None, Query(alias="to", max_length=64, description="End; default now.")]
ZoneText = Annotated[
    str,
    Query(
        alias="tz",
        max_length=64,
        description="IANA zone for times typed without an offset.",
    ),
]
DevicesParam = Annotated[
    list[str] | None,
    Query(
        alias="device",
        max_length=100,
        description="Only these devices (slugs, repeatable); each must be one you may view.",
    ),
]
ViewScope = Annotated[DeviceScope, device_scope("view")]
Viewer = Annotated[Principal, require("view")]


class SearchPageOut(BaseModel):
    """One page of matching events, newest first."""

    events: list[EventOut]
    cursor: str | None = Field(description="Pass as ?cursor= for the next (older) page.")
    start: str = Field(description="Start of the searched range, RFC 3339.")
    end: str = Field(description="End of the searched range, RFC 3339.")


class Bucket(BaseModel):
    start: str = Field(description="Start of the slice, RFC 3339.")
    count: int


class HistogramOut(BaseModel):
    """Matching events per equal slice of the range."""

    buckets: list[Bucket]
    bucket_seconds: float
    total: int


class DeviceCount(BaseModel):
    device: str
    count: int


class DeviceCountsOut(BaseModel):
    """Matching events per permitted device."""

    devices: list[DeviceCount]
    total: int


class Parsed:
    def __init__(self, node: Node | None, start: dt.datetime, end: dt.datetime) -> None:
        self.node, self.start, self.end = node, start, end


def query_problem(exc: QueryError, what: str = "query") -> ProblemError:
    where = f" at position {exc.position}" if exc.position is not None else ""
    return ProblemError(
        400,
        "bad-query",
        f"The {what} cannot be understood: {exc}. Fix it{where} and search again.",
        f"Sorgu anlaşılamadı: {exc}."
        + (f" {exc.position}. konumdaki hatayı düzeltip" if exc.position is not None else "")
        + " yeniden arayın.",
        title="Query is not valid",
    )


def parse_search(q: str, from_: str | None, to: str | None, tz: str) -> Parsed:
    """The AST and time range, or a 400 problem naming the position of the mistake."""
    zone = zone_of(tz, "UTC")
    if zone.key != tz:
        raise ProblemError(
            400,
            "bad-timezone",
            f"Unknown timezone {tz!r}: use an IANA name such as Europe/Istanbul.",
            f"Bilinmeyen saat dilimi {tz!r}: Europe/Istanbul gibi bir IANA adı kullanın.",
        )
    now = dt.datetime.now(zone)
    try:
        node = parse_query(q, now=now, zone=zone)
    except QueryError as exc:
        raise query_problem(exc) from None
    try:
        start, end = time_range(from_, to, now, zone)
    except QueryError as exc:
        raise query_problem(exc, "time range") from None
    if end - start > MAX_RANGE:
        raise ProblemError(
            400,
            "range-too-wide",
            "The time range is longer than 800 days; narrow it.",
            "Zaman aralığı 800 günden uzun; daraltın.",
        )
    return Parsed(node, start, end)


def restricted(scope: DeviceScope, wanted: list[str] | None) -> frozenset[str]:
    """The devices the index may read: the scope, narrowed to ``wanted`` (404 outside it)."""
    if not wanted:
        return scope.slugs
    for slug in wanted:
        if not scope.allows(slug):
            raise not_found(f"device {slug}", f"{slug} cihazı")
    return frozenset(wanted)


def _request(
    parsed: Parsed, devices: frozenset[str], limit: int, cursor: str | None
) -> SearchRequest:
    return SearchRequest(parsed.node, parsed.start, parsed.end, limit, cursor, devices)


@router.get("/events", response_model=SearchPageOut)
def search_events(
    request: Request,
    data: LogDataDep,
    scope: ViewScope,
    ip: SourceIp,
    principal: Annotated[Principal, require("view")],
    q: QueryText = "",
    from_: FromText = None,
    to: ToText = None,
    tz: ZoneText = "Europe/Istanbul",
    device: DevicesParam = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=512, description="From the previous page.")
    ] = None,
) -> SearchPageOut:
    """Matching events of the permitted devices, newest first, one page at a time."""
    parsed = parse_search(q, from_, to, tz)
    devices = restricted(scope, device)
    try:
        page = data.index.get().search(_request(parsed, devices, limit, cursor))
    except ValueError as exc:  # a cursor that is not ours
        raise ProblemError(
            400, "bad-cursor", str(exc), "Geçersiz sayfa imleci: önceki sayfanın imlecini verin."
        ) from None
    if cursor is None:
        # One entry per search (its first page); paging on is the same search.
        record(
            data.engine,
            actor=principal.username,
            source_ip=ip,
            action="search",
            target=q[:300],
            result=OK,
            details={
                "from": parsed.start.isoformat(),
                "to": parsed.end.isoformat(),
                "devices": sorted(device or []),
                "hits": len(page.hits),
            },
        )
    zone = zone_of(tz, "UTC")
    return SearchPageOut(
        events=[event_out(h.day, h.id, h.event, data.devices) for h in page.hits],
        cursor=page.cursor,
        start=parsed.start.astimezone(zone).isoformat(),
        end=parsed.end.astimezone(zone).isoformat(),
    )


@router.get("/histogram", response_model=HistogramOut)
def search_histogram(
    data: LogDataDep,
    _viewer: Viewer,
    scope: ViewScope,
    q: QueryText = "",
    from_: FromText = None,
    to: ToText = None,
    tz: ZoneText = "Europe/Istanbul",
    device: DevicesParam = None,
    buckets: Annotated[int, Query(ge=1, le=500, description="Number of slices.")] = 60,
) -> HistogramOut:
    """Counts of matching events of the permitted devices per slice of the range."""
    parsed = parse_search(q, from_, to, tz)
    devices = restricted(scope, device)
    rows = data.index.get().histogram(_request(parsed, devices, 1, None), buckets)
    zone = zone_of(tz, "UTC")
    width = (parsed.end - parsed.start).total_seconds() / buckets
    return HistogramOut(
        buckets=[Bucket(start=t.astimezone(zone).isoformat(), count=n) for t, n in rows],
        bucket_seconds=max(width, 1e-6),
        total=sum(n for _, n in rows),
    )


@router.get("/devices", response_model=DeviceCountsOut)
def search_device_counts(
    data: LogDataDep,
    _viewer: Viewer,
    scope: ViewScope,
    q: QueryText = "",
    from_: FromText = None,
    to: ToText = None,
    tz: ZoneText = "Europe/Istanbul",
    device: DevicesParam = None,
) -> DeviceCountsOut:
    """Counts of matching events per permitted device."""
    parsed = parse_search(q, from_, to, tz)
    devices = restricted(scope, device)
    counts = data.index.get().device_counts(_request(parsed, devices, 1, None))
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return DeviceCountsOut(
        devices=[DeviceCount(device=d, count=n) for d, n in rows if d in devices],
        total=sum(n for d, n in rows if d in devices),
    )
