"""Daily CRF with SOFA from clinical/, corrections with reasons, and the pharmacist's dosing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from immunosep.conduct import crf, dosing, lock, outcomes, randomization, screening
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry, DailyCrf, DoseRecord, Patient


@pytest.mark.requirement("PROT-SOFA-01", "AUD-01")
def test_sofa_is_computed_from_the_inputs_and_a_correction_needs_a_reason(trial, enroll):
    p = enroll()
    inv = trial.actors["inv1"]
    inputs = crf.DailyInputs(
        pao2_fio2_mmhg=150.0,
        ventilated=True,
        platelets_1e3_ul=90.0,
        bilirubin=1.5,
        map_mmhg=65.0,
        norepinephrine_ug_kg_min=0.2,
        gcs=12,
        creatinine=2.5,
        urine_ml_day=800.0,
        mechanical_ventilation=True,
        vasopressors=True,
    )
    with session_scope(trial.engine) as s:
        rec = crf.record_day(s, inv, p, 1, inputs)
    # SOFA (Vincent 1996): resp 150 ventilated -> 3; plt 90 -> 2; bili 1.5 -> 1; NE 0.2 (> 0.1) -> 4;
    # GCS 12 -> 2; creatinine 2.5 (2.0-3.4) -> 2; urine 800 -> 0
    assert rec.sofa_components == {
        "respiration": 3,
        "coagulation": 2,
        "liver": 1,
        "cardiovascular": 4,
        "cns": 2,
        "renal": 2,
    }
    assert rec.sofa_total == 14 and rec.sofa_missing == ""
    with pytest.raises(ImmunoSepError, match="needs a reason"), session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, inputs)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=15), reason="wrong patient's sheet")
        records = crf.daily_records(s, trial.actors["mon1"], p)
    assert [(r.study_day, r.sofa_total) for r in records] == [(1, 0)]
    assert "respiration" in records[0].sofa_missing


@pytest.mark.requirement("ACC-01", "ACC-05")
def test_a_day_is_refused_for_another_sites_patient_an_unrandomized_one_and_after_the_trial_lock(
    trial, enroll, screening_answers
):
    """The patient, the trial row and the day come from one statement (access.writable_patient); every
    refusal of the separate reads still holds, and nothing is stored."""
    p = enroll()
    inv, inv2, dm = trial.actors["inv1"], trial.actors["inv2"], trial.actors["dm"]
    with session_scope(trial.engine) as s:
        screened = screening.screen(s, inv, screening_answers()).pseudonym
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=15))

    def stored() -> tuple[int, int]:
        with session_scope(trial.engine) as s:
            return len(s.execute(select(DailyCrf)).all()), len(s.execute(select(AuditEntry)).all())

    before = stored()
    unknown = "no patient 'NOPE' among the patients you may access"
    with pytest.raises(AccessDenied) as other_site, session_scope(trial.engine) as s:
        crf.record_day(s, inv2, p, 2, crf.DailyInputs(gcs=15))
    with pytest.raises(AccessDenied) as missing, session_scope(trial.engine) as s:
        crf.record_day(s, inv2, "NOPE", 2, crf.DailyInputs(gcs=15))
    assert str(missing.value) == unknown and str(other_site.value) == unknown.replace("NOPE", p)
    with pytest.raises(ImmunoSepError, match="not randomized"), session_scope(trial.engine) as s:
        crf.record_day(s, inv, screened, 1, crf.DailyInputs(gcs=15))
    assert stored() == before
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
    before = stored()
    with pytest.raises(ImmunoSepError, match=f"patient {p} is locked"), session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=14), reason="late correction")
    assert stored() == before
    with session_scope(trial.engine) as s:
        lock.lock_trial(s, dm)
    before = stored()
    with pytest.raises(ImmunoSepError, match="trial database is locked"), session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=14), reason="after the lock")
    assert stored() == before


@pytest.mark.requirement("PROT-DOSE-02")
def test_the_iv_dose_is_halved_below_30_ml_min_and_every_dose_is_logged(trial, enroll):
    p = enroll(age_years=80, weight_kg=60.0, sex="female")
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(creatinine=0.8))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(creatinine=2.5))
    with session_scope(trial.engine) as s:
        day1 = dosing.day_regimen(s, pharm, p, 1)
        day2 = dosing.day_regimen(s, pharm, p, 2)
        day3 = dosing.day_regimen(s, pharm, p, 3)
    # Cockcroft-Gault: (140-80)*60/(72*0.8)*0.85 = 53.1; /(72*2.5)*0.85 = 17.0 mL/min
    assert day1.crcl_ml_min == pytest.approx(53.125, rel=1e-3)
    assert day2.crcl_ml_min == pytest.approx(17.0, rel=1e-3)
    assert (day3.crcl_ml_min, day3.crcl_study_day) == (day2.crcl_ml_min, 2)  # day 2's carried forward
    assert day1.clearance == "53.1 mL/min (30 mL/min or more: no renal adjustment), from the CRF of day 1"
    assert day3.clearance.endswith("from the CRF of day 2, carried forward (no newer clearance)")
    assert day1.held_routes == day2.held_routes == day3.held_routes == ()
    iv1 = next(d for d in day1.doses if d.route == "iv")
    iv2 = next(d for d in day2.doses if d.route == "iv")
    assert not iv1.renal_adjusted and iv2.renal_adjusted and iv2.dose == pytest.approx(iv1.dose / 2)
    with session_scope(trial.engine) as s:
        dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=False, missed_reason="no access")
        dosing.record_dose(s, pharm, p, 2, "iv", 8, given=True)
    with pytest.raises(ImmunoSepError, match="no sc dose is due on day 2"), session_scope(trial.engine) as s:
        dosing.record_dose(s, pharm, p, 2, "sc", 0, given=True)
    with pytest.raises(ImmunoSepError, match="needs a reason"), session_scope(trial.engine) as s:
        dosing.record_dose(s, pharm, p, 1, "iv", 8, given=False)
    with session_scope(trial.engine) as s:
        log = dosing.administrations(s, inv, p)
        rows = s.execute(select(DoseRecord).order_by(DoseRecord.id)).scalars().all()
    assert [(a.study_day, a.hour, a.route, a.given) for a in log] == [
        (1, 0, "iv", True),
        (1, 0, "sc", False),
        (2, 8, "iv", True),
    ]
    assert rows[2].renal_adjusted and rows[2].crcl_ml_min == pytest.approx(17.0, rel=1e-3)
    assert [r.crcl_study_day for r in rows] == [1, 1, 2]


def _by_arm(trial, enroll, **screening) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """One randomized patient of each arm at S01 (enrolled until both arms are drawn)."""
    by_arm: dict[str, str] = {}
    while len(by_arm) < 2:
        p = enroll(**screening)
        with session_scope(trial.engine) as s:
            by_arm.setdefault(randomization.arm_of(s, trial.actors["pharm1"], p).arm, p)
    return by_arm


@pytest.mark.requirement("PROT-DOSE-02")
def test_the_last_known_clearance_stands_until_a_new_creatinine_is_entered(trial, enroll):
    """Issue 15: a CRF creatinine on day 1 giving CrCl < 30 and no CRF on day 2 halves the day-2 dose
    (it used to be the full 200 mg IV), in both arms (the saline dummy too)."""
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    for arm, p in _by_arm(trial, enroll, ferritin=8000.0, age_years=80, weight_kg=60.0, sex="male").items():
        with session_scope(trial.engine) as s:
            # Cockcroft-Gault (140-80)*60/(72*1.669) = 29.958 mL/min: below 30, though "30.0" to 1 decimal
            crf.record_day(s, inv, p, 1, crf.DailyInputs(creatinine=1.669))
            crf.record_day(s, inv, p, 3, crf.DailyInputs(creatinine=0.8))  # later: never reaches back
            day1 = dosing.day_regimen(s, pharm, p, 1)
            day2 = dosing.day_regimen(s, pharm, p, 2)
            day3 = dosing.day_regimen(s, pharm, p, 3)
            dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
            dosing.record_dose(s, pharm, p, 2, "iv", 8, given=True)
            dosing.record_dose(s, pharm, p, 3, "iv", 16, given=True)
        crcl = 60 * 60 / (72 * 1.669)
        assert day2.crcl_ml_min == pytest.approx(crcl) and day2.crcl_study_day == 1
        assert day2.clearance == (
            "29.96 mL/min (below 30 mL/min: IV dose and volume x 0.5), "
            "from the CRF of day 1, carried forward (no newer clearance)"
        )
        iv1, iv2, iv3 = (next(d for d in r.doses if d.route == "iv") for r in (day1, day2, day3))
        assert iv1 == iv2 and iv2.renal_adjusted and iv2.volume_ml == 10.0, arm
        assert iv2.dose == (100.0 if arm == "precision" else 10.0), arm  # anakinra 100 mg / saline 10 mL
        assert not iv3.renal_adjusted and day3.crcl_study_day == 3
        with session_scope(trial.engine) as s:
            pid = s.execute(select(Patient.id).where(Patient.pseudonym == p)).scalar_one()
            rows = s.execute(
                select(DoseRecord).where(DoseRecord.patient_id == pid).order_by(DoseRecord.study_day)
            ).scalars()
            assert [(r.study_day, r.dose, r.renal_adjusted, r.crcl_study_day) for r in rows] == [
                (1, iv1.dose, True, 1),
                (2, iv2.dose, True, 1),
                (3, iv3.dose, False, 3),
            ]


@pytest.mark.requirement("PROT-DOSE-02", "BLIND-01")
def test_with_no_clearance_known_the_iv_dose_is_held_in_every_arm_alike(trial, enroll):
    """No creatinine on any CRF yet: the regimen warns, the IV injection may be logged as missed but not
    as given (nothing stored), the SC one is not renally adjusted and may be given; the refusal is word
    for word the same in both arms, so it never reveals the arm."""
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    refusals = {}
    for arm, p in _by_arm(trial, enroll).items():
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12))  # a CRF, but no creatinine
            regimen = dosing.day_regimen(s, pharm, p, 1)
        assert (
            regimen.crcl_ml_min is None and regimen.crcl_study_day is None and regimen.held_routes == ("iv",)
        )
        assert regimen.clearance.startswith("no creatinine clearance known on or before day 1")

        def stored(p: str = p) -> list[tuple[int, str, bool]]:
            with session_scope(trial.engine) as s:
                pid = s.execute(select(Patient.id).where(Patient.pseudonym == p)).scalar_one()
                rows = s.execute(select(DoseRecord).where(DoseRecord.patient_id == pid)).scalars()
                return sorted((r.hour, r.route, r.given) for r in rows)

        with pytest.raises(ImmunoSepError) as refused, session_scope(trial.engine) as s:
            dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
        assert refused.value.field == "route" and "cannot be logged as given" in refused.value.message
        refusals[arm] = refused.value.message.replace(p, "P")
        assert stored() == []
        with session_scope(trial.engine) as s:
            assert s.execute(select(Patient.first_dose_at).where(Patient.pseudonym == p)).scalar_one() is None
            dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)
            dosing.record_dose(s, pharm, p, 1, "iv", 0, given=False, missed_reason="no creatinine yet")
        assert stored() == [(0, "iv", False), (0, "sc", True)]
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, creatinine=1.0), reason="creatinine came")
            dosing.record_dose(s, pharm, p, 1, "iv", 8, given=True)
            assert dosing.day_regimen(s, pharm, p, 1).held_routes == ()
        assert stored()[-1] == (8, "iv", True)
    assert refusals["precision"] == refusals["placebo"]
    assert not any(
        word in refusals["precision"].lower() for word in ("anakinra", "saline", "placebo", "interferon")
    )


def test_a_creatinine_without_any_weight_gives_no_clearance(trial, enroll):
    p = enroll(weight_kg=None)
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(creatinine=1.0))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(creatinine=1.2, weight_kg=70.0))
        assert dosing.day_regimen(s, pharm, p, 1).held_routes == ("iv",)
        day3 = dosing.day_regimen(s, pharm, p, 3)
    assert day3.crcl_study_day == 2 and day3.crcl_ml_min == pytest.approx((140 - 64) * 70 / (72 * 1.2))


@pytest.mark.requirement("PROT-ELIG-02")
def test_the_first_dose_must_start_within_72_hours_of_onset(trial, enroll):
    onset = datetime.now(UTC) - timedelta(hours=70)
    p = enroll(sepsis_onset_at=onset)
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], p, 1, crf.DailyInputs(creatinine=1.0))
    with pytest.raises(ImmunoSepError, match="within 72 h"), session_scope(trial.engine) as s:
        dosing.record_dose(
            s, trial.actors["pharm1"], p, 1, "iv", 0, given=True, given_at=onset + timedelta(hours=72)
        )
    with session_scope(trial.engine) as s:
        dosing.record_dose(
            s, trial.actors["pharm1"], p, 1, "iv", 0, given=True, given_at=onset + timedelta(hours=71)
        )


def test_only_the_pharmacist_doses(trial, enroll):
    p = enroll()
    with pytest.raises(AccessDenied, match="may not"), session_scope(trial.engine) as s:
        dosing.record_dose(s, trial.actors["inv1"], p, 1, "iv", 0, given=True)


def test_outcomes_vital_status_discharge_and_infection_state(trial, enroll):
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(
            s, inv, p, icu_discharge_day=9, infection_day15="resolution", last_known_alive_day=90
        )
    with pytest.raises(ImmunoSepError, match="one of"), session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, p, infection_day15="cured")
    with pytest.raises(ImmunoSepError, match="needs a reason"), session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, p, icu_discharge_day=10)
    with pytest.raises(ImmunoSepError, match="before the day of death"), session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, p, death_day=40, reason="death certificate")
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, p, death_day=40, last_known_alive_day=39, reason="death certificate")
        got = outcomes.get_outcome(s, trial.actors["dm"], p)
    assert (got.death_day, got.icu_discharge_day, got.infection_day15) == (40, 9, "resolution")


def test_the_pharmacists_list_holds_the_sites_patients_whose_treatment_runs_today(trial, enroll):
    a, b, elsewhere = enroll("inv1"), enroll("inv1"), enroll("inv2")
    inv, pharm, pharm2 = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["pharm2"]
    with session_scope(trial.engine) as s:
        listed = dosing.patients_on_treatment(s, pharm)
        assert [(t.pseudonym, t.study_day, t.first_dose_logged, t.logged, t.due) for t in listed] == [
            (a, 1, False, 0, 4),  # IV at 0, 8, 16 h and SC at 0 h on day 1 (double dummy: every arm)
            (b, 1, False, 0, 4),
        ]
        assert [t.pseudonym for t in dosing.patients_on_treatment(s, pharm2)] == [elsewhere]
        assert all(t.renal_hold for t in listed)  # no creatinine yet: the IV injection is held
        crf.record_day(s, inv, a, 1, crf.DailyInputs(creatinine=1.0))
        dosing.record_dose(s, pharm, a, 1, "iv", 0, given=True)
        dosing.record_dose(s, pharm, a, 1, "sc", 0, given=False, missed_reason="refused")
        outcomes.record_outcome(s, inv, b, death_day=1)
    with session_scope(trial.engine) as s:
        day1 = dosing.patients_on_treatment(s, pharm)
        assert [(t.pseudonym, t.study_day, t.first_dose_logged, t.logged) for t in day1] == [(a, 1, True, 2)]
        assert not day1[0].renal_hold  # day 1's creatinine, carried forward on the later days below
        first_day = s.execute(select(Patient.first_dose_at).where(Patient.pseudonym == a)).scalar_one()
        day2 = dosing.patients_on_treatment(s, pharm, now=first_day + timedelta(days=1))
        assert [(t.study_day, t.logged, t.due, t.renal_hold) for t in day2] == [
            (2, 0, 3, False)
        ]  # no SC on even days
        last = dosing.patients_on_treatment(s, pharm, now=first_day + timedelta(days=14))
        assert [t.study_day for t in last] == [15]
        assert dosing.patients_on_treatment(s, pharm, now=first_day + timedelta(days=15)) == []
        onset = s.execute(select(Patient.sepsis_onset_at).where(Patient.pseudonym == b)).scalar_one()
        outcomes.record_outcome(s, inv, b, death_day=None, reason="entered in error")
        late = dosing.patients_on_treatment(s, pharm, now=onset + timedelta(hours=71))
        assert [(t.pseudonym, t.first_dose_logged, t.renal_hold) for t in late] == [
            (a, True, False),
            (b, False, True),
        ]
        too_late = dosing.patients_on_treatment(s, pharm, now=onset + timedelta(hours=72))
        assert [t.pseudonym for t in too_late] == [a]  # b's first dose can no longer start
        for role in ("inv1", "mon1", "dsmb", "lab"):
            with pytest.raises(AccessDenied):
                dosing.patients_on_treatment(s, trial.actors[role])


@pytest.mark.requirement("PROT-DOSE-02")
def test_a_creatinine_entered_between_two_doses_of_one_transaction_applies_to_the_next(trial, enroll):
    """A day's regimen is worked out once per patient-day in a transaction (``dosing._REGIMENS``); a CRF
    written in between forgets it, so the next injection is checked against the new clearance in force."""
    p = enroll(age_years=80, weight_kg=60.0, sex="female")
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12))  # no creatinine yet: the IV dose is held
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)
        with pytest.raises(ImmunoSepError, match="cannot be logged as given"):
            dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, creatinine=2.5), reason="creatinine came")
        iv0 = dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, creatinine=0.8), reason="wrong sample")
        (iv8,) = dosing.record_doses(s, pharm, p, 1, [dosing.DoseEntry("iv", 8, given=True)])
    # Cockcroft-Gault (140-80)*60/(72*2.5)*0.85 = 17.0 mL/min, then /(72*0.8)*0.85 = 53.1 mL/min
    assert iv0.renal_adjusted and iv0.crcl_ml_min == pytest.approx(17.0, rel=1e-3)
    assert isinstance(iv8, DoseRecord) and not iv8.renal_adjusted
    assert iv8.crcl_ml_min == pytest.approx(53.125, rel=1e-3)


@pytest.mark.requirement("PROT-DOSE-02", "ACC-01")
def test_a_days_sheet_logged_at_once_is_checked_and_stored_as_one_injection_at_a_time(trial, enroll):
    """``record_doses`` (the virtual trial's pharmacist) refuses and stores exactly what ``record_dose``
    called once per injection does, the renal hold checked at every injection; an error about the
    patient refuses the whole sheet and stores nothing."""
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    onset = datetime.now(UTC) - timedelta(hours=10)
    at = onset + timedelta(hours=2)
    sheet = [
        dosing.DoseEntry("iv", 0, given=True, given_at=at),  # held: no clearance known yet
        dosing.DoseEntry("iv", 0, given=False, missed_reason="no creatinine yet"),
        dosing.DoseEntry("sc", 0, given=True, given_at=at),  # the first dose given: sets first_dose_at
        dosing.DoseEntry("sc", 0, given=True),  # logged just before
        dosing.DoseEntry("iv", 3, given=True),  # not due
        dosing.DoseEntry("iv", 8, given=False),  # missed without a reason
        dosing.DoseEntry("iv", 8, given=False, missed_reason="x" * (dosing.MISSED_REASON_MAX + 1)),
        dosing.DoseEntry("im", 0, given=True),  # no such route
        dosing.DoseEntry("iv", 16, given=False, missed_reason="line occluded"),
    ]
    one, sheet_patient = enroll(sepsis_onset_at=onset), enroll(sepsis_onset_at=onset)
    for p in (one, sheet_patient):
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12))
    singly: list[object] = []
    for e in sheet:
        try:
            with session_scope(trial.engine) as s:
                singly.append(
                    dosing.record_dose(
                        s,
                        pharm,
                        one,
                        1,
                        e.route,
                        e.hour,
                        given=e.given,
                        missed_reason=e.missed_reason,
                        given_at=e.given_at,
                    )
                )
        except ImmunoSepError as exc:
            singly.append(exc)
    with session_scope(trial.engine) as s:
        at_once = dosing.record_doses(s, pharm, sheet_patient, 1, sheet)

    def outcome(r: object, p: str) -> object:
        if isinstance(r, ImmunoSepError):
            return type(r).__name__, r.field, r.message.replace(p, "P")
        assert isinstance(r, DoseRecord)
        return r.route, r.hour, r.given, r.renal_adjusted, r.crcl_ml_min, r.missed_reason  # arms may differ

    assert [outcome(r, one) for r in singly] == [outcome(r, sheet_patient) for r in at_once]
    assert [isinstance(r, DoseRecord) for r in at_once] == [False, True, True] + [False] * 5 + [True]

    def stored(p: str) -> tuple[object, list[tuple[object, ...]]]:
        with session_scope(trial.engine) as s:
            patient = s.execute(select(Patient).where(Patient.pseudonym == p)).scalar_one()
            rows = s.execute(select(DoseRecord).where(DoseRecord.patient_id == patient.id)).scalars()
            return patient.first_dose_at, sorted((r.hour, r.route, r.given, r.missed_reason) for r in rows)

    assert stored(one) == stored(sheet_patient) and stored(one)[0] is not None
    with pytest.raises(AccessDenied), session_scope(trial.engine) as s:  # another site's pharmacist
        dosing.record_doses(s, trial.actors["pharm2"], sheet_patient, 2, [dosing.DoseEntry("sc", 0, True)])
    with pytest.raises(ImmunoSepError, match="treatment days"), session_scope(trial.engine) as s:
        dosing.record_doses(s, pharm, sheet_patient, 99, [dosing.DoseEntry("sc", 0, True)])
    assert stored(sheet_patient) == stored(one)


def test_a_new_day_in_the_transaction_of_a_regimen_is_dosed_from(trial, enroll):
    """A regimen worked out in a transaction is forgotten when a new CRF day is written in it (the day is
    inserted with a Core statement on the session's connection, which no hook sees)."""
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    p = next(iter(_by_arm(trial, enroll).values()))
    with session_scope(trial.engine) as s:
        assert dosing.day_regimen(s, pharm, p, 1).held_routes == ("iv",)  # no creatinine yet
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, creatinine=1.0, weight_kg=70.0))
        assert dosing.day_regimen(s, pharm, p, 1).held_routes == ()
