"""The daily CRF refuses what the bedside rules refuse: one plausible range per field
(``clinical.units.PLAUSIBLE``), so a stored patient-day never stops the pharmacist's dose later."""

from __future__ import annotations

import re

import pytest

from fixtures.plans import grow_audit_log, plans_of
from immunosep.clinical.renal import creatinine_clearance_ml_min
from immunosep.clinical.units import PLAUSIBLE
from immunosep.conduct import crf, dosing
from immunosep.errors import ImmunoSepError
from immunosep.store.db import session_scope


@pytest.mark.parametrize(
    ("inputs", "field", "fragment"),
    [
        # the seed-3 demo: 0.05 mg/dL was stored by the CRF and refused by Cockcroft-Gault at dosing
        ({"creatinine": 0.05}, "creatinine_mg_dl", "creatinine_mg_dl = 0.05 is not plausible (below 0.1"),
        ({"creatinine": 150.0}, "creatinine_mg_dl", "looks like umol/L"),
        ({"bilirubin": 0.9, "bilirubin_unit": "umol/L"}, "bilirubin_mg_dl", "looks like mg/dL"),
        ({"pao2_fio2_mmhg": 12.0}, "pao2_fio2_mmhg", "looks like kPa"),
        ({"weight_kg": 2000.0}, "weight_kg", "above 400"),
    ],
)
def test_an_implausible_value_is_refused_with_its_field_and_nothing_is_stored(
    trial, enroll, inputs, field, fragment
):
    p = enroll()
    with pytest.raises(ImmunoSepError, match=re.escape(fragment)) as info, session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(gcs=15, **inputs))
    assert info.value.field == field
    with session_scope(trial.engine) as s:
        assert crf.daily_records(s, trial.actors["inv1"], p) == []


def test_what_the_crf_stores_the_pharmacist_can_dose_with(trial, enroll):
    """At both ends of the creatinine range the CRF and Cockcroft-Gault agree."""
    p = enroll()
    low, high = PLAUSIBLE["creatinine_mg_dl"].low, PLAUSIBLE["creatinine_mg_dl"].high
    for day, creatinine in ((1, low), (2, high)):
        with session_scope(trial.engine) as s:
            crf.record_day(
                s,
                trial.actors["inv1"],
                p,
                day,
                crf.DailyInputs(creatinine=creatinine, creatinine_unit="mg/dL", weight_kg=70.0),
            )
        with session_scope(trial.engine) as s:
            regimen = dosing.day_regimen(s, trial.actors["pharm1"], p, day)
        # the enrolled patient: 64-year-old man (tests/conftest.py), 70 kg on the CRF
        assert regimen.crcl_ml_min == pytest.approx(creatinine_clearance_ml_min(64, 70.0, "male", creatinine))


def test_si_units_on_the_form_are_stored_as_given_and_scored_converted(trial, enroll):
    p = enroll()
    with session_scope(trial.engine) as s:
        rec = crf.record_day(
            s,
            trial.actors["inv1"],
            p,
            1,
            crf.DailyInputs(
                creatinine=442.0, creatinine_unit="umol/L", bilirubin=205.2, bilirubin_unit="umol/L"
            ),
        )
    assert (rec.inputs.creatinine, rec.inputs.creatinine_unit) == (442.0, "umol/L")
    assert (rec.sofa_components["renal"], rec.sofa_components["liver"]) == (4, 4)  # 5.0 and 12.0 mg/dL


def test_a_value_without_its_unit_is_read_as_mg_dl_unless_it_looks_like_umol_l(trial, enroll):
    p = enroll()
    inv = trial.actors["inv1"]
    with pytest.raises(ImmunoSepError, match="without a unit") as info, session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(bilirubin=25.0))
    assert info.value.field == "bilirubin_mg_dl"
    with session_scope(trial.engine) as s:
        rec = crf.record_day(s, inv, p, 1, crf.DailyInputs(bilirubin=1.5, creatinine=1.0))
        assert (rec.inputs.bilirubin_unit, rec.inputs.creatinine_unit) == ("mg/dL", "mg/dL")  # stored stated
        rec = crf.record_day(s, inv, p, 2, crf.DailyInputs(bilirubin=25.0, bilirubin_unit="mg/dL"))
        assert rec.sofa_components["liver"] == 4


def test_a_new_day_is_audited_with_every_column_as_stored_and_the_trail_verifies(trial, enroll):
    """A new patient-day is inserted with a Core statement (``crf._insert_day``), not through the flush
    hook: its audit entry must still be the hook's, every column as stored, and ``audit verify`` pass."""
    import json

    from sqlalchemy import select

    from immunosep.store.audit import trail_text, verify
    from immunosep.store.models import AuditEntry, DailyCrf

    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=14, creatinine=1.3, ventilated=True, weight_kg=70))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(bilirubin=30.0, bilirubin_unit="umol/L"))
    with session_scope(trial.engine) as s:
        rows = s.execute(select(DailyCrf).order_by(DailyCrf.study_day)).scalars().all()
        assert [r.study_day for r in rows] == [1, 2]
        columns = [c.name for c in DailyCrf.__table__.columns]
        for row in rows:
            entry = s.execute(
                select(AuditEntry).where(
                    AuditEntry.table_name == "daily_crf", AuditEntry.row_id == str(row.id)
                )
            ).scalar_one()
            assert (entry.action, entry.field, entry.old_value) == ("insert", "*", None)
            assert (entry.user_id, entry.reason, entry.subject_id) == (
                inv.user_id,
                "daily CRF",
                row.patient_id,
            )
            assert json.loads(entry.new_value) == {c: trail_text(getattr(row, c)) for c in columns}
        assert verify(s).ok


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_writes_statement_keeps_one_generic_plan_on_postgresql(engine):
    # Planned afresh at every write it cost PostgreSQL 0.3-0.4 ms, three times its execution, under the lock.
    grow_audit_log(engine)
    generic, custom = plans_of(engine, crf._PATIENT_DAY, {"pseudonym": "S01-0001", "study_day": 3})
    assert (generic, custom) == (6, 5)
