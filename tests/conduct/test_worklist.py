"""The dashboard's worklist service: scope by site, CRF and draw days, overdue items, no arm."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import pytest
from sqlalchemy import select

from immunosep.conduct import crf, dosing
from immunosep.conduct.access import in_scope, scope_condition
from immunosep.conduct.worklist import worklist
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.store.models import Patient


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
        crf.record_day(s, inv, mine, 1, crf.DailyInputs(gcs=12))
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
