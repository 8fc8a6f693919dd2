"""The casebook PDF, read back with pypdf: records, the signature block with each status, escaping, bytes."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from immunosep.conduct.casebook import Casebook, CasebookRecord
from immunosep.conduct.signatures import SignatureView
from immunosep.report.casebook_pdf import casebook_pdf


def _text(data: bytes) -> str:
    return " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(io.BytesIO(data)).pages)


def _signature(valid: bool, changes: tuple[str, ...] = ()) -> SignatureView:
    return SignatureView(
        id=1,
        kind="casebook",
        pseudonym="S01-0007",
        printed_name="Irene Ivanova",
        username="inv1",
        role="investigator",
        meaning="approved as investigator",
        signed_at="2026-12-06T23:10:00Z",
        components="username+password",
        digest="0" * 64,
        valid=valid,
        status="valid" if valid else "invalidated: record changed after signing",
        invalidated_at=None if valid else "2026-12-07T08:00:00Z",
        changes=changes,
    )


BOOK = Casebook(
    "S01-0007",
    (
        CasebookRecord("patient", "Patient", "Patient", {"age_years": 64, "sex": "male"}),
        CasebookRecord(
            "daily_crf/day-1",
            "Daily CRF",
            "Daily CRF, day 1",
            {"gcs": 14, "ventilated": False, "recorded_by": 3},
        ),
        CasebookRecord(
            "adverse_event/1",
            "Adverse events",
            "Adverse event 1 (onset day 2)",
            {"verbatim": "rash <b>&</b> itch"},
        ),
    ),
)


@pytest.mark.requirement("SIG-01", "SIG-13")
def test_the_pdf_prints_records_and_every_signature_with_its_status() -> None:
    text = _text(casebook_pdf(BOOK, [_signature(True)], trial_code="IMMUNOSEP", usernames={3: "inv1"}))
    assert "Casebook of patient S01-0007" in text and "Trial IMMUNOSEP" in text
    assert "Irene Ivanova (inv1)" in text and "approved as investigator" in text
    assert "2026-12-06T23:10:00Z" in text and "valid" in text and "invalidated" not in text
    assert "gcs: 14" in text and "ventilated: no" in text and "recorded by: inv1" in text
    assert "rash <b>&</b> itch" in text  # markup typed into a record is printed, not interpreted
    assert BOOK.digest in text


@pytest.mark.requirement("SIG-07", "SIG-13")
def test_an_invalidated_signature_says_what_changed_and_an_unsigned_book_says_so() -> None:
    sig = _signature(False, ("Daily CRF, day 1 changed",))
    text = _text(casebook_pdf(BOOK, [sig]))
    assert "invalidated: record changed after signing: Daily CRF, day 1 changed" in text
    assert "Not signed." in _text(casebook_pdf(BOOK, []))


@pytest.mark.requirement("SIG-13")
def test_the_same_records_give_the_same_bytes() -> None:
    assert casebook_pdf(BOOK, [_signature(True)]) == casebook_pdf(BOOK, [_signature(True)])
