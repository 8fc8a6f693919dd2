"""The site dashboard's worklist: each patient's next step, today's CRF and draws, and what is overdue.

A read service for clinical readers (investigators, monitors, data managers): the patients of the sites in
the caller's scope (:func:`~immunosep.conduct.access.scope_condition`, the same rule as ``get_patient``),
each with its CRF days, draw days and open queries, read in one prebuilt statement for the whole list (the
dashboard is the most requested page; days come aggregated per patient, not a row per day). Nothing
here reveals an arm: only statuses, days and counts. Study day 1 is the day of the first dose (UTC dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import String, bindparam, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from immunosep.conduct.access import CLINICAL_READERS, Actor, require_role, scope_site_ids
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
    sites = scope_site_ids(actor)
    if sites is None:
        rows = session.connection().execute(_LINES).all()
    else:
        rows = session.connection().execute(_LINES_AT, {"site_ids": sorted(sites)}).all()
    open_by_patient = {int(r.id): int(r.open_queries) for r in rows if r.open_queries}
    crf_days = {int(r.id): _days(r.crf_days) for r in rows if r.status == "randomized"}
    draw_days = {int(r.id): _days(r.draw_days) for r in rows if r.status == "randomized"}
    lines: list[PatientLine] = []
    for patient in rows:
        first = patient.first_dose_at.date() if patient.first_dose_at is not None else None
        day = study_day_on(first, today) if patient.status == "randomized" else None
        crf: tuple[int, ...] = ()
        overdue_crf: tuple[int, ...] = ()
        overdue_draws: tuple[int, ...] = ()
        due: list[str] = []
        if patient.status == "randomized":
            entered = crf_days[patient.id]
            crf = tuple(sorted(entered))
            drawn = draw_days[patient.id]
            if day is not None:
                last_crf_day = min(day, treatment_days)
                overdue_crf = tuple(d for d in range(1, last_crf_day) if d not in entered)
                overdue_draws = tuple(d for d in p.biospecimens.days if d < day and d not in drawn)
                if day <= treatment_days and day not in entered:
                    due.append(f"CRF day {day}")
                if day in p.biospecimens.days and day not in drawn:
                    due.append(f"biomarker draw day {day}")
            elif 1 not in entered:
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


def _days_of(model: type[DailyCrf] | type[BiomarkerDraw]) -> ScalarSelect[str | None]:
    """The patient's study days in ``model`` as one comma-separated string (any order; NULL for none)."""
    return (
        select(func.aggregate_strings(cast(model.study_day, String), ","))
        .where(model.patient_id == Patient.id)
        .correlate(Patient)
        .scalar_subquery()
    )


#: Every patient of the worklist with what its lines need, in one statement (the scoped form filters sites).
_LINES = (
    select(
        Patient.id,
        Patient.pseudonym,
        Patient.status,
        Patient.stratum,
        Patient.first_dose_at,
        select(func.count())
        .where(Query.patient_id == Patient.id, Query.status == "open")
        .correlate(Patient)
        .scalar_subquery()
        .label("open_queries"),
        _days_of(DailyCrf).label("crf_days"),
        _days_of(BiomarkerDraw).label("draw_days"),
    )
    .join(ScreeningEntry, ScreeningEntry.patient_id == Patient.id)
    .order_by(Patient.pseudonym)
)
_LINES_AT = _LINES.where(Patient.site_id.in_(bindparam("site_ids", expanding=True)))


def _days(text: str | None) -> set[int]:
    return {int(d) for d in text.split(",")} if text else set()
