"""The PDF of the monthly compliance report (reportlab): Turkish first, then English, charts.

:func:`render_pdf` turns the JSON figures of :func:`logmaster.compliance.reports.build_report`
into an A4 document: a summary, a coverage chart (the devices with the lowest coverage), stamps
by TSA (pie) and violations opened / resolved by kind (bars), then every device in a table,
the violations with their resolution, and the retention settings (any below 730 days named
with who set it and why). DejaVu Sans (Debian's ``fonts-dejavu-core``) is embedded so Turkish
letters render and ``pdftotext`` extracts them; without it :class:`ReportError` says which
package to install.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from logmaster.compliance.reports import ReportError
from logmaster.compliance.violations import TEXTS

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
CHART_DEVICES = 25  # the coverage chart shows the devices with the lowest coverage


def _font_file(name: str) -> Path:
    for folder in FONT_DIRS:
        path = folder / f"{name}.ttf"
        if path.is_file():
            return path
    raise ReportError(
        f"font {name}.ttf not found in {', '.join(str(d) for d in FONT_DIRS)}: install the "
        "Debian package fonts-dejavu-core (scripts/system-deps.sh); the report needs it to "
        "print Turkish letters"
    )


def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    pdfmetrics.registerFont(TTFont(FONT, str(_font_file(FONT))))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(_font_file(FONT_BOLD))))


def _dmy(iso: str | None) -> str:
    if not iso:
        return "-"
    return dt.date.fromisoformat(iso[:10]).strftime("%d.%m.%Y")


def _local(iso: str | None, zone: ZoneInfo) -> str:
    if not iso:
        return "-"
    return dt.datetime.fromisoformat(iso).astimezone(zone).strftime("%d.%m.%Y %H:%M")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"%{value * 100:.1f}"


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f}"


def render_pdf(report: dict[str, Any]) -> bytes:
    """The report as a PDF (A4, Turkish first then English, charts, every device)."""
    from xml.sax.saxutils import escape

    from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
    from reportlab.graphics.charts.piecharts import Pie
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        LongTable,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        TableStyle,
    )

    _register_fonts()
    zone = ZoneInfo(report["timezone"])
    body = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9.5)
    h1 = ParagraphStyle("h1", parent=body, fontName=FONT_BOLD, fontSize=16, leading=20)
    h2 = ParagraphStyle(
        "h2", parent=body, fontName=FONT_BOLD, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4
    )
    year, month = report["month"].split("-")
    t = report["totals"]
    org = report["organisation"] or "-"
    where = report["location"] or "Tüm konumlar / All locations"

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text), style)

    story: list[Any] = [
        p(f"Aylık 5651 Uyum Raporu / Monthly Law 5651 Compliance Report — {month}.{year}", h1),
        Spacer(1, 3 * mm),
        p(f"Kuruluş / Organisation: {org}"),
        p(f"Konum / Location: {where}"),
        p(
            f"Dönem / Period: {_dmy(report['period']['from'])} – {_dmy(report['period']['to'])}"
            + (
                ""
                if report["complete"]
                else f" (kapsanan / covered until {_dmy(report['covered_until'])})"
            )
        ),
        p(
            f"Oluşturulma / Generated: {_local(report['generated_at'], zone)} ({zone.key}), "
            f"LogMaster {report['generator']['version']}, {report['generator']['node']}"
        ),
        Spacer(1, 4 * mm),
        p("Özet / Summary", h2),
        p(
            f"{t['devices']} cihaz, {t['expected_days']} cihaz-gün, {t['sealed_days']} "
            f"mühürlü gün: kapsama {_pct(t['coverage'])}. {t['lines']:,} satır; "
            f"sessizlik boşlukları toplam {_hours(t['gap_seconds'])} saat; "
            f"{t['violations']} ihlal."
        ),
        p(
            f"{t['devices']} devices, {t['expected_days']} device-days, {t['sealed_days']} "
            f"sealed: coverage {_pct(t['coverage'])}. {t['lines']:,} lines; silence gaps "
            f"{_hours(t['gap_seconds'])} hours in all; {t['violations']} violations."
        ),
    ]
    stamp = report["stamp"]
    acc = "akredite / accredited" if stamp["accredited"] else ("akredite DEĞİL / NOT accredited")
    story.append(
        p(
            f"Bu rapor operatör anahtarıyla imzalanmış (.p7s) ve zaman damgalıdır (.tsr, "
            f"{stamp['tsa']}, {acc}). This report is signed with the operator key (.p7s) and "
            f"time-stamped (.tsr, {stamp['tsa']}, {acc}).",
            small,
        )
    )
    devices = report["devices"]

    # Chart 1: the devices with the lowest coverage.
    worst = sorted(
        (d for d in devices if d["coverage"] is not None),
        key=lambda d: (d["coverage"], d["device"]),
    )[:CHART_DEVICES]
    if worst:
        height = 40 + 14 * len(worst)
        drawing = Drawing(170 * mm, height)
        chart = HorizontalBarChart()
        chart.x, chart.y = int(35 * mm), 20
        chart.width, chart.height = int(120 * mm), height - 35
        chart.data = [[round(d["coverage"] * 100, 1) for d in reversed(worst)]]
        chart.categoryAxis.categoryNames = [d["device"] for d in reversed(worst)]
        chart.categoryAxis.labels.fontName = FONT
        chart.categoryAxis.labels.fontSize = 7
        chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, 100, 20
        chart.valueAxis.labels.fontName = FONT
        chart.valueAxis.labels.fontSize = 7
        chart.bars[0].fillColor = colors.HexColor("#2f6f9f")
        drawing.add(chart)
        drawing.add(
            String(
                0,
                height - 10,
                "Kapsama % (en düşük) / Coverage % (lowest)",
                fontName=FONT_BOLD,
                fontSize=9,
            )
        )
        story += [p("Kapsama / Coverage", h2), drawing]

    # Chart 2: stamps by TSA; chart 3: violations by kind.
    charts = Drawing(170 * mm, 70 * mm)
    by_tsa = report["stamps_by_tsa"]
    if by_tsa:
        pie = Pie()
        pie.x, pie.y, pie.width, pie.height = (int(v * mm) for v in (10, 8, 45, 45))
        pie.data = [e["days"] for e in by_tsa]
        pie.labels = [
            f"{e['tsa']} ({'akredite' if e['accredited'] else 'dahili/built-in'}) {e['days']}"
            for e in by_tsa
        ]
        pie.simpleLabels = 1
        pie.slices.fontName = FONT
        pie.slices.fontSize = 7
        palette = ["#2f6f9f", "#c0504d", "#9bbb59", "#8064a2", "#f79646"]
        for i in range(len(by_tsa)):
            pie.slices[i].fillColor = colors.HexColor(palette[i % len(palette)])
        charts.add(pie)
    charts.add(
        String(
            0, 64 * mm, "Zaman damgası / Stamps by TSA (gün/days)", fontName=FONT_BOLD, fontSize=9
        )
    )
    kinds = sorted(report["violation_summary"])
    if kinds:
        bars = VerticalBarChart()
        bars.x, bars.y, bars.width, bars.height = (int(v * mm) for v in (95, 15, 70, 42))
        bars.data = [
            [report["violation_summary"][k]["opened"] for k in kinds],
            [report["violation_summary"][k]["resolved"] for k in kinds],
        ]
        bars.categoryAxis.categoryNames = [k.replace("_", " ") for k in kinds]
        bars.categoryAxis.labels.fontName = FONT
        bars.categoryAxis.labels.fontSize = 6
        bars.categoryAxis.labels.angle = 20
        bars.categoryAxis.labels.boxAnchor = "ne"
        bars.valueAxis.labels.fontName = FONT
        bars.valueAxis.labels.fontSize = 7
        bars.valueAxis.valueMin = 0
        bars.bars[0].fillColor = colors.HexColor("#c0504d")
        bars.bars[1].fillColor = colors.HexColor("#9bbb59")
        charts.add(bars)
    else:
        charts.add(String(95 * mm, 35 * mm, "İhlal yok / No violations", fontName=FONT, fontSize=9))
    for y, text in ((64, "İhlaller: açılan / giderilen"), (60, "Violations: opened / resolved")):
        charts.add(String(90 * mm, y * mm, text, fontName=FONT_BOLD, fontSize=9))
    story.append(charts)

    # The device table: every device.
    story += [PageBreak(), p("Cihazlar / Devices", h2)]
    head = [
        "Cihaz\nDevice",
        "Konum\nLocation",
        "Gün\nDays",
        "Mühürlü\nSealed",
        "Kapsama\nCoverage",
        "Satır\nLines",
        "Boşluk (sa)\nGaps (h)",
        "Damga\nStamps",
        "Doğrulama\nVerified",
        "Saklama\nRetention",
    ]
    table: list[list[Any]] = [[p(h, small) for h in head]]
    for d in devices:
        stamps = ", ".join(
            f"{e['tsa']}{'' if e['accredited'] else '*'}: {e['days']}" for e in d["stamps"]
        )
        verified = ", ".join(f"{k} {n}" for k, n in sorted(d["verified"].items())) or "-"
        ret = d["retention"]
        retention = f"{ret['days']} gün/days" + (" ⚠" if ret["below_minimum"] else "")
        label = d["device"] + (f" ({d['name']})" if d["name"] else "")
        table.append(
            [
                p(x, small)
                for x in (
                    label,
                    d["location"] or "-",
                    str(d["expected_days"]),
                    str(d["sealed_days"]),
                    _pct(d["coverage"]),
                    f"{d['lines']:,}",
                    _hours(d["gaps"]["seconds"]),
                    stamps or "-",
                    verified,
                    retention,
                )
            ]
        )
    widths = [28, 22, 10, 15, 16, 17, 16, 24, 17, 17]
    grid = LongTable(table, colWidths=[w * mm for w in widths], repeatRows=1)
    grid.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6ee")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    story += [
        grid,
        p("* dahili zaman damgası, akredite değil / built-in TSA, not accredited", small),
    ]

    # Violations and their resolution.
    story.append(p("İhlaller ve giderilmeleri / Violations and their resolution", h2))
    if not report["violations"]:
        story.append(p("Bu dönemde ihlal yok. / No violations in this period."))
    else:
        vt: list[list[Any]] = [
            [
                p(h, small)
                for h in (
                    "Tür / Kind",
                    "Konu / Subject",
                    "Önem / Severity",
                    "Açıldı / Opened",
                    "Giderildi / Resolved",
                    "Açıklama",
                )
            ]
        ]
        for v in report["violations"]:
            title, title_tr = TEXTS.get(v["kind"], (v["kind"], v["kind"]))
            vt.append(
                [
                    p(x, small)
                    for x in (
                        f"{title_tr} / {title}",
                        v["subject"],
                        v["severity"],
                        _local(v["opened_at"], zone),
                        _local(v["resolved_at"], zone),
                        f"{v['message_tr']} — {v['message']}",
                    )
                ]
            )
        vgrid = LongTable(vt, colWidths=[w * mm for w in (28, 24, 17, 21, 21, 75)], repeatRows=1)
        vgrid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde6ee")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        story.append(vgrid)

    # Retention.
    ret = report["retention"]
    story.append(p("Saklama süresi / Retention", h2))
    story.append(
        p(
            f"Varsayılan {ret['default_days']} gün, yasal alt sınır {ret['minimum_days']} gün. "
            f"Default {ret['default_days']} days, legal minimum {ret['minimum_days']} days."
        )
    )
    short = [d for d in devices if d["retention"]["below_minimum"]]
    for d in short:
        r = d["retention"]
        story.append(
            p(
                f"⚠ {d['device']}: {r['days']} gün/days — alt sınırın altında, açıkça izin "
                f"verildi / below the minimum, explicitly allowed; {r['set_by'] or '-'}, "
                f"{_local(r['set_at'], zone)}; gerekçe / reason: {r['reason'] or '-'}"
            )
        )
    if not short:
        story.append(p("Hiçbir cihaz alt sınırın altında değil. / No device is below the minimum."))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(
            15 * mm,
            10 * mm,
            f"LogMaster — {report['month']} — {where} — sayfa / page {doc.page}",
        )
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=14 * mm,
        bottomMargin=16 * mm,
        title=f"LogMaster compliance report {report['month']}",
        author=report["organisation"] or "LogMaster",
        invariant=1,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return out.getvalue()
