"""The audit report page, its downloads and the API; the pharmacist's and the DSMB's reads are logged."""

from __future__ import annotations

import csv
import io

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from immunosep.conduct.access_log import ACCESS_TABLE
from immunosep.store.db import make_engine, session_scope
from immunosep.store.models import AuditEntry


def _access(db_url: str) -> list[tuple[str, str, str]]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            rows = s.execute(
                select(AuditEntry.action, AuditEntry.field, AuditEntry.row_id)
                .where(AuditEntry.table_name == ACCESS_TABLE)
                .order_by(AuditEntry.id)
            ).all()
            return [tuple(r) for r in rows]
    finally:
        engine.dispose()


@pytest.mark.requirement("AUD-REPORT-01", "AUD-REPORT-03")
def test_the_data_manager_filters_the_page_and_downloads_csv_and_pdf(login, api_enroll, db_url) -> None:
    pseudonym = api_enroll()
    dm = login("dm")
    page = dm.get("/audit", params={"site": "S01", "patient": pseudonym})
    assert page.status_code == 200 and 'data-testid="audit-report"' in page.text and pseudonym in page.text
    assert _access(db_url) == []  # a preview is not an export
    r = dm.get("/audit/download", params={"format": "csv", "patient": pseudonym})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows and {row["patient"] for row in rows} == {pseudonym}
    pdf = dm.get("/audit/download", params={"format": "pdf", "site": "S01"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "Audit trail report" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert _access(db_url) == [("export", "audit_report", ""), ("export", "audit_report", "")]
    # The API: JSON (logged too), and a bad filter is a clear 4xx.
    api = dm.get("/api/audit", params={"patient": pseudonym})
    assert api.status_code == 200 and {e["patient"] for e in api.json()["entries"]} == {pseudonym}
    assert len(_access(db_url)) == 3
    assert dm.get("/api/audit", params={"site": "S99"}).status_code == 422
    assert dm.get("/api/audit", params={"from": "yesterday"}).status_code == 422
    bad = dm.get("/audit", params={"from": "2026-13-01"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text


@pytest.mark.requirement("AUD-REPORT-02", "ACC-01")
def test_only_monitors_and_data_managers_get_the_report(login) -> None:
    for who in ("inv1", "pharm1", "lab", "dsmb", "admin"):
        c = login(who)
        assert c.get("/api/audit").status_code == 403
        assert c.get("/audit/download").status_code == 403
        assert 'href="/audit"' not in c.get("/bedside").text
    assert 'href="/audit"' in login("mon1").get("/bedside").text


@pytest.mark.requirement("AUD-ACCESS-01")
def test_the_pharmacy_pages_and_the_dsmb_report_log_their_reads(login, api_enroll, db_url) -> None:
    pseudonym = api_enroll()
    pharm = login("pharm1")
    assert pharm.get(f"/api/patients/{pseudonym}/regimen/1").status_code == 200
    assert pharm.get("/api/pharmacy/on-treatment").status_code == 200
    assert pharm.get("/pharmacy", params={"pseudonym": pseudonym}).status_code == 200
    assert login("dsmb").get("/api/dsmb").status_code == 200
    assert login("dsmb").get("/dsmb").status_code == 200
    assert _access(db_url) == [
        ("read", "see_regimen", pseudonym),
        ("read", "list_on_treatment", ""),
        ("read", "see_regimen", pseudonym),
        ("read", "list_on_treatment", ""),
        ("read", "read_dsmb_report", ""),
        ("read", "read_dsmb_report", ""),
    ]
    # Reads of blinded data stay read-only and unlogged.
    inv = login("inv1")  # (a login is itself audited)
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            before = s.execute(select(func.count()).select_from(AuditEntry)).scalar()
        assert inv.get(f"/api/patients/{pseudonym}/doses").status_code == 200
        with session_scope(engine) as s:
            assert s.execute(select(func.count()).select_from(AuditEntry)).scalar() == before
    finally:
        engine.dispose()
