"""Automatic edit checks: range (soft limits), cross-field and missed-visit checks open queries by themselves,
on save and in the sweep, once per finding, and close them when the data are corrected (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from immunosep.clinical.units import BILIRUBIN_UMOL_L_PER_MG_DL, PLAUSIBLE
from immunosep.conduct import adverse_events, crf, dosing, edit_checks, outcomes, queries
from immunosep.errors import AccessDenied
from immunosep.protocol.loader import default_protocol
from immunosep.store.db import session_scope
from immunosep.store.models import Patient


def _auto(s, actor, p=None):  # type: ignore[no-untyped-def]
    return [q for q in queries.list_queries(s, actor, type="automatic") if p is None or q.pseudonym == p]


def _open(s, actor, p=None):  # type: ignore[no-untyped-def]
    return sorted((q.check_id, q.study_day) for q in _auto(s, actor, p) if q.status != "closed")


def test_every_check_has_one_id_and_the_soft_limits_are_inside_the_plausible_ranges() -> None:
    ids = [c.id for c in edit_checks.CHECKS]
    assert len(ids) == len(set(ids)) and all(
        c.kind in ("range", "cross-field", "missed visit") for c in edit_checks.CHECKS
    )
    m = default_protocol().monitoring
    for _, name in edit_checks.RANGE_ITEMS.values():
        low, high = m.soft_limits[name]
        plausible = PLAUSIBLE[name]
        assert plausible.low <= low < high <= plausible.high, name  # tighter than the refusal


@pytest.mark.requirement("QRY-03", "QRY-04", "QRY-07", "QRY-08")
def test_a_value_outside_its_soft_limit_opens_one_query_on_save_that_closes_when_corrected(trial, enroll):
    p = enroll()
    inv, dm = trial.actors["inv1"], trial.actors["dm"]
    low, _ = default_protocol().monitoring.soft_limits["platelets_1e3_ul"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=low - 1, gcs=14))
    with session_scope(trial.engine) as s:
        (q,) = _auto(s, dm, p)
        assert (q.check_id, q.table_name, q.field, q.study_day, q.status) == (
            "RNG-02",
            "daily_crf",
            "platelets_1e3_ul",
            1,
            "open",
        )
        assert q.type == "automatic" and f"platelets {low - 1:g} x10^3/uL" in q.text
    # saved again with another unusual value on the same item: still one query (idempotent per check/record)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=low - 2, gcs=14), reason="re-checked")
    with session_scope(trial.engine) as s:
        assert len([x for x in _auto(s, dm, p) if x.status != "closed"]) == 1
    # a value at the limit itself is inside; the correction closes the query, with the reason
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=low, gcs=14), reason="typo")
    with session_scope(trial.engine) as s:
        (q,) = _auto(s, dm, p)
        assert q.status == "closed" and "edit check passes" in q.close_reason
    # the same unusual value entered again is asked again (a query closed by its check was not an answer)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=low - 1, gcs=14), reason="re-entered")
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("RNG-02", 1)]


@pytest.mark.requirement("QRY-04")
def test_range_checks_read_bilirubin_and_creatinine_in_the_unit_entered(trial, enroll):
    p = enroll()
    inv, dm = trial.actors["inv1"], trial.actors["dm"]
    _, high = default_protocol().monitoring.soft_limits["bilirubin_mg_dl"]
    above = (high + 1) * BILIRUBIN_UMOL_L_PER_MG_DL  # umol/L
    below = (high - 1) * BILIRUBIN_UMOL_L_PER_MG_DL
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(bilirubin=below, bilirubin_unit="umol/L"))
        crf.record_day(s, inv, p, 2, crf.DailyInputs(bilirubin=above, bilirubin_unit="umol/L"))
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("RNG-03", 2)]


@pytest.mark.requirement("QRY-05")
def test_cross_field_checks_of_one_day(trial, enroll):
    p = enroll()
    inv, dm = trial.actors["inv1"], trial.actors["dm"]
    pf_min = default_protocol().monitoring.pf_unventilated_min_mmhg
    with session_scope(trial.engine) as s:
        # PaO2/FiO2 below the limit without ventilation
        crf.record_day(s, inv, p, 1, crf.DailyInputs(pao2_fio2_mmhg=pf_min - 10))
        # ventilated for SOFA, not under organ support; a vasopressor dose without the box
        crf.record_day(
            s,
            inv,
            p,
            2,
            crf.DailyInputs(pao2_fio2_mmhg=pf_min - 10, ventilated=True, norepinephrine_ug_kg_min=0.2),
        )
        # consistent day: no query
        crf.record_day(
            s,
            inv,
            p,
            3,
            crf.DailyInputs(
                pao2_fio2_mmhg=pf_min - 10,
                ventilated=True,
                mechanical_ventilation=True,
                norepinephrine_ug_kg_min=0.2,
                vasopressors=True,
            ),
        )
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("XF-01", 1), ("XF-02", 2), ("XF-03", 2)]
    with session_scope(trial.engine) as s:
        crf.record_day(
            s,
            inv,
            p,
            2,
            crf.DailyInputs(
                pao2_fio2_mmhg=pf_min - 10,
                ventilated=True,
                mechanical_ventilation=True,
                norepinephrine_ug_kg_min=0.2,
                vasopressors=True,
            ),
            reason="organ support completed",
        )
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("XF-01", 1)]


@pytest.mark.requirement("QRY-05", "QRY-08")
def test_records_after_the_day_of_death_are_queried_and_the_corrected_death_day_closes_them(trial, enroll):
    p = enroll()
    inv, dm, pharm = trial.actors["inv1"], trial.actors["dm"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(creatinine=1.0))
        crf.record_day(s, inv, p, 4, crf.DailyInputs(gcs=10))
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)
        dosing.record_dose(s, pharm, p, 3, "sc", 0, given=True)
        adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=4,
            term="Anaemia",
            serious=False,
            relatedness="unrelated",
            expected=True,
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
        outcomes.record_outcome(s, inv, p, death_day=2, last_known_alive_day=1)
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("XF-04", 4), ("XF-05", 4), ("XF-06", None)]
        texts = {q.check_id: q.text for q in _auto(s, dm, p)}
        assert "given on day 3, after the day of death (day 2)" in texts["XF-06"]
    # a CRF entered later, after the recorded death, is queried on save too
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 5, crf.DailyInputs(gcs=10))
    with session_scope(trial.engine) as s:
        assert ("XF-04", 5) in _open(s, dm, p)
        outcomes.record_outcome(s, inv, p, death_day=6, reason="death day misread")
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == []
        assert {q.check_id for q in _auto(s, dm, p)} == {"XF-04", "XF-05", "XF-06"}


@pytest.mark.requirement("QRY-06", "QRY-07", "QRY-08")
def test_the_sweep_finds_missed_visits_once_and_an_entered_day_closes_its_query(trial, enroll):
    p = enroll()
    inv, dm, pharm = trial.actors["inv1"], trial.actors["dm"], trial.actors["pharm1"]
    grace = default_protocol().monitoring.missed_visit_grace_days
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(creatinine=1.0))
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)
        crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=14))
        first = s.execute(select(Patient.first_dose_at).where(Patient.pseudonym == p)).scalar_one()
    today = first.date() + timedelta(days=5)  # study day 6: days 3-5 have passed without a CRF
    expected = [("MV-01", d) for d in (3, 4, 5) if d <= 6 - 1 - grace]
    with session_scope(trial.engine) as s:
        run = edit_checks.run_checks(s, dm, today=today)
        assert (run.patients, run.opened, run.closed, run.kept) == (1, len(expected), 0, 0)
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == expected
        again = edit_checks.run_checks(s, dm, today=today)
        assert (again.opened, again.closed, again.kept) == (0, 0, len(expected))
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 3, crf.DailyInputs(gcs=14))  # closes day 3's query on save
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == expected[1:]
        assert edit_checks.run_checks(s, dm, today=today).opened == 0


@pytest.mark.requirement("QRY-07", "QRY-08")
def test_a_finding_the_data_manager_accepted_is_not_asked_again(trial, enroll):
    p = enroll()
    inv, dm, mon = trial.actors["inv1"], trial.actors["dm"], trial.actors["mon1"]
    _, high = default_protocol().monitoring.soft_limits["urine_ml_day"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(urine_ml_day=high + 500))
    with session_scope(trial.engine) as s:
        (q,) = _auto(s, dm, p)
        queries.answer_query(s, inv, q.id, "polyuric phase, confirmed in the chart")
        queries.close_query(s, mon, q.id, "value confirmed against source")
    with session_scope(trial.engine) as s:
        assert edit_checks.run_checks(s, dm).opened == 0
    # a different unusual value is a new finding
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(urine_ml_day=high + 900), reason="second reading")
    with session_scope(trial.engine) as s:
        assert _open(s, dm, p) == [("RNG-10", 1)]


@pytest.mark.requirement("QRY-02", "QRY-07")
def test_only_the_data_manager_runs_the_sweep_and_it_covers_unlocked_patients_in_scope(trial, enroll):
    for who in ("mon1", "inv1", "lab", "pharm1", "admin"):
        with (
            pytest.raises(AccessDenied, match="may not run the edit checks"),
            session_scope(trial.engine) as s,
        ):
            edit_checks.run_checks(s, trial.actors[who])
    enroll()
    enroll(investigator="inv2")
    with session_scope(trial.engine) as s:
        assert edit_checks.run_checks(s, trial.actors["dm"]).patients == 2


def test_an_opened_query_is_audited_with_every_column_as_stored_and_the_trail_verifies(trial, enroll):
    """Queries are opened with a Core statement (``edit_checks._insert_queries``), not through the flush
    hook: each audit entry must still be the hook's (every column as inserted), in the order of the ids,
    after the closes of the same save, and ``audit verify`` pass."""
    import json

    from immunosep.store.audit import trail_text, verify
    from immunosep.store.models import AuditEntry, Query

    p = enroll()
    inv = trial.actors["inv1"]
    _, high = default_protocol().monitoring.soft_limits["urine_ml_day"]
    with session_scope(trial.engine) as s:
        # ventilated without organ support and a vasopressor dose without the box: two queries at once
        crf.record_day(s, inv, p, 1, crf.DailyInputs(ventilated=True, norepinephrine_ug_kg_min=0.2))
    with session_scope(trial.engine) as s:  # XF-02 corrected (closed), XF-03 kept, RNG-10 new
        inputs = crf.DailyInputs(
            ventilated=True,
            mechanical_ventilation=True,
            norepinephrine_ug_kg_min=0.2,
            urine_ml_day=high + 500,
        )
        crf.record_day(s, inv, p, 1, inputs, reason="box ticked")
    with session_scope(trial.engine) as s:
        assert _open(s, inv, p) == [("RNG-10", 1), ("XF-03", 1)]
        rows = {q.id: q for q in s.execute(select(Query)).scalars()}
        entries = (
            s.execute(select(AuditEntry).where(AuditEntry.table_name == "queries").order_by(AuditEntry.id))
            .scalars()
            .all()
        )
        inserts = [e for e in entries if e.action == "insert"]
        assert [int(e.row_id) for e in inserts] == sorted(rows) and len(rows) == 3
        columns = [c.name for c in Query.__table__.columns]
        for e in inserts:
            q = rows[int(e.row_id)]
            assert (e.field, e.old_value, e.reason, e.subject_id) == ("*", None, "edit check", q.patient_id)
            as_inserted = {c: trail_text(getattr(q, c)) for c in columns}
            if q.status == "closed":
                as_inserted.update(status='"open"', closed_by=None, closed_at=None, close_reason='""')
            assert json.loads(e.new_value) == as_inserted
        closes = [e for e in entries if e.action == "update"]
        assert {e.field for e in closes} == {"status", "closed_by", "closed_at", "close_reason"}
        assert max(e.id for e in closes) < inserts[-1].id
        assert verify(s).ok
