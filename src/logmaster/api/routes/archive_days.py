"""Archive days: per device, the day files with their line counts and chain state.

Figures come from the chain sidecar (``archive/verify.py`` ``stats_day``: no rehash, so a list
of two years costs a directory walk). A device outside the caller's ``DeviceScope("view")`` is
404. There is no route that deletes a day: nobody may, inside retention.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from logmaster.api.deps import DeviceScope, Principal, device_scope, require
from logmaster.api.forward import elsewhere, holder_of_device
from logmaster.api.logdata import LogDataDep
from logmaster.api.problems import PROBLEM_RESPONSES, bad_request, not_found
from logmaster.archive.verify import day_files, stats_day

router = APIRouter(tags=["archive-days"], responses=PROBLEM_RESPONSES)

Slug = Annotated[str, Path(max_length=64, description="Device slug.")]


class ArchiveDayOut(BaseModel):
    """One device-day of the archive."""

    day: dt.date = Field(description="The device's local day (the file's date).")
    file: str = Field(description="Archive-relative path of the day file.")
    lines: int = Field(description="Lines covered by the hash chain.")
    size: int = Field(description="Bytes in the day file.")
    chain: str = Field(
        description="'chained' (the chain covers the file), 'open (+N bytes unrecorded)' "
        "(being written), 'resynced', 'short' (file shorter than its chain: altered) or "
        "'no chain'."
    )


class ArchiveDayList(BaseModel):
    device: str
    timezone: str
    days: list[ArchiveDayOut]


@router.get("/devices/{slug}/archive-days", response_model=ArchiveDayList)
def list_archive_days(
    slug: Slug,
    data: LogDataDep,
    scope: Annotated[DeviceScope, device_scope("view")],
    _viewer: Annotated[Principal, require("view")],
    from_: Annotated[dt.date | None, Query(alias="from", description="First day.")] = None,
    to: Annotated[dt.date | None, Query(description="Last day.")] = None,
    *,
    request: Request,
) -> ArchiveDayList | Response:
    """The archive days of a permitted device, newest first (from the node holding it)."""
    if not scope.allows(slug):
        raise not_found(f"device {slug}", f"{slug} cihazı")
    if other := elsewhere(request, data, holder_of_device(data, slug)):
        return other
    if from_ is not None and to is not None and from_ > to:
        raise bad_request(
            "'from' is after 'to'; swap them.", "'from' tarihi 'to' tarihinden sonra; değiştirin."
        )
    root = data.settings.archive_dir
    days = []
    for device, day, path in day_files(root, slug):
        if device != slug or (from_ and day < from_) or (to and day > to):
            continue
        try:
            st = stats_day(device, day, path)
        except FileNotFoundError:
            continue  # removed after retention between listing and reading
        days.append(
            ArchiveDayOut(
                day=day,
                file=path.relative_to(root).as_posix(),
                lines=st.lines,
                size=st.size,
                chain=st.state,
            )
        )
    days.sort(key=lambda d: d.day, reverse=True)
    return ArchiveDayList(device=slug, timezone=data.devices.timezone_name(slug), days=days)
