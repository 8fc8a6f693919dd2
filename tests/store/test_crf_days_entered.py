"""``crf_days_entered`` (revision 0011): each patient's CRF days kept by a trigger, filled, checked, erased."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from immunosep.conduct import crf, withdrawal
from immunosep.conduct.worklist import worklist
from immunosep.store import audit, crf_days
from immunosep.store.db import alembic_config, session_scope
from immunosep.store.models import CrfDaysEntered, Patient


def _lists(trial) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        rows = s.execute(
            select(Patient.pseudonym, CrfDaysEntered.days).join(
                CrfDaysEntered, CrfDaysEntered.patient_id == Patient.id
            )
        )
        return {p: days for p, days in rows}


def _enter(trial, pseudonym: str, *days: int) -> None:  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        for day in days:
            crf.record_day(s, trial.actors["inv1"], pseudonym, day, crf.DailyInputs(gcs=12, creatinine=1.0))


def test_each_new_day_is_listed_in_entry_order_and_a_correction_adds_none(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    a, b = enroll("inv1"), enroll("inv1")
    _enter(trial, a, 1, 3, 2)
    _enter(trial, b, 1)
    with session_scope(trial.engine) as s:
        crf.record_day(s, trial.actors["inv1"], a, 3, crf.DailyInputs(gcs=9), reason="source verified")
    assert _lists(trial) == {a: "1,3,2", b: "1"}
    with session_scope(trial.engine) as s:
        assert audit.verify(s).ok


def test_a_row_inserted_outside_the_services_is_listed_too(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    # The trigger, not the service, keeps the list: no writer can leave it behind.
    p = enroll("inv1")
    _enter(trial, p, 1)
    with trial.engine.begin() as conn:
        row = conn.execute(text("SELECT * FROM daily_crf")).mappings().one()
        values = {k: v for k, v in row.items() if k != "id"} | {"study_day": 7}
        columns = ", ".join(values)
        conn.execute(
            text(f"INSERT INTO daily_crf ({columns}) VALUES ({', '.join(':' + k for k in values)})"),
            values,
        )
    assert _lists(trial) == {p: "1,7"}
    with session_scope(trial.engine) as s:
        # written outside the application: verify names the CRF row, and the list agrees with the rows
        problems = audit.verify(s).problems
        assert problems and all(x.startswith("daily_crf ") for x in problems)


def test_verify_names_a_list_that_disagrees_with_the_rows(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    a, b, c = enroll("inv1"), enroll("inv1"), enroll("inv1")
    _enter(trial, a, 1, 2)
    _enter(trial, b, 1)
    _enter(trial, c, 1)
    with session_scope(trial.engine) as s:
        ids = {p: i for p, i in s.execute(select(Patient.pseudonym, Patient.id))}
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE crf_days_entered SET days = '1' WHERE patient_id = :p"), {"p": ids[a]})
        conn.execute(text("UPDATE crf_days_entered SET days = 'x' WHERE patient_id = :p"), {"p": ids[b]})
        conn.execute(text("DELETE FROM crf_days_entered WHERE patient_id = :p"), {"p": ids[c]})
    with session_scope(trial.engine) as s:
        found = sorted(audit.verify(s).problems)
    assert found == sorted(
        f"crf_days_entered row {ids[p]}: does not list the daily CRF's days" for p in (a, b, c)
    )


def test_an_erased_patient_leaves_no_list(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    gone, kept = enroll("inv1"), enroll("inv1")
    _enter(trial, gone, 1, 2)
    _enter(trial, kept, 1)
    withdrawal.withdraw_and_erase(trial.engine, trial.actors["inv1"], gone)
    assert _lists(trial) == {kept: "1"}
    with session_scope(trial.engine) as s:
        assert audit.verify(s).ok


def test_0011_fills_the_lists_of_the_days_entered_and_downgrade_removes_them(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    a, b, none = enroll("inv1"), enroll("inv1"), enroll("inv1")
    _enter(trial, a, 2, 1)
    _enter(trial, b, 1)
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0010")
    assert "crf_days_entered" not in inspect(trial.engine).get_table_names()
    trial.engine.dispose()
    _enter(trial, a, 3)  # entered under revision 0010: no trigger, no list
    trial.engine.dispose()
    command.upgrade(alembic_config(trial.url), "head")
    assert _lists(trial) == {a: "2,1,3", b: "1"}  # in the order of entry, across the revisions
    _enter(trial, none, 1)
    assert _lists(trial) == {a: "2,1,3", b: "1", none: "1"}
    with session_scope(trial.engine) as s:
        line = next(x for x in worklist(s, trial.actors["inv1"]).patients if x.pseudonym == a)
        assert line.crf_days == (1, 2, 3)
        assert audit.verify(s).ok


def test_rebuild_writes_afresh_only_the_lists_that_disagree_and_verify_is_then_ok(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    a, b, c, d = enroll("inv1"), enroll("inv1"), enroll("inv1"), enroll("inv1")
    _enter(trial, a, 1, 3, 2)
    _enter(trial, b, 1)
    _enter(trial, c, 1, 2)
    _enter(trial, d, 2, 1)
    with session_scope(trial.engine) as s:
        ids = {p: i for p, i in s.execute(select(Patient.pseudonym, Patient.id))}
        rows_before = s.execute(text("SELECT * FROM daily_crf ORDER BY id")).all()
        trail_before = s.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE crf_days_entered SET days = '1' WHERE patient_id = :p"), {"p": ids[a]})
        conn.execute(text("UPDATE crf_days_entered SET days = 'x' WHERE patient_id = :p"), {"p": ids[b]})
        conn.execute(text("DELETE FROM crf_days_entered WHERE patient_id = :p"), {"p": ids[c]})
        # d's list holds its days in another order than entered: it agrees, and is left as it is
        conn.execute(text("UPDATE crf_days_entered SET days = '1,2' WHERE patient_id = :p"), {"p": ids[d]})
    with session_scope(trial.engine) as s:
        assert crf_days.disagreeing(s) == sorted(ids[p] for p in (a, b, c))
        rebuilt = crf_days.rebuild(s)
    assert sorted(rebuilt) == sorted([a, b, c])
    assert _lists(trial) == {a: "1,3,2", b: "1", c: "1,2", d: "1,2"}  # entry order, as the trigger writes
    with session_scope(trial.engine) as s:
        assert audit.verify(s).ok
        assert crf_days.rebuild(s) == []  # nothing left to rebuild
        # the audited rows and the trail are untouched
        assert s.execute(text("SELECT * FROM daily_crf ORDER BY id")).all() == rows_before
        assert s.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == trail_before


def test_rebuild_removes_a_list_of_a_patient_without_crf_rows(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    p, q = enroll("inv1"), enroll("inv1")
    _enter(trial, q, 1)
    with session_scope(trial.engine) as s:
        pid = s.execute(select(Patient.id).where(Patient.pseudonym == p)).scalar_one()
    with trial.engine.begin() as conn:
        conn.execute(text("INSERT INTO crf_days_entered (patient_id, days) VALUES (:p, '4')"), {"p": pid})
    with session_scope(trial.engine) as s:
        assert crf_days.rebuild(s) == [p]
    assert _lists(trial) == {q: "1"}
