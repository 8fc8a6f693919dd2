"""The casebook of one patient as a PDF: every record, then the signature block with each status.

21 CFR 11.50(b): the printed name, the date and time and the meaning of every signature appear on every
human-readable form of the signed record, with whether it still holds (a change after signing invalidates
it, and the block says what changed). The PDF is deterministic (``invariant``: no creation time or random
document id) and its page streams are not compressed, so the same records give the same bytes and the
text can be searched. It carries no arm: the casebook never holds one (``conduct.casebook``).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from immunosep.conduct.casebook import Casebook
from immunosep.conduct.signatures import SignatureView


def _fixed_id(trial_code: str) -> Any:
    """A page callback that fixes the PDF's /ID to one per trial instead of a digest of the content.

    reportlab's invariant /ID is an MD5 of the content, pseudonym included; a fixed one keeps two casebooks
    of equal records byte for byte alike but for what they print (the access sweep compares them).
    """
    digest = hashlib.md5(f"immunosep casebook {trial_code}".encode(), usedforsecurity=False).hexdigest()

    def fix(canvas: Any, _doc: Any) -> None:
        canvas._doc._ID = f"\n[<{digest}><{digest}>]\n".encode("ascii")  # read once, at save

    return fix


def _value(field: str, value: Any, usernames: Mapping[int, str]) -> str:
    if field.endswith("_by") and isinstance(value, int):
        return usernames.get(value, str(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def casebook_pdf(
    book: Casebook,
    signatures: Sequence[SignatureView],
    *,
    trial_code: str = "",
    usernames: Mapping[int, str] | None = None,
) -> bytes:
    """The PDF (bytes) of ``book`` with its ``signatures`` (as checked now) and its digest."""
    names = dict(usernames or {})
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"Casebook {book.pseudonym}",
        author="ImmunoSep platform",
        invariant=1,
        pageCompression=0,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
    )
    story: list[Any] = [
        Paragraph(escape(f"Casebook of patient {book.pseudonym}"), styles["Title"]),
        Paragraph(escape(f"Trial {trial_code}. SHA-256 of the records as printed: {book.digest}"), small),
        Spacer(1, 4 * mm),
        Paragraph("Electronic signatures", styles["Heading2"]),
    ]
    if signatures:
        rows = [["Printed name", "Meaning", "Signed (UTC)", "Status"]]
        for sig in signatures:
            status = "valid" if sig.valid else sig.status
            if sig.changes:
                status += ": " + "; ".join(sig.changes)
            rows.append(
                [
                    Paragraph(escape(f"{sig.printed_name} ({sig.username})"), small),
                    Paragraph(escape(sig.meaning), small),
                    Paragraph(escape(sig.signed_at), small),
                    Paragraph(escape(status), small),
                ]
            )
        table = Table(rows, colWidths=[45 * mm, 40 * mm, 38 * mm, 57 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTSIZE", (0, 0), (-1, 0), 8),
                    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    else:
        story.append(Paragraph("Not signed.", small))
    section = ""
    for record in book.records:
        if record.section != section:
            section = record.section
            story += [Spacer(1, 3 * mm), Paragraph(escape(section), styles["Heading2"])]
        story.append(Paragraph(f"<b>{escape(record.label)}</b>", small))
        fields = "; ".join(f"{k.replace('_', ' ')}: {_value(k, v, names)}" for k, v in record.values.items())
        story.append(Paragraph(escape(fields), small))
    fix = _fixed_id(trial_code)
    doc.build(story, onFirstPage=fix, onLaterPages=fix)
    return out.getvalue()
