"""The site dashboard's worklist: each patient's next step, today's CRF and draws, and what is overdue.

A read service for clinical readers (investigators, monitors, data managers): the patients of the sites in
the caller's scope (:func:`~immunosep.conduct.access.scope_condition`, the same rule as ``get_patient``),
their CRF days and draw days read in three queries for the whole list (the dashboard is the most requested
page), and the number of open queries per patient (counted in SQL, in the same scope). Nothing here
reveals an arm: only statuses, days and counts. Study day 1 is the day of the first dose (UTC dates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import CLINICAL_READERS, Actor, require_role, scope_condition
from immunosep.conduct.sites import protocol_of
from immunosep.store.models import BiomarkerDraw, DailyCrf, Patient, Query, ScreeningEntry, utcnow

NEXT_STEP = {
    "eligible": "baseline draw at the central lab, then classify",
    "excluded": "none (excluded at screening)",
    "classified": "consent and randomize",
    "not_enrolled": "none (stratum not enrolled)",
    "randomized": "daily CRF",
    "withdrawn": "none (withdrawn)",
}


@dataclass(frozen=True)
class PatientLine:
    """One patient on the dashboard (blinded: no arm)."""

    pseudonym: str
    status: str
    stratum: str | None
    study_day: int | None
    next_step: str
    crf_days: tuple[int, ...] = ()
    overdue_crf_days: tuple[int, ...] = ()
    overdue_draw_days: tuple[int, ...] = ()
    due_today: tuple[str, ...] = ()
    open_queries: int = 0


@dataclass(frozen=True)
class Worklist:
    patients: list[PatientLine]
    screened: int = 0
    randomized: int = 0
    open_queries: int = 0
    overdue: int = 0
    tasks: list[str] = field(default_factory=list)


def study_day_on(first_dose_on: date | None, today: date) -> int | None:
    """Study day of ``today`` when day 1 is the day of the first dose (None before the first dose)."""
    if first_dose_on is None:
        return None
    return (today - first_dose_on).days + 1


def worklist(session: Session, actor: Actor, today: date | None = None) -> Worklist:
    """Patients in the actor's scope with their next step and overdue CRFs and draws (clinical readers)."""
    require_role(actor, CLINICAL_READERS, "read the worklist")
    today = today or utcnow().date()
    p = protocol_of(session)
    treatment_days = p.treatment.days
    scope = scope_condition(actor)
    open_by_patient: dict[int, int] = {
        int(pid): int(n)
        for pid, n in session.execute(
            select(Query.patient_id, func.count())
            .join(Patient, Patient.id == Query.patient_id)
            .where(Query.status == "open", scope)
            .group_by(Query.patient_id)
        ).all()
    }
    patients = session.execute(
        select(Patient.id, Patient.pseudonym, Patient.status, Patient.stratum, Patient.first_dose_at)
        .join(ScreeningEntry, ScreeningEntry.patient_id == Patient.id)
        .where(scope)
        .order_by(Patient.pseudonym)
    ).all()
    randomized = [pt.id for pt in patients if pt.status == "randomized"]
    crf_days = _days_by_patient(session, _CRF_DAYS, randomized)
    draw_days = _days_by_patient(session, _DRAW_DAYS, randomized)
    lines: list[PatientLine] = []
    for patient in patients:
        first = patient.first_dose_at.date() if patient.first_dose_at is not None else None
        day = study_day_on(first, today) if patient.status == "randomized" else None
        crf: tuple[int, ...] = ()
        overdue_crf: tuple[int, ...] = ()
        overdue_draws: tuple[int, ...] = ()
        due: list[str] = []
        if patient.status == "randomized":
            crf = tuple(sorted(crf_days.get(patient.id, ())))
            drawn = draw_days.get(patient.id, set())
            if day is not None:
                last_crf_day = min(day, treatment_days)
                overdue_crf = tuple(d for d in range(1, last_crf_day) if d not in crf)
                overdue_draws = tuple(d for d in p.biospecimens.days if d < day and d not in drawn)
                if day <= treatment_days and day not in crf:
                    due.append(f"CRF day {day}")
                if day in p.biospecimens.days and day not in drawn:
                    due.append(f"biomarker draw day {day}")
            elif 1 not in crf:
                due.append("CRF day 1 (baseline SOFA before the first dose)")
        lines.append(
            PatientLine(
                pseudonym=patient.pseudonym,
                status=patient.status,
                stratum=patient.stratum,
                study_day=day,
                next_step=NEXT_STEP.get(patient.status, ""),
                crf_days=crf,
                overdue_crf_days=overdue_crf,
                overdue_draw_days=overdue_draws,
                due_today=tuple(due),
                open_queries=open_by_patient.get(patient.id, 0),
            )
        )
    tasks = [f"{line.pseudonym}: {item}" for line in lines for item in line.due_today]
    tasks += [
        f"{line.pseudonym}: {line.next_step}" for line in lines if line.status in ("eligible", "classified")
    ]
    return Worklist(
        patients=lines,
        screened=len(lines),
        randomized=sum(1 for line in lines if line.status == "randomized"),
        open_queries=sum(open_by_patient.values()),
        overdue=sum(len(line.overdue_crf_days) + len(line.overdue_draw_days) for line in lines),
        tasks=tasks,
    )


_CRF_DAYS = select(DailyCrf.patient_id, DailyCrf.study_day).where(
    DailyCrf.patient_id.in_(bindparam("ids", expanding=True))
)
_DRAW_DAYS = select(BiomarkerDraw.patient_id, BiomarkerDraw.study_day).where(
    BiomarkerDraw.patient_id.in_(bindparam("ids", expanding=True))
)


def _days_by_patient(session: Session, stmt: Select[int, int], ids: Sequence[int]) -> dict[int, set[int]]:
    """Study days recorded per patient (one query for all ``ids``)."""
    out: dict[int, set[int]] = {}
    if not ids:
        return out
    for pid, day in session.execute(stmt, {"ids": list(ids)}).all():
        out.setdefault(int(pid), set()).add(int(day))
    return out
