"""The study-wide audit report: filters, site scope, blinding, redaction, CSV and PDF."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from immunosep.conduct import crf, randomization, withdrawal
from immunosep.conduct.audit_report import (
    CSV_COLUMNS,
    REDACTED,
    AuditFilters,
    audit_report,
    to_csv,
)
from immunosep.conduct.blinding import ALLOCATION_TABLES
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.report.audit_pdf import audit_report_pdf
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry, User


def _report(trial, who: str | None = "dm", **filters):  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        return audit_report(s, trial.actors[who] if who else None, AuditFilters(**filters))


@pytest.mark.requirement("AUD-REPORT-01")
def test_filters_by_site_patient_user_and_date_select_exactly_the_matching_entries(trial, enroll) -> None:
    p1, p2 = enroll("inv1"), enroll("inv2")
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p1, 1, crf.DailyInputs(gcs=14))
    everything = _report(trial)
    # Independent count: the entries of the trail, less the allocation tables (dm is blinded).
    with session_scope(trial.engine) as s:
        total = s.execute(
            select(func.count()).where(AuditEntry.table_name.not_in(sorted(ALLOCATION_TABLES)))
        ).scalar()
        inv1_id = s.execute(select(User.id).where(User.username == "inv1")).scalar()
        inv1_entries = s.execute(
            select(func.count()).where(
                AuditEntry.user_id == inv1_id, AuditEntry.table_name.not_in(sorted(ALLOCATION_TABLES))
            )
        ).scalar()
    assert len(everything.rows) == total
    site1 = _report(trial, site="S01")
    assert site1.rows and {r.site for r in site1.rows} == {"S01"}
    assert {r.patient for r in site1.rows} == {p1}
    patient2 = _report(trial, patient=p2.lower())
    assert patient2.rows and {r.patient for r in patient2.rows} == {p2}
    by_inv1 = _report(trial, user="INV1")
    assert len(by_inv1.rows) == inv1_entries and {r.user for r in by_inv1.rows} == {"inv1"}
    today = date.today()
    assert (
        len(_report(trial, date_from=today - timedelta(days=1), date_to=today + timedelta(days=1)).rows)
        == total
    )
    assert _report(trial, date_to=today - timedelta(days=1)).rows == ()
    assert _report(trial, date_from=today + timedelta(days=1)).rows == ()
    both = _report(trial, site="S01", user="inv1", date_from=today, date_to=today + timedelta(days=1))
    assert both.rows and all(r.site == "S01" and r.user == "inv1" for r in both.rows)


@pytest.mark.requirement("AUD-REPORT-02", "BLIND-01")
def test_blinded_readers_never_get_allocation_records_or_sealed_values(trial, enroll) -> None:
    pseudonym = enroll()
    with session_scope(trial.engine) as s:
        arm = randomization.arm_of(s, trial.actors["pharm1"], pseudonym)
    for who in ("dm", "mon1", None):
        report = _report(trial, who)
        assert report.blinded
        assert not {r.record for r in report.rows} & ALLOCATION_TABLES
        text = to_csv(report)
        assert arm.kit_number not in text and "<sealed:" not in text
        assert "precision" not in text.lower() and "placebo" not in text.lower()


@pytest.mark.requirement("AUD-REPORT-02", "ACC-01")
def test_a_monitor_sees_only_the_assigned_sites_and_others_are_refused(trial, enroll) -> None:
    p1, p2 = enroll("inv1"), enroll("inv2")
    mon = _report(trial, "mon1")
    assert mon.rows and {r.site for r in mon.rows} == {"S01"} and {r.patient for r in mon.rows} == {p1}
    with pytest.raises(ImmunoSepError, match="not among the sites"):
        _report(trial, "mon1", site="S02")
    with pytest.raises(AccessDenied):  # the same answer as a patient that does not exist
        _report(trial, "mon1", patient=p2)
    for who in ("inv1", "pharm1", "lab", "dsmb", "admin"):
        with pytest.raises(AccessDenied):
            _report(trial, who)


@pytest.mark.requirement("AUD-REPORT-02", "ACC-02")
def test_password_hashes_session_tokens_and_the_protocol_text_are_redacted(trial) -> None:
    report = _report(trial)
    users = [r for r in report.rows if r.record == "users" and r.action == "insert"]
    assert users and all(f'"password_hash": "{REDACTED}"' in r.new_value for r in users)
    with session_scope(trial.engine) as s:
        hashes = s.execute(select(User.password_hash)).scalars().all()
    text = to_csv(report)
    assert not any(h in text for h in hashes)
    assert "anakinra" not in text.lower()  # the protocol text (it names the drugs) is left out


@pytest.mark.requirement("AUD-REPORT-01")
def test_bad_filters_say_what_to_fix(trial) -> None:
    for filters, message in (
        ({"site": "S99"}, "no site"),
        ({"patient": "S01-9999"}, "no patient"),
        ({"user": "nobody"}, "no user"),
        ({"date_from": date(2026, 2, 1), "date_to": date(2026, 1, 1)}, "ends"),
    ):
        with pytest.raises(ImmunoSepError, match=message):
            _report(trial, **filters)
    with pytest.raises(ImmunoSepError, match="format"), session_scope(trial.engine) as s:
        audit_report(s, trial.actors["dm"], export_format="docx")


@pytest.mark.requirement("AUD-REPORT-01", "ERASE-02")
def test_an_erased_patients_entries_stay_listed_without_their_values(trial, enroll) -> None:
    pseudonym = enroll()
    with session_scope(trial.engine) as s:
        withdrawal.withdraw(s, trial.actors["inv1"], pseudonym, erase_data=True)
    report = _report(trial)
    erased = [r for r in report.rows if r.erased]
    assert erased and all(r.old_value == "" and r.new_value == "" and r.reason == "" for r in erased)
    assert all(r.patient.startswith("(erased patient") for r in erased)
    assert pseudonym not in "".join(r.new_value for r in erased)
    assert not [r for r in _report(trial, "mon1").rows if r.erased]  # outside every monitor's sites


@pytest.mark.requirement("AUD-REPORT-01")
def test_csv_and_pdf_hold_every_entry(trial, enroll) -> None:
    enroll()
    report = _report(trial)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(report.rows)
    assert [int(r["id"]) for r in rows] == [r.id for r in report.rows]
    assert rows[-1]["entry_hash"] == report.rows[-1].entry_hash
    pdf = PdfReader(io.BytesIO(audit_report_pdf(report)))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert f"{len(report.rows)} entries" in text and "Blinded report" in text
    ids_in_pdf = {int(tok) for tok in text.split() if tok.isdigit()}
    assert {r.id for r in report.rows} <= ids_in_pdf
    empty = _report(trial, date_to=date.today() - timedelta(days=1))
    assert "No entries." in PdfReader(io.BytesIO(audit_report_pdf(empty))).pages[0].extract_text()
