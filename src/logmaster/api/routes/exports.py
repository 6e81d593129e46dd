"""Evidence bundles through the API (archive/bundle.py): permission ``export``, audited.

- ``POST /exports`` builds the bundle and answers with the ZIP (streamed from a temporary file
  that is removed once sent). Fine for days of ordinary size.
- ``POST /exports/jobs`` starts the same export in the background and answers 202 with a job;
  ``GET /exports/jobs/{id}`` tells its progress (bytes read of bytes to read) and state;
  ``GET /exports/jobs/{id}/bundle`` downloads the finished ZIP. Jobs live in
  ``<data>/exports/`` (a JSON state file and the ZIP), so any API process answers for them;
  only the user who started a job sees it (404 for others); finished jobs are removed after
  ``JOB_TTL_S``.
- ``POST /exports/attribution`` exports an attribution report (permissions ``attribute`` and
  ``export``): hops on devices outside the caller's scopes are reported without their data and
  their days are not included, as ``GET /attribution`` shows them.

A device outside the caller's ``DeviceScope("export")`` is 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from logmaster import cluster
from logmaster.api.audit import FAILED, OK
from logmaster.api.deps import AuditLog, DeviceScope, Principal, device_scope, require
from logmaster.api.forward import held_by, holder_of_device
from logmaster.api.logdata import LogData, LogDataDep, zone_of
from logmaster.api.problems import PROBLEM_RESPONSES, ProblemError, bad_request, not_found
from logmaster.archive.bundle import BundleError, Summary, export_days
from logmaster.archive.bundle_attribution import export_attribution
from logmaster.compliance.attribution import attribute
from logmaster.config import Settings
from logmaster.db import Device
from logmaster.index.query import QueryError, parse_time
from logmaster.parsers.base import ip as normal_ip
from logmaster.parsers.base import mac as normal_mac

router = APIRouter(prefix="/exports", tags=["exports"], responses=PROBLEM_RESPONSES)

JOB_TTL_S = 24 * 3600
ZIP = "application/zip"


class ExportIn(BaseModel):
    """Which days of which device; optionally a query whose lines are extracted with proofs."""

    device: str = Field(max_length=64, description="Device slug.")
    from_: dt.date = Field(alias="from", description="First day (the device's local day).")
    to: dt.date = Field(description="Last day.")
    query: str | None = Field(
        default=None, max_length=2000, description="Extract the matching lines with proofs."
    )


class AttributionExportIn(BaseModel):
    """The attribution question, as for GET /attribution."""

    at: str = Field(max_length=64, description="The moment: 2026-11-28T10:00:05, 28.11.2026 ...")
    ip: str | None = Field(default=None, max_length=64)
    port: int | None = Field(default=None, ge=0, le=65535)
    mac: str | None = Field(default=None, max_length=32)
    window: int = Field(default=60, ge=0, le=3600)
    tz: str = Field(default="Europe/Istanbul", max_length=64)


class JobOut(BaseModel):
    """A background export."""

    id: str
    state: Literal["running", "done", "failed"]
    device: str
    bytes_done: int = Field(description="Bytes of archive files read so far.")
    bytes_total: int = Field(description="Bytes of archive files to read (0 until known).")
    error: str = ""
    error_tr: str = ""
    bundle: str | None = Field(default=None, description="Download path when done.")


def _name(device: str, first: dt.date, last: dt.date) -> str:
    return f"logmaster-{device}-{first:%Y%m%d}-{last:%Y%m%d}.zip"


def _bundle_error(exc: BundleError) -> ProblemError:
    return ProblemError(
        422, "cannot-export", str(exc), f"Delil paketi oluşturulamadı: {exc}", title="Cannot export"
    )


def _check(body: ExportIn, scope: DeviceScope, data: LogData) -> None:
    if not scope.allows(body.device):
        raise not_found(f"device {body.device}", f"{body.device} cihazı")
    held = holder_of_device(data, body.device)
    if held is not None:  # several servers: the bundle is built from the holder's archive
        raise held_by(held, cluster.api_url(data.read_engine, held), "build its bundle there")
    if body.from_ > body.to:
        raise bad_request("'from' is after 'to'; swap them.", "'from' 'to' tarihinden sonra.")


def _audit(log: Any, target: str, summary: Summary | None, error: str, **details: Any) -> None:
    if summary is not None:
        details.update(days=len(summary.entries), extracted_lines=summary.extracted)
    if error:
        details["error"] = error
    log.record("export", target, FAILED if error else OK, details)


def _temp(settings: Settings) -> tuple[int, str]:
    folder = settings.data_dir / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=folder)


@router.post(
    "",
    response_class=FileResponse,
    responses={200: {"content": {ZIP: {}}, "description": "The evidence bundle (ZIP)."}},
)
def export_bundle(
    body: ExportIn,
    data: LogDataDep,
    scope: Annotated[DeviceScope, device_scope("export")],
    principal: Annotated[Principal, require("export")],
    log: AuditLog,
) -> FileResponse:
    """Build the evidence bundle of a permitted device's days and return it (ZIP)."""
    _check(body, scope, data)
    fd, path = _temp(data.settings)
    target = f"{body.device} {body.from_}..{body.to}"
    try:
        with os.fdopen(fd, "wb") as fh:
            summary = export_days(
                data.settings, body.device, body.from_, body.to, fh,
                query=body.query, exported_by=principal.username,
            )  # fmt: skip
    except BundleError as exc:
        os.unlink(path)
        _audit(log, target, None, str(exc), query=body.query)
        raise _bundle_error(exc) from None
    except BaseException:
        os.unlink(path)
        raise
    _audit(log, target, summary, "", query=body.query)
    return FileResponse(
        path,
        media_type=ZIP,
        filename=_name(body.device, body.from_, body.to),
        background=BackgroundTask(os.unlink, path),
    )


# -- background jobs ----------------------------------------------------------------------


def _job_dir(settings: Settings) -> Path:
    folder = settings.data_dir / "exports"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)


def _sweep(folder: Path) -> None:
    """Remove jobs older than JOB_TTL_S (state file and ZIP)."""
    cutoff = time.time() - JOB_TTL_S
    for state in folder.glob("job-*.json"):
        try:
            if state.stat().st_mtime < cutoff:
                state.with_suffix(".zip").unlink(missing_ok=True)
                state.unlink(missing_ok=True)
        except OSError:
            continue


def _run_job(settings: Settings, state_path: Path, state: dict[str, Any], body: ExportIn) -> None:
    last = [0.0]

    def progress(done: int, total: int) -> None:
        state.update(bytes_done=done, bytes_total=total)
        now = time.monotonic()
        if now - last[0] > 0.5:  # a state write per chunk would cost more than the chunk
            last[0] = now
            _save(state_path, state)

    zip_path = state_path.with_suffix(".zip")
    try:
        with zip_path.open("wb") as fh:
            summary = export_days(
                settings, body.device, body.from_, body.to, fh,
                query=body.query, exported_by=state["user"], progress=progress,
            )  # fmt: skip
        state.update(state="done", bytes_done=summary.bytes_in, bytes_total=summary.bytes_in)
    except BundleError as exc:
        zip_path.unlink(missing_ok=True)
        state.update(state="failed", error=str(exc), error_tr=f"Delil paketi oluşturulamadı: {exc}")
    except Exception as exc:  # a job thread has nobody else to report to
        zip_path.unlink(missing_ok=True)
        state.update(state="failed", error=f"internal error: {exc}", error_tr="iç hata")
    _save(state_path, state)


def _job_out(state: dict[str, Any]) -> JobOut:
    return JobOut(
        id=state["id"],
        state=state["state"],
        device=state["device"],
        bytes_done=state.get("bytes_done", 0),
        bytes_total=state.get("bytes_total", 0),
        error=state.get("error", ""),
        error_tr=state.get("error_tr", ""),
        bundle=f"/api/v1/exports/jobs/{state['id']}/bundle" if state["state"] == "done" else None,
    )


@router.post("/jobs", status_code=202, response_model=JobOut)
def start_export_job(
    body: ExportIn,
    data: LogDataDep,
    scope: Annotated[DeviceScope, device_scope("export")],
    principal: Annotated[Principal, require("export")],
    log: AuditLog,
) -> JobOut:
    """Start building an evidence bundle in the background (for long ranges)."""
    _check(body, scope, data)
    folder = _job_dir(data.settings)
    _sweep(folder)
    job = secrets.token_hex(12)
    state: dict[str, Any] = {
        "id": job,
        "user": principal.username,
        "user_id": principal.user_id,
        "device": body.device,
        "state": "running",
        "bytes_done": 0,
        "bytes_total": 0,
    }
    path = folder / f"job-{job}.json"
    _save(path, state)
    log.record(
        "export", f"{body.device} {body.from_}..{body.to}", OK, {"job": job, "query": body.query}
    )
    threading.Thread(
        target=_run_job, args=(data.settings, path, dict(state), body), daemon=True
    ).start()
    return _job_out(state)


def _load_job(settings: Settings, job: str, principal: Principal) -> tuple[Path, dict[str, Any]]:
    if not job.isalnum() or len(job) > 64:
        raise not_found(f"export job {job}", f"{job} dışa aktarma işi")
    path = _job_dir(settings) / f"job-{job}.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        raise not_found(f"export job {job}", f"{job} dışa aktarma işi") from None
    if state.get("user_id") != principal.user_id:
        raise not_found(f"export job {job}", f"{job} dışa aktarma işi")
    return path, state


@router.get("/jobs/{job}", response_model=JobOut)
def get_export_job(
    job: str, data: LogDataDep, principal: Annotated[Principal, require("export")]
) -> JobOut:
    """Progress and state of one of the caller's background exports."""
    return _job_out(_load_job(data.settings, job, principal)[1])


@router.get(
    "/jobs/{job}/bundle",
    response_class=FileResponse,
    responses={200: {"content": {ZIP: {}}, "description": "The evidence bundle (ZIP)."}},
)
def download_export_job(
    job: str, data: LogDataDep, principal: Annotated[Principal, require("export")]
) -> FileResponse:
    """The ZIP of a finished background export."""
    path, state = _load_job(data.settings, job, principal)
    if state["state"] != "done":
        raise ProblemError(
            409,
            "export-not-ready",
            f"The export is {state['state']}; poll GET /exports/jobs/{job} until it is done.",
            f"Dışa aktarma henüz bitmedi ({state['state']}).",
        )
    return FileResponse(path.with_suffix(".zip"), media_type=ZIP, filename=f"{job}.zip")


# -- attribution reports ------------------------------------------------------------------


@router.post(
    "/attribution",
    response_class=FileResponse,
    responses={200: {"content": {ZIP: {}}, "description": "The attribution report (ZIP)."}},
)
def export_attribution_report(
    body: AttributionExportIn,
    data: LogDataDep,
    export_scope: Annotated[DeviceScope, device_scope("export")],
    attribute_scope: Annotated[DeviceScope, device_scope("attribute")],
    principal: Annotated[Principal, require("export")],
    _attributor: Annotated[Principal, require("attribute")],
    log: AuditLog,
) -> FileResponse:
    """An attribution answer with the days its hops cite, verifiable like any bundle (ZIP)."""
    if (body.ip is None) == (body.mac is None):
        raise bad_request("Give either ip or mac.", "ip ya da mac verin (yalnız birini).")
    ip = normal_ip(body.ip) if body.ip is not None else None
    mac = normal_mac(body.mac) if body.mac is not None else None
    if (body.ip is not None and ip is None) or (body.mac is not None and mac is None):
        raise bad_request("Not an IP or MAC address.", "Geçerli bir IP ya da MAC adresi değil.")
    zone = zone_of(body.tz, "UTC")
    try:
        moment = parse_time(body.at, dt.datetime.now(zone), zone)
    except QueryError as exc:
        raise bad_request(f"'at': {exc}", f"'at': {exc}") from None
    with data.read_engine.connect() as conn:
        locations = dict(conn.execute(sa.select(Device.slug, Device.location)).all())
    result = attribute(
        data.index.get(), data.settings.archive_dir, at=moment, ip=ip, port=body.port, mac=mac,
        window=body.window, locations=locations, node=data.settings.cluster.node,
    )  # fmt: skip

    def permitted(device: str) -> bool:
        return export_scope.allows(device) and attribute_scope.allows(device)

    fd, path = _temp(data.settings)
    subject = f"{mac or ip}{'' if body.port is None else f':{body.port}'}"
    target = f"attribution {subject}@{moment.isoformat()}"
    try:
        with os.fdopen(fd, "wb") as fh:
            summary = export_attribution(
                data.settings, result, fh, exported_by=principal.username, permitted=permitted
            )
    except BundleError as exc:
        os.unlink(path)
        _audit(log, target, None, str(exc), kind="attribution")
        raise _bundle_error(exc) from None
    except BaseException:
        os.unlink(path)
        raise
    _audit(log, target, summary, "", kind="attribution", window=body.window)
    return FileResponse(
        path,
        media_type=ZIP,
        filename=f"logmaster-attribution-{moment:%Y%m%dT%H%M%S}.zip",
        background=BackgroundTask(os.unlink, path),
    )
