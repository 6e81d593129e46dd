"""Events: one event with its raw archived line, and the lines around it in the archive.

The event comes from the index; its line is read from the archive file and offset the index
recorded, so what is shown is the legal record itself. An event of a device outside the
caller's ``DeviceScope("view")`` is 404, exactly like an event that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from logmaster.api.audit import OK, record
from logmaster.api.deps import DeviceScope, Principal, SourceIp, device_scope, require
from logmaster.api.forward import elsewhere, holder_of_ref
from logmaster.api.logdata import (
    EventOut,
    LogData,
    LogDataDep,
    archive_file,
    event_out,
    lines_around,
    parse_event_id,
    read_line_at,
    rfc3339,
)
from logmaster.api.problems import PROBLEM_RESPONSES, not_found
from logmaster.archive.line import parse_line
from logmaster.cluster import split_ref

router = APIRouter(prefix="/events", tags=["events"], responses=PROBLEM_RESPONSES)

EventId = Annotated[
    str,
    Path(
        max_length=40,
        description="Event id as search returns it: archive day and row, 'YYYY-MM-DD.N'.",
    ),
]
ViewScope = Annotated[DeviceScope, device_scope("view")]
Viewer = Annotated[Principal, require("view")]


class ArchiveLineOut(BaseModel):
    """One line of the archive exactly as stored (escapes included)."""

    offset: int = Field(description="Byte offset of the line in its file.")
    line: str = Field(description="The archive line: receive time, sender, escaped message.")
    received: str | None = Field(description="Receive time of the line, RFC 3339.")
    sender: str | None = Field(description="Sender address the collector saw.")


class EventDetailOut(BaseModel):
    """An event, and the archived line it was parsed from."""

    event: EventOut
    archived: ArchiveLineOut | None = Field(
        description="The line read from the archive file; null if the file is gone."
    )


class SurroundingOut(BaseModel):
    """Lines before and after an event's line in the same archive file."""

    event: str
    device: str
    timezone: str
    file: str
    before: list[ArchiveLineOut]
    line: ArchiveLineOut | None
    after: list[ArchiveLineOut]


def _line(data: LogData, device: str, offset: int, text: bytes) -> ArchiveLineOut:
    zone = data.devices.zone(device)
    try:
        parsed = parse_line(text)
    except (ValueError, IndexError):
        return ArchiveLineOut(
            offset=offset, line=text.decode("utf-8", "replace"), received=None, sender=None
        )
    return ArchiveLineOut(
        offset=offset,
        line=text.decode("utf-8", "replace"),
        received=rfc3339(parsed.received, zone),
        sender=parsed.sender,
    )


def _permitted_event(data: LogData, scope: DeviceScope, event_id: str) -> dict[str, Any]:
    key = parse_event_id(event_id)
    if key is None:
        raise not_found(f"event {event_id}", f"{event_id} olayı")
    event = data.index.get().get(*key)
    if event is None or not scope.allows(str(event.get("observer.name", ""))):
        raise not_found(f"event {event_id}", f"{event_id} olayı")
    return event


@router.get("/{event_id}", response_model=EventDetailOut)
def get_event(
    event_id: EventId,
    data: LogDataDep,
    scope: ViewScope,
    principal: Viewer,
    ip: SourceIp,
    request: Request,
) -> EventDetailOut | Response:
    """One event of a permitted device with its raw archived line (from the node holding it)."""
    event = _permitted_event(data, scope, event_id)
    ref = event.get("log.file.path")
    if ref is not None and (other := elsewhere(request, data, holder_of_ref(data, str(ref)))):
        return other
    key = parse_event_id(event_id)
    assert key is not None
    device = str(event["observer.name"])
    archived = None
    rel, offset = event.get("log.file.path"), event.get("log.offset")
    if rel is not None and offset is not None:
        path = archive_file(data.settings.archive_dir, device, split_ref(str(rel))[1])
        text = read_line_at(path, int(offset)) if path is not None else None
        if text is not None:
            archived = _line(data, device, int(offset), text)
    record(
        data.engine,
        actor=principal.username,
        source_ip=ip,
        action="event.view",
        target=event_id,
        result=OK,
        details={"device": device},
    )
    return EventDetailOut(event=event_out(key[0], key[1], event, data.devices), archived=archived)


@router.get("/{event_id}/surrounding", response_model=SurroundingOut)
def get_event_surrounding(
    event_id: EventId,
    data: LogDataDep,
    scope: ViewScope,
    _viewer: Viewer,
    before: Annotated[int, Query(ge=0, le=500, description="Lines before.")] = 10,
    after: Annotated[int, Query(ge=0, le=500, description="Lines after.")] = 10,
    *,
    request: Request,
) -> SurroundingOut | Response:
    """The archive lines around an event's line (same device, same day file)."""
    event = _permitted_event(data, scope, event_id)
    device = str(event["observer.name"])
    rel, offset = event.get("log.file.path"), event.get("log.offset")
    if rel is not None and (other := elsewhere(request, data, holder_of_ref(data, str(rel)))):
        return other
    path = (
        archive_file(data.settings.archive_dir, device, split_ref(str(rel))[1])
        if rel is not None
        else None
    )
    if path is None or offset is None:
        raise not_found(
            f"the archive file of event {event_id}", f"{event_id} olayının arşiv dosyası"
        )
    earlier, later = lines_around(path, int(offset), before, after)
    text = read_line_at(path, int(offset))
    return SurroundingOut(
        event=event_id,
        device=device,
        timezone=data.devices.timezone_name(device),
        file=str(rel),
        before=[_line(data, device, o, t) for o, t in earlier],
        line=_line(data, device, int(offset), text) if text is not None else None,
        after=[_line(data, device, o, t) for o, t in later],
    )
