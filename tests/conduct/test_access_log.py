"""Every read or export of unblinded data leaves an entry in the audit chain: who, what, when."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from immunosep.conduct import audit_report, dosing, export, lock, randomization, reports, unblinding
from immunosep.conduct.access_log import ACCESS_TABLE, log_access
from immunosep.errors import AccessDenied
from immunosep.store import audit
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry


def _access_entries(trial) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        rows = s.execute(
            select(AuditEntry).where(AuditEntry.table_name == ACCESS_TABLE).order_by(AuditEntry.id)
        )
        out = list(rows.scalars())
        s.expunge_all()
    return out


def _one_new(trial, before: int) -> AuditEntry:  # type: ignore[no-untyped-def]
    entries = _access_entries(trial)
    assert len(entries) == before + 1, [(e.action, e.field) for e in entries]
    return entries[-1]


@pytest.mark.requirement("AUD-ACCESS-01")
def test_the_pharmacists_allocation_regimen_and_list_reads_are_logged(trial, enroll) -> None:
    pseudonym = enroll()
    pharm = trial.actors["pharm1"]
    for what, read in (
        ("see_allocation", lambda s: randomization.arm_of(s, pharm, pseudonym)),
        ("see_regimen", lambda s: dosing.day_regimen(s, pharm, pseudonym, 1)),
        ("list_on_treatment", lambda s: dosing.patients_on_treatment(s, pharm)),
    ):
        before = len(_access_entries(trial))
        with session_scope(trial.engine) as s:
            read(s)
        entry = _one_new(trial, before)
        assert (entry.action, entry.field, entry.user_id) == ("read", what, pharm.user_id)  # type: ignore[attr-defined]
        if what != "list_on_treatment":
            assert entry.row_id == pseudonym and entry.subject_id is not None
        # The entry names no arm and no kit: blinded roles read it in the audit report.
        assert "precision" not in (entry.new_value or "") and "placebo" not in (entry.new_value or "")


@pytest.mark.requirement("AUD-ACCESS-01")
def test_the_dsmb_report_by_arm_is_logged(trial, enroll) -> None:
    enroll()
    before = len(_access_entries(trial))
    with session_scope(trial.engine) as s:
        reports.dsmb_summary(s, trial.actors["dsmb"])
    entry = _one_new(trial, before)
    assert (entry.action, entry.field, entry.user_id) == (
        "read",
        "read_dsmb_report",
        trial.actors["dsmb"].user_id,
    )


@pytest.mark.requirement("AUD-ACCESS-01")
def test_a_refused_read_logs_nothing_and_a_blinded_export_is_not_an_unblinded_one(
    trial, enroll, tmp_path
) -> None:
    pseudonym = enroll()
    before = len(_access_entries(trial))
    with pytest.raises(AccessDenied), session_scope(trial.engine) as s:
        randomization.arm_of(s, trial.actors["inv1"], pseudonym)
    assert len(_access_entries(trial)) == before
    dm = trial.actors["dm"]
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, pseudonym)
        lock.lock_trial(s, dm)
    with session_scope(trial.engine) as s:
        export.export_sdtm(s, dm, tmp_path / "blinded")
    assert len(_access_entries(trial)) == before


@pytest.mark.requirement("AUD-ACCESS-01")
def test_an_unblinded_sdtm_export_is_logged_after_the_lock(trial, enroll, tmp_path) -> None:
    pseudonym = enroll()
    dm = trial.actors["dm"]
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, pseudonym)
        lock.lock_trial(s, dm)
    before = len(_access_entries(trial))
    with session_scope(trial.engine) as s:
        result = export.export_sdtm(s, None, tmp_path / "unblinded", unblinded=True)
    entry = _one_new(trial, before)
    detail = json.loads(entry.new_value or "{}")
    assert (entry.action, entry.field, entry.user_id) == ("export", "export_unblinded", None)
    assert detail["rows"] == result.rows and detail["by"].startswith("command line")
    # The chain still verifies: an access entry changes no row.
    with session_scope(trial.engine, read_only=True) as s:
        assert audit.verify(s).ok


@pytest.mark.requirement("AUD-ACCESS-01")
def test_an_emergency_unblinding_is_in_the_trail_with_who_when_and_why(trial, enroll) -> None:
    pseudonym = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        unblinding.emergency_unblind(s, inv, pseudonym, "anaphylaxis, the treating physician asks")
    with session_scope(trial.engine) as s:
        entry = s.execute(
            select(AuditEntry).where(AuditEntry.table_name == "unblindings", AuditEntry.action == "insert")
        ).scalar_one()
        assert entry.user_id == inv.user_id and "anaphylaxis" in entry.reason


@pytest.mark.requirement("AUD-ACCESS-01", "AUD-REPORT-03")
def test_an_audit_report_export_is_logged_with_its_filters_and_a_preview_is_not(trial, enroll) -> None:
    enroll()
    dm = trial.actors["dm"]
    before = len(_access_entries(trial))
    with session_scope(trial.engine) as s:
        audit_report.audit_report(s, dm, audit_report.AuditFilters(site="S01"), limit=10)
    assert len(_access_entries(trial)) == before
    with session_scope(trial.engine) as s:
        report = audit_report.audit_report(s, dm, audit_report.AuditFilters(site="s01"), export_format="pdf")
    entry = _one_new(trial, before)
    detail = json.loads(entry.new_value or "{}")
    assert (entry.action, entry.field, entry.user_id) == ("export", "audit_report", dm.user_id)
    assert detail == {"entries": len(report.rows), "filters": {"site": "s01"}, "format": "pdf"}


def test_a_read_only_transaction_cannot_read_unlogged(trial, enroll) -> None:
    """A read through a read-only session fails instead of going unlogged (the web marks these routes)."""
    pseudonym = enroll()
    with pytest.raises(DBAPIError), session_scope(trial.engine, read_only=True) as s:
        randomization.arm_of(s, trial.actors["pharm1"], pseudonym)


def test_an_access_action_other_than_read_or_export_is_a_programming_error(trial) -> None:
    with pytest.raises(ValueError, match="read"), session_scope(trial.engine) as s:
        log_access(s, None, "update", "x")  # type: ignore[arg-type]
