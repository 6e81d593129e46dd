"""Attribution reports as evidence bundles: the answer, and the sealed days its hops cite.

``report.json`` / ``report.md`` (Turkish and English) cite each hop's line (device, file, byte
offset, line number) with the Merkle proof of that line; the bundle holds those day files with
their manifests, signatures and stamps, so ``verify.sh`` checks the citations like any day.
Hops on devices the caller may not see (``permitted``) are reported without any of their data
and their days are left out, as ``GET /attribution`` shows them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from logmaster.archive.bundle import (
    BundleError,
    BundleFile,
    BundleWriter,
    Entry,
    Progress,
    Summary,
    entry_of,
    json_bytes,
    links,
    stamp_summary,
)
from logmaster.archive.bundle_docs import attribution_markdown, verify_markdown
from logmaster.archive.extract import Extracted, ExtractError, prove
from logmaster.archive.manifest import Part
from logmaster.cluster import local_rel, split_ref

if TYPE_CHECKING:
    from logmaster.compliance.attribution import Attribution
    from logmaster.config import Settings


def _part_of(root: Path, device: str, file: str) -> Part | None:
    """The part an archive-relative day file path names (``gw1/2026/11/28.s1.log``)."""
    try:
        dev, yyyy, mm, name = file.split("/")
        stem = name.split(".log")[0]
        dd, _, sup = stem.partition(".s")
        part = Part(root, dev, dt.date(int(yyyy), int(mm), int(dd)), int(sup) if sup else 0)
    except ValueError:
        return None
    return part if dev == device and part.relative == file else None


def export_attribution(
    settings: Settings,
    result: Attribution,
    out: IO[bytes],
    *,
    exported_by: str = "",
    permitted: Callable[[str], bool] | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Write an attribution answer as an evidence bundle: report + the cited days, verifiable.

    ``permitted(device)`` false: the hop is reported without any of its data (as the API
    shows it) and its day file is not included.
    """
    root = settings.archive_dir
    allowed = permitted or (lambda _d: True)
    cited: dict[Part, set[int]] = {}
    problems: list[str] = []
    for chain in result.chains:
        for hop in ([chain.nat] if chain.nat else []) + chain.leases + chain.logins:
            if not allowed(hop.session.device):
                continue
            for c in hop.evidence:
                rel = local_rel(c.file, settings.cluster.node)
                if rel is None:  # a line of another node's archive (shared index)
                    problems.append(
                        f"{c.file}: held by node {split_ref(c.file)[0]}; export this "
                        "attribution on that node to include its lines"
                    )
                    continue
                part = _part_of(root, c.device, rel)
                if part is None:
                    problems.append(f"{c.file}: not an archive day file")
                    continue
                cited.setdefault(part, set()).add(c.offset)
    entries: list[Entry] = []
    extracted: dict[tuple[str, int], Extracted] = {}
    for part, offsets in sorted(
        cited.items(), key=lambda kv: (kv[0].device, kv[0].day, kv[0].index)
    ):
        if not part.manifest.exists():
            problems.append(f"{part.relative}: not sealed yet, its lines cannot be verified")
            continue
        entry = entry_of(part, "day")
        entries.append(entry)
        try:
            for x in prove(entry, offsets):
                extracted[(part.relative, x.offset)] = x
        except ExtractError as exc:
            raise BundleError(str(exc)) from exc
    for device in sorted({e.part.device for e in entries}):
        entries += links(root, device, entries)
    report = attribution_report(result, extracted, allowed)
    report["problems"] = problems
    writer = BundleWriter(settings, out, progress)
    try:  # as in export_days: any failure before finish() aborts the ZIP
        writer.add_entries(entries)
        writer.add_extracts(sorted(extracted.values(), key=lambda x: x.proof_dir))
        stamps = stamp_summary(entries)
        about: dict[str, Any] = {
            "kind": "attribution",
            "exported_by": exported_by,
            "subject": report["subject"],
            "at": report["at"],
            "window_s": result.window,
            "extracted_lines": len(extracted),
            "days": [e.summary for e in entries if e.kind == "day"],
            "chain_links": [e.summary for e in entries if e.kind == "link"],
            "not_included": [{"reason": p} for p in problems],
            "stamps": stamps,
        }
        report["stamps"] = stamps
        docs = {
            "VERIFY.md": verify_markdown(about),
            "report.md": attribution_markdown(report),
        }
        writer.zip.add_bytes("report.json", json_bytes(report))
        body = writer.finish(entries, about, docs)
    except BaseException:
        writer.zip.abort()
        raise
    return Summary(
        [BundleFile(**f) for f in body["files"]],
        about["days"],
        about["not_included"],
        len(extracted),
        writer.done,
        not stamps["accredited"],
        len(stamps["pending"]),
        body,
    )


def attribution_report(
    result: Attribution, extracted: dict[tuple[str, int], Extracted], allowed: Callable[[str], bool]
) -> dict[str, Any]:
    """The attribution answer as JSON, each citation pointing at its line and proof."""
    subject = result.mac or (
        f"{result.ip}:{result.port}" if result.port is not None else str(result.ip)
    )

    def hop(h: Any, kind: str) -> dict[str, Any]:
        s = h.session
        if not allowed(s.device):
            return {
                "kind": kind,
                "permitted": False,
                "note": "not permitted: this hop is on a device you may not export",
            }
        cites = []
        for c in h.evidence:
            rel = split_ref(c.file)[1]
            x = extracted.get((rel, c.offset))
            cites.append(
                {
                    "device": c.device,
                    "file": "archive/" + rel if x else c.file,
                    "offset": c.offset,
                    "line_number": x.number if x else None,
                    "line": x.line.decode() if x else c.line,
                    "proof": x.proof_dir if x else None,
                    "verifiable": x is not None,
                }
            )
        return {
            "kind": kind,
            "permitted": True,
            "device": s.device,
            "start": s.start.isoformat() if s.start else None,
            "end": s.end.isoformat() if s.end else None,
            "expires": s.expires.isoformat() if s.expires else None,
            "inner_ip": s.inner_ip,
            "inner_port": s.inner_port,
            "outer_ip": s.outer_ip,
            "outer_port": s.outer_port,
            "mac": s.mac,
            "user": s.user,
            "note": h.note,
            "evidence": cites,
        }

    chains = []
    hidden = False
    for c in result.chains:
        hops = ([c.nat] if c.nat else []) + c.leases + c.logins
        hidden = hidden or any(not allowed(h.session.device) for h in hops)
        # The internal address shows only when a permitted hop carries it (or no NAT hop was
        # needed): a hop on another device must not leak what that device logged.
        known = (c.nat is None or allowed(c.nat.session.device)) or any(
            allowed(h.session.device) and h.session.inner_ip == c.internal_ip
            for h in c.leases + c.logins
        )
        chains.append(
            {
                "internal_ip": c.internal_ip if known else None,
                "internal_port": c.internal_port if known else None,
                "nat": hop(c.nat, "nat") if c.nat else None,
                "leases": [hop(h, "dhcp") for h in c.leases],
                "logins": [hop(h, "hotspot") for h in c.logins],
                "macs": sorted(
                    {h.session.mac for h in c.leases if allowed(h.session.device) and h.session.mac}
                ),
                "users": sorted(
                    {
                        h.session.user
                        for h in c.logins
                        if allowed(h.session.device) and h.session.user
                    }
                ),
            }
        )
    missing = list(result.missing)
    if hidden:
        missing = [
            m
            for m in missing
            if not any(c.internal_ip and c.internal_ip in m for c in result.chains)
        ]
        missing.append("some hops are on devices you may not export: ask an administrator who may")
    return {
        "format": "logmaster-attribution-report/1",
        "subject": subject,
        "ip": result.ip,
        "port": result.port,
        "mac": result.mac,
        "at": result.at.isoformat(),
        "window_s": result.window,
        "ambiguous": result.ambiguous,
        "chains": chains,
        "missing": missing,
    }
