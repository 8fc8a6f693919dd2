"""Withdrawal with removal of data: nothing of the patient's values is left, the chain still verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from immunosep.conduct import adverse_events, crf, withdrawal
from immunosep.store.audit import verify
from immunosep.store.db import session_scope
from immunosep.store.models import Patient, RandomizationSlot, Withdrawal

MARKER = "ZQXJ-7731-unique-verbatim"


def _db_bytes(url: str) -> bytes:
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.mark.requirement("ERASE-01")
def test_erasure_leaves_no_value_in_any_table_or_the_file_and_keeps_the_slot_used(trial, enroll):
    keep = enroll()
    gone = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, gone, 1, crf.DailyInputs(weight_kg=71.2345, gcs=12))
        adverse_events.record_adverse_event(
            s,
            inv,
            gone,
            onset_day=2,
            term="Pneumonia",
            serious=False,
            relatedness="unrelated",
            expected=True,
            verbatim=MARKER,
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
        adverse_events.record_adverse_event(
            s,
            inv,
            keep,
            onset_day=2,
            term="Sepsis",
            serious=False,
            relatedness="unrelated",
            expected=True,
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
    withdrawal.withdraw_and_erase(trial.engine, inv, gone)
    insp = inspect(trial.engine)
    columns = {t: [c["name"] for c in insp.get_columns(t)] for t in insp.get_table_names()}

    with session_scope(trial.engine) as s:
        assert s.execute(select(Patient.pseudonym)).scalars().all() == [keep]
        w = s.execute(select(Withdrawal)).scalar_one()
        assert (w.pseudonym, w.data_erased) == (gone, True)
        slot = s.get(RandomizationSlot, w.slot_id)
        assert slot is not None and slot.used and slot.patient_id is None
        result = verify(s)
        assert result.ok, result.problems
        assert result.erased_entries > 0
        # no cell of any table holds the marker or the unusual weight
        for table, cols in columns.items():
            for col in cols:
                hit = s.execute(
                    text(
                        f"SELECT count(*) FROM {table} WHERE CAST({col} AS TEXT) LIKE :m OR CAST({col} AS TEXT) LIKE :w"
                    ),
                    {"m": f"%{MARKER}%", "w": "%71.2345%"},
                ).scalar()
                assert hit == 0, f"{table}.{col} still holds the erased patient's value"
        assert s.execute(select(func.count()).select_from(Patient)).scalar() == 1
    if trial.url.startswith("sqlite"):
        raw = _db_bytes(trial.url)
        assert MARKER.encode() not in raw and b"71.2345" not in raw
        assert b"Sepsis" in raw  # the other patient's data is still there


@pytest.mark.requirement("ERASE-03")
def test_withdrawal_without_erasure_keeps_the_data_and_marks_the_patient(trial, enroll):
    p = enroll()
    with session_scope(trial.engine) as s:
        result = withdrawal.withdraw(s, trial.actors["inv1"], p, erase_data=False)
    assert not result.data_erased
    with session_scope(trial.engine) as s:
        assert s.execute(select(Patient.status).where(Patient.pseudonym == p)).scalar() == "withdrawn"


@pytest.mark.requirement("ERASE-01")
def test_a_crash_in_the_middle_of_an_erasure_leaves_the_patient_whole(trial, enroll, monkeypatch):
    import pytest

    from immunosep.store import audit

    p = enroll()

    def crash(*_args, **_kw):
        raise RuntimeError("power cut after the rows were deleted")

    monkeypatch.setattr(audit, "erase_subject", crash)
    with pytest.raises(RuntimeError), session_scope(trial.engine) as s:
        withdrawal.withdraw(s, trial.actors["inv1"], p, erase_data=True)
    with session_scope(trial.engine) as s:
        assert s.execute(select(Patient.status).where(Patient.pseudonym == p)).scalar() == "randomized"
        assert s.execute(select(func.count()).select_from(Withdrawal)).scalar() == 0
        slot = s.execute(
            select(RandomizationSlot).where(RandomizationSlot.patient_id.is_not(None))
        ).scalar_one()
        assert slot.used
        assert verify(s).ok


REASON = "QWV-5521 wrong bed, patient's daughter said so"


@pytest.mark.requirement("ERASE-02")
def test_the_reason_text_of_an_erased_patients_corrections_does_not_survive_erasure(trial, enroll):
    """The reason is free text and may name the patient: erasure drops it (its digest stays in the chain)."""
    from immunosep.store.models import AuditEntry

    keep = enroll()
    gone = enroll()
    inv = trial.actors["inv1"]
    for p in (keep, gone):
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12))
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=13), reason=f"{REASON} ({p})")
    withdrawal.withdraw_and_erase(trial.engine, inv, gone)
    with session_scope(trial.engine) as s:
        reasons = s.execute(select(AuditEntry.reason)).scalars().all()
        assert f"{REASON} ({keep})" in reasons  # the other patient's reason is kept
        assert not any(gone in r for r in reasons)
        assert all(keep in r for r in reasons if "QWV-5521" in r)
        result = verify(s)
        assert result.ok, result.problems
    if trial.url.startswith("sqlite"):
        raw = _db_bytes(trial.url)
        assert f"({gone})".encode() not in raw
