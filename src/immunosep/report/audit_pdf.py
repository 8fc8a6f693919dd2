"""The audit report as PDF (reportlab, no browser needed): header, filters, one table row per entry.

A4 landscape (277 mm of table between the margins); every page repeats the table's header and carries the trial, the page number and the time
the report was made, so a printed page is never anonymous. Long values wrap inside their cell. The rows
are :class:`immunosep.conduct.audit_report.AuditReport`'s, already without what blinding and redaction
withhold.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from immunosep.conduct.audit_report import AuditReport

#: Columns of the PDF table: (header, attribute, width in mm). Hash shortened to its first 12 hex digits.
_COLUMNS = (
    ("#", "id", 10),
    ("When (UTC)", "at", 27),
    ("User", "user", 22),
    ("Site", "site", 9),
    ("Patient", "patient", 18),
    ("Record", "record", 22),
    ("Row", "row_id", 9),
    ("Action", "action", 12),
    ("Field", "field", 20),
    ("Old value", "old_value", 40),
    ("New value", "new_value", 40),
    ("Reason", "reason", 30),
    ("Hash", "entry_hash", 18),
)
#: Characters of a value shown in a cell; the CSV export has the whole value.
CELL_MAX_CHARS = 600


def _cell(value: object, style: ParagraphStyle) -> Paragraph:
    text = str(value)
    if len(text) > CELL_MAX_CHARS:
        text = text[:CELL_MAX_CHARS] + " [...]"
    # Break long JSON without spaces: a zero-width space after commas lets the cell wrap.
    return Paragraph(escape(text).replace(",", ",\u200b"), style)


def audit_report_pdf(report: AuditReport) -> bytes:
    """The report as PDF bytes."""
    styles = getSampleStyleSheet()
    small = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=6.5, leading=8)
    head = ParagraphStyle("head", parent=small, fontName="Helvetica-Bold")
    made = f"{report.generated_at:%Y-%m-%d %H:%M:%S} UTC"
    story: list[object] = [
        Paragraph(escape(f"Audit trail report - trial {report.trial}"), styles["Title"]),
        Paragraph(
            escape(
                f"Made {made} by {report.generated_by}. {len(report.rows)} entries. "
                + (
                    "Blinded report: records of allocations are left out. "
                    if report.blinded
                    else "Unblinded report. "
                )
                + "Sealed values and secrets (password hashes, session tokens) are never shown."
            ),
            styles["BodyText"],
        ),
    ]
    described = report.filters.described()
    filters = "; ".join(f"{k}: {v}" for k, v in described.items()) if described else "none (whole study)"
    story += [Paragraph(escape(f"Filters: {filters}"), styles["BodyText"]), Spacer(1, 4 * mm)]
    data = [[Paragraph(h, head) for h, _, _ in _COLUMNS]]
    for row in report.rows:
        cells = []
        for _, attr, _ in _COLUMNS:
            value = getattr(row, attr)
            if attr == "entry_hash":
                value = value[:12]
            elif attr == "at":
                value = value[:19].replace("T", " ")
            elif attr == "action" and row.erased:
                value = f"{value} (erased)"
            cells.append(_cell(value, small))
        data.append(cells)
    if not report.rows:
        data.append([Paragraph("No entries.", small)] + [""] * (len(_COLUMNS) - 1))
    table = LongTable(data, colWidths=[w * mm for _, _, w in _COLUMNS], repeatRows=1)
    spans = [] if report.rows else [("SPAN", (0, 1), (-1, 1))]
    table.setStyle(
        TableStyle(
            [
                *spans,
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    story.append(table)

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(
            10 * mm, 6 * mm, f"ImmunoSep audit trail report - trial {report.trial} - made {made}"
        )
        canvas.drawRightString(287 * mm, 6 * mm, f"page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=landscape(A4),
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=12 * mm,
        title=f"Audit trail report {report.trial}",
        author=report.generated_by,
    )
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
