"""The dashboard's worklist service: scope by site, CRF and draw days, overdue items, no arm."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from immunosep.conduct import biospecimens, crf, dosing, outcomes
from immunosep.conduct.access import in_scope, scope_condition
from immunosep.conduct.worklist import worklist
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.store.models import Patient, Site


def test_scope_condition_is_in_scope_in_sql(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    enroll("inv1")
    enroll("inv2")
    with session_scope(trial.engine) as s:
        patients = s.execute(select(Patient)).scalars().all()
        for name, actor in trial.actors.items():
            got = set(s.execute(select(Patient.id).where(scope_condition(actor))).scalars())
            assert got == {p.id for p in patients if in_scope(actor, p.site_id)}, name


def test_worklist_shows_the_callers_sites_with_due_and_overdue_days(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    mine, other = enroll("inv1"), enroll("inv2")
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, mine, 1, crf.DailyInputs(gcs=12, creatinine=1.0))
        dosing.record_dose(s, pharm, mine, 1, "iv", 0, given=True)
        first = s.execute(select(Patient.first_dose_at).where(Patient.pseudonym == mine)).scalar_one()
    today = first.date() + timedelta(days=3)  # study day 4: CRF days 2-3 overdue, draw day 2 overdue
    with session_scope(trial.engine) as s:
        work = worklist(s, inv, today=today)
        assert [line.pseudonym for line in work.patients] == [mine]
        [line] = work.patients
        assert (line.study_day, line.crf_days, line.overdue_crf_days) == (4, (1,), (2, 3))
        assert line.overdue_draw_days == (2,)
        assert set(line.due_today) == {"CRF day 4", "biomarker draw day 4"}
        assert work.overdue == 3 and work.randomized == 1
        assert "precision" not in str(asdict(work)) and "placebo" not in str(asdict(work))
        everyone = worklist(s, trial.actors["dm"], today=today)
        assert {line.pseudonym for line in everyone.patients} == {mine, other}
        assert [line.pseudonym for line in worklist(s, trial.actors["mon1"]).patients] == [mine]
        for role in ("lab", "pharm1", "dsmb", "admin"):
            with pytest.raises(AccessDenied):
                worklist(s, trial.actors[role])


def _first_dose(trial, inv, pharm, pseudonym: str):  # type: ignore[no-untyped-def]
    """Enter CRF day 1 (with the creatinine the IV dose needs), give the first dose, return its UTC date."""
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 1, crf.DailyInputs(gcs=12, creatinine=1.0))
        dosing.record_dose(s, pharm, pseudonym, 1, "iv", 0, given=True)
        return (
            s.execute(select(Patient.first_dose_at).where(Patient.pseudonym == pseudonym)).scalar_one().date()
        )


def _line(trial, actor, pseudonym: str, today):  # type: ignore[no-untyped-def]
    with session_scope(trial.engine) as s:
        work = worklist(s, actor, today=today)
    [line] = [line for line in work.patients if line.pseudonym == pseudonym]
    return line, work


def test_no_crf_or_draw_is_expected_from_the_day_of_death_and_the_outcomes_are_asked_for(
    trial, enroll
) -> None:  # type: ignore[no-untyped-def]
    inv, pharm, lab = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["lab"]
    pseudonym = enroll("inv1")
    day20 = _first_dose(trial, inv, pharm, pseudonym) + timedelta(days=19)
    line, work = _line(trial, inv, pseudonym, day20)
    assert line.study_day == 20
    assert line.overdue_crf_days == tuple(range(2, 16))  # the 15 treatment days; day 1 entered
    assert line.overdue_draw_days == (2, 4, 7, 15)  # day 1 drawn at enrolment; day 21 not yet
    assert line.outcomes_due == ("infection state on day 15",)
    assert line.next_step == "CRF day 2 (overdue)"
    assert work.overdue == 14 + 4 + 1
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, pseudonym, death_day=5)
    line, work = _line(trial, inv, pseudonym, day20)
    assert line.overdue_crf_days == (2, 3, 4) and line.overdue_draw_days == (2, 4)
    assert line.outcomes_due == ("infection state on day 15",)  # the vital status is known: died on day 5
    assert work.overdue == 3 + 2 + 1
    with session_scope(trial.engine) as s:
        for day in (2, 3, 4):
            crf.record_day(s, inv, pseudonym, day, crf.DailyInputs(gcs=8))
        for day in (2, 4):
            biospecimens.record_draw(s, lab, pseudonym, day, ferritin_ng_ml=5000.0, hla_dr_per_monocyte=None)
    line, _ = _line(trial, inv, pseudonym, day20)
    assert (line.overdue_crf_days, line.overdue_draw_days) == ((), ())
    assert line.next_step == "infection state on day 15"
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, pseudonym, infection_day15="failure")
    line, work = _line(trial, inv, pseudonym, day20 + timedelta(days=80))
    assert (line.outcomes_due, line.due_today, work.overdue) == ((), (), 0)
    assert line.next_step == "none (follow-up complete)"


def test_after_icu_discharge_only_the_follow_up_is_expected(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    pseudonym = enroll("inv1")
    first = _first_dose(trial, inv, pharm, pseudonym)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 2, crf.DailyInputs(gcs=14))
        outcomes.record_outcome(s, inv, pseudonym, icu_discharge_day=4, infection_day15="resolution")
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=9))  # study day 10
    assert line.overdue_crf_days == (3,)  # in the ICU on days 1-3; day 4, the discharge day, is not required
    assert "CRF day 10" not in line.due_today
    assert line.next_step == "CRF day 3 (overdue)"
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 3, crf.DailyInputs(gcs=15))
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=9))
    assert line.overdue_crf_days == () and line.outcomes_due == ()
    assert line.overdue_draw_days == (2, 4, 7)  # draws are still expected after the ICU
    assert line.next_step == "draw day 2 (overdue)"
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=29))  # study day 30
    assert line.outcomes_due == ("vital status on day 28",)
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, pseudonym, last_known_alive_day=30)
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=29))
    assert line.outcomes_due == ()
    assert line.overdue_draw_days == (2, 4, 7, 15, 21, 28)
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=94))  # day 95
    assert line.outcomes_due == ("vital status on day 90",)
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, pseudonym, death_day=60)  # alive on day 30, dead on day 90
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=94))
    assert line.outcomes_due == ()
    assert line.overdue_draw_days == (2, 4, 7, 15, 21, 28)


def test_before_the_first_dose_the_baseline_crf_then_the_dose(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    inv = trial.actors["inv1"]
    pseudonym = enroll("inv1")
    line, _ = _line(trial, inv, pseudonym, None)
    assert line.study_day is None
    assert line.due_today == ("CRF day 1 (baseline SOFA before the first dose)",)
    assert line.next_step == "CRF day 1, then the first dose"
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 1, crf.DailyInputs(gcs=12))
    line, _ = _line(trial, inv, pseudonym, None)
    assert (line.due_today, line.next_step) == ((), "the first dose (pharmacist)")
    with session_scope(trial.engine) as s:
        onset = s.execute(select(Patient.sepsis_onset_at).where(Patient.pseudonym == pseudonym)).scalar_one()
    closes = (onset + timedelta(hours=72)).date()  # the protocol's first-dose window
    assert _line(trial, inv, pseudonym, closes)[0].next_step == "the first dose (pharmacist)"
    line, _ = _line(trial, inv, pseudonym, closes + timedelta(days=1))
    assert line.next_step == "not treated: the first-dose window has closed; record the outcome"


def test_a_patient_who_died_on_day_one_still_needs_the_infection_state_on_day_15(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    pseudonym = enroll("inv1")
    first = _first_dose(trial, inv, pharm, pseudonym)
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(s, inv, pseudonym, death_day=1)
    line, work = _line(trial, inv, pseudonym, first + timedelta(days=2))
    assert (line.overdue_crf_days, line.overdue_draw_days, line.due_today, work.overdue) == ((), (), (), 0)
    assert line.next_step == "infection state on day 15"
    line, work = _line(trial, inv, pseudonym, first + timedelta(days=14))
    assert line.outcomes_due == ("infection state on day 15",) and work.overdue == 1


def test_when_nothing_is_late_the_next_step_is_the_next_day_ahead(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    inv, pharm, lab = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["lab"]
    pseudonym = enroll("inv1")
    first = _first_dose(trial, inv, pharm, pseudonym)
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, pseudonym, 2, crf.DailyInputs(gcs=12))
        biospecimens.record_draw(s, lab, pseudonym, 2, ferritin_ng_ml=5000.0, hla_dr_per_monocyte=None)
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=1))  # study day 2, all done
    assert (line.overdue_crf_days, line.overdue_draw_days, line.due_today) == ((), (), ())
    assert line.next_step == "CRF day 3"
    line, _ = _line(trial, inv, pseudonym, first + timedelta(days=2))  # study day 3: today's CRF
    assert line.due_today == ("CRF day 3",) and line.next_step == "CRF day 3"


def test_a_site_narrows_the_worklist_within_the_scope_only(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    mine, other = enroll("inv1"), enroll("inv2")
    dm, mon = trial.actors["dm"], trial.actors["mon1"]
    with session_scope(trial.engine) as s:
        every = {line.pseudonym for line in worklist(s, dm).patients}
        assert every == {mine, other}
        assert [line.pseudonym for line in worklist(s, dm, site="S01").patients] == [mine]
        assert [line.pseudonym for line in worklist(s, dm, site="S02").patients] == [other]
        assert [line.pseudonym for line in worklist(s, mon, site="S01").patients] == [mine]
        refusals = []
        for actor, site in ((mon, "S02"), (mon, "S99"), (trial.actors["inv1"], "S02")):
            with pytest.raises(AccessDenied) as denied:
                worklist(s, actor, site=site)
            refusals.append(str(denied.value).replace(site, "<S>"))
        assert len(set(refusals)) == 1  # another site's list is refused as a site that does not exist


def test_kept_lines_are_the_lines_made_afresh_for_each_day(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    from immunosep.conduct import worklist as worklist_module

    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    pseudonym = enroll("inv1")
    first = _first_dose(trial, inv, pharm, pseudonym)
    days = [first + timedelta(days=d) for d in (0, 3, 19, 40, 3)]
    kept = [_line(trial, inv, pseudonym, today)[0] for today in days]
    worklist_module._KNOWN.clear()
    fresh = []
    for today in days:
        fresh.append(_line(trial, inv, pseudonym, today)[0])
        worklist_module._KNOWN.clear()
    assert kept == fresh
    assert [line.study_day for line in kept] == [1, 4, 20, 41, 4]


def test_open_queries_are_counted_per_patient_open_and_reopened_only(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    from immunosep.conduct import queries

    busy, quiet, other = enroll("inv1"), enroll("inv1"), enroll("inv2")
    inv, mon, dm = trial.actors["inv1"], trial.actors["mon1"], trial.actors["dm"]
    with session_scope(trial.engine) as s:

        def ask(pseudonym: str, text: str) -> int:
            return queries.raise_query(s, dm, pseudonym, table_name="daily_crf", text=text).id

        ask(busy, "open one")
        ask(busy, "open two")
        queries.answer_query(s, inv, ask(busy, "answered"), "checked")
        queries.close_query(s, mon, ask(busy, "closed"), "confirmed")
        reopened = ask(busy, "reopened")
        queries.close_query(s, mon, reopened, "confirmed")
        queries.reopen_query(s, mon, reopened, "the source says otherwise")
        queries.close_query(s, mon, ask(quiet, "closed at once"), "confirmed")
        ask(other, "another site's")
    with session_scope(trial.engine) as s:
        mine = worklist(s, inv)
        assert {line.pseudonym: line.open_queries for line in mine.patients} == {busy: 3, quiet: 0}
        assert mine.open_queries == 3
        every = worklist(s, dm)
        assert {line.pseudonym: line.open_queries for line in every.patients} == {busy: 3, quiet: 0, other: 1}
        assert every.open_queries == 4


def _scans_of(plan: dict, table: str) -> list[int]:  # type: ignore[type-arg]
    """The loops of each scan of ``table`` in a JSON plan (EXPLAIN ANALYZE, FORMAT JSON)."""
    found = [plan["Actual Loops"]] if plan.get("Relation Name") == table else []
    for child in plan.get("Plans", ()):
        found += _scans_of(child, table)
    return found


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_open_queries_are_read_in_one_pass_whatever_the_plan(trial, enroll) -> None:  # type: ignore[no-untyped-def]
    # A subquery per patient let a plan made while the table was small scan every query once per patient
    # of the list (bench_web: the dashboard's statement 1.8 instead of 1.0 ms as the queries grew).
    from sqlalchemy.dialects import postgresql

    from immunosep.conduct import queries
    from immunosep.conduct import worklist as worklist_module

    names = [enroll("inv1") for _ in range(3)]
    with session_scope(trial.engine) as s:
        for name in names:
            queries.raise_query(s, trial.actors["dm"], name, table_name="daily_crf", text="check")
        site_id = s.execute(select(Site.id).where(Site.code == "S01")).scalar_one()
    for stmt in (worklist_module._LINES_OF_SITE.params(site_id=site_id), worklist_module._LINES):
        sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        with trial.engine.connect() as conn:
            # A nested loop is the shape that would repeat a scan per patient: no hash join to hide it.
            conn.exec_driver_sql("SET enable_hashjoin = off")
            [plan] = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()
        assert _scans_of(plan["Plan"], "queries") == [1]
