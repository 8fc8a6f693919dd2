"""The site dashboard's worklist: each patient's next step, today's CRF and draws, and what is overdue.

A read service for clinical readers (investigators, monitors, data managers): the patients of the sites in
the caller's scope (:func:`~immunosep.conduct.access.scope_condition`, the same rule as ``get_patient``),
each with its CRF days, draw days, outcome and open queries, read in one prebuilt statement for the whole
list (the dashboard is the most requested page; days come as one list per patient, not a row per day:
the CRF days from the list the database keeps, ``crf_days_entered``, the draw days aggregated).
Nothing here reveals an arm: only statuses, days and counts. Study day 1 is the day of the first dose (UTC
dates).

What is expected of a randomized patient: a daily CRF on each treatment day before the day of death and
before the day of ICU discharge (from then on the SOFA is imputed as 24 or carried forward:
docs/requirements.md, "Endpoints"); a biomarker draw on each protocol draw day before the day of death;
from day 15 the infection state on day 15 (every analysed patient has one), and from each mortality day
(28, 90) the vital status on that day unless a death or a later day known alive already gives it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row, String, bindparam, cast, func, literal, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import ScalarSelect

from immunosep.conduct.access import Actor, scope_site_ids
from immunosep.conduct.dosing import first_dose_deadline, study_day_on
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied
from immunosep.protocol.schema import Protocol
from immunosep.store.models import (
    BiomarkerDraw,
    CrfDaysEntered,
    Outcome,
    Patient,
    Query,
    ScreeningEntry,
    Site,
    utcnow,
)

NEXT_STEP = {
    "eligible": "baseline draw at the central lab, then classify",
    "excluded": "none (excluded at screening)",
    "classified": "consent and randomize",
    "not_enrolled": "none (stratum not enrolled)",
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
    outcomes_due: tuple[str, ...] = ()  # e.g. "vital status on day 28", due since that day


@dataclass(frozen=True)
class Worklist:
    patients: list[PatientLine]
    screened: int = 0
    randomized: int = 0
    open_queries: int = 0
    overdue: int = 0
    tasks: list[str] = field(default_factory=list)


def worklist(session: Session, actor: Actor, today: date | None = None, site: str | None = None) -> Worklist:
    """Patients in the actor's scope with their next step, what is due and what is overdue (clinical readers).

    ``site`` (a site code) narrows the list to that site; a site outside the scope is refused as one that
    does not exist.
    """
    require(actor, "read_worklist")
    today = today or utcnow().date()
    p = protocol_of(session)
    sites = scope_site_ids(actor)
    if site is not None:
        chosen = session.execute(select(Site.id).where(Site.code == site)).scalar_one_or_none()
        if chosen is None or (sites is not None and chosen not in sites):
            raise AccessDenied(f"no site {site!r} among the sites you may access", field="site")
        sites = frozenset({chosen})
    conn = session.connection()
    if sites is None:
        rows = conn.execute(_LINES).all()
    elif len(sites) == 1:  # an investigator's site, or ?site=: no IN list to expand per call
        rows = conn.execute(_LINES_OF_SITE, {"site_id": next(iter(sites))}).all()
    else:
        rows = conn.execute(_LINES_AT, {"site_ids": sorted(sites)}).all()
    known = _known_lines(p)
    lines: list[PatientLine] = []
    for row in rows:
        key = (today, tuple(row))
        line = known.get(key)
        if line is None:
            line = _line(row, today, p)
            if len(known) >= _KNOWN_MAX:
                known.clear()
            known[key] = line
        lines.append(line)
    tasks = [task for line in lines for task in due_tasks(line)]
    tasks += [task for line in lines for task in step_tasks(line)]
    return Worklist(
        patients=lines,
        screened=len(lines),
        randomized=sum(1 for line in lines if line.status == "randomized"),
        open_queries=sum(line.open_queries for line in lines),
        overdue=sum(
            len(line.overdue_crf_days) + len(line.overdue_draw_days) + len(line.outcomes_due)
            for line in lines
        ),
        tasks=tasks,
    )


def due_tasks(line: PatientLine) -> list[str]:
    """The line's part of today's tasks: what is due today (first in :attr:`Worklist.tasks`)."""
    return [f"{line.pseudonym}: {item}" for item in line.due_today]


def step_tasks(line: PatientLine) -> list[str]:
    """The line's part of today's tasks after every line's due items: the next step before randomization."""
    return [f"{line.pseudonym}: {line.next_step}"] if line.status in ("eligible", "classified") else []


def _line(patient: Row[Any], today: date, p: Protocol) -> PatientLine:
    """The line of one patient of the statement's rows on ``today`` (a function of the row's values)."""
    open_queries = int(patient.open_queries or 0)
    if patient.status != "randomized":
        return PatientLine(
            pseudonym=patient.pseudonym,
            status=patient.status,
            stratum=patient.stratum,
            study_day=None,
            next_step=NEXT_STEP.get(patient.status, ""),
            open_queries=open_queries,
        )
    return _randomized_line(
        patient, today, _days(patient.crf_days), _days(patient.draw_days), open_queries, p
    )


#: Lines already made, per protocol: ``{id(protocol): (protocol, {(today, row): line})}``. A line is a
#: function of the protocol, the day and its patient's row (every value it reads is in the row), and a row
#: changes only when its patient's data do, so the dashboard of a site of 15 patients with 40 CRF days each
#: makes none most of the time (0.3 ms of its 1.9 ms of CPU was making them). The protocol is held with its
#: lines: its id cannot name another protocol while they are kept.
_KNOWN: dict[int, tuple[Protocol, dict[tuple[date, tuple[Any, ...]], PatientLine]]] = {}
_KNOWN_MAX = 8192  # lines per protocol (a data manager's dashboard of 667 patients fits many times)


def _known_lines(p: Protocol) -> dict[tuple[date, tuple[Any, ...]], PatientLine]:
    entry = _KNOWN.get(id(p))
    if entry is None or entry[0] is not p:
        if len(_KNOWN) >= 16:
            _KNOWN.clear()
        entry = _KNOWN[id(p)] = (p, {})
    return entry[1]


def _randomized_line(
    patient: Row[Any],
    today: date,
    entered: set[int],
    drawn: set[int],
    open_queries: int,
    p: Protocol,
) -> PatientLine:
    """The line of a randomized patient on ``today`` (its study day is None before the first dose)."""
    first = patient.first_dose_at
    day = study_day_on(first.date(), today) if first is not None else None
    death, discharge = patient.death_day, patient.icu_discharge_day
    # The baseline (day 1) CRF is always expected: every analysed patient's primary endpoint starts from it.
    crf_until = max(1, min([p.treatment.days] + [d - 1 for d in (death, discharge) if d is not None]))
    draw_days = [d for d in p.biospecimens.days if death is None or d < death]
    overdue_crf: tuple[int, ...] = ()
    overdue_draws: tuple[int, ...] = ()
    outcomes: list[str] = []
    due: list[str] = []
    if day is None:
        if 1 not in entered:
            due.append("CRF day 1 (baseline SOFA before the first dose)")
        if today > first_dose_deadline(patient.sepsis_onset_at, p).date():
            step = "not treated: the first-dose window has closed; record the outcome"
        else:
            step = "the first dose (pharmacist)" if 1 in entered else "CRF day 1, then the first dose"
    else:
        overdue_crf = tuple(d for d in range(1, min(day - 1, crf_until) + 1) if d not in entered)
        overdue_draws = tuple(d for d in draw_days if d < day and d not in drawn)
        if day <= crf_until and day not in entered:
            due.append(f"CRF day {day}")
        if day in draw_days and day not in drawn:
            due.append(f"biomarker draw day {day}")
        # Outcomes not known yet, by the day they fall due: due from then on, ahead before.
        alive = patient.last_known_alive_day or 0
        pending = [
            (d, f"vital status on day {d}") for d in p.endpoints.mortality.days if death is None and alive < d
        ]
        if patient.infection_day15 is None:
            infection_day = p.endpoints.infection_day15.day
            pending.append((infection_day, f"infection state on day {infection_day}"))
        outcomes = [text for d, text in sorted(pending) if d <= day]
        ahead = [(d, text) for d, text in pending if d > day]
        ahead += [(d, f"CRF day {d}") for d in range(day + 1, crf_until + 1) if d not in entered]
        ahead += [(d, f"biomarker draw day {d}") for d in draw_days if d > day and d not in drawn]
        late = [f"CRF day {d} (overdue)" for d in overdue_crf] + [
            f"draw day {d} (overdue)" for d in overdue_draws
        ]
        upcoming = [text for _, text in sorted(ahead)]
        step = next(iter(late + due + outcomes + upcoming), "none (follow-up complete)")
    return PatientLine(
        pseudonym=patient.pseudonym,
        status=patient.status,
        stratum=patient.stratum,
        study_day=day,
        next_step=step,
        crf_days=tuple(sorted(entered)),
        overdue_crf_days=overdue_crf,
        overdue_draw_days=overdue_draws,
        due_today=tuple(due),
        open_queries=open_queries,
        outcomes_due=tuple(outcomes),
    )


#: The patient's draw days as one comma-separated string (any order; NULL for none): a few per patient,
#: read by index. The CRF days, one a day, come from ``crf_days_entered``.
_DRAW_DAYS: ScalarSelect[str | None] = (
    # The separator as SQL text, not the string SQLAlchemy would render into the statement at each
    # execution: with the status list below, that re-rendering was 10 % of the statement's CPU.
    select(func.aggregate_strings(cast(BiomarkerDraw.study_day, String), literal_column("','")))  # type: ignore[arg-type]
    .where(BiomarkerDraw.patient_id == Patient.id)
    .correlate(Patient)
    .scalar_subquery()
)


#: Open (and reopened) queries per patient that has any, counted in one pass over the queries. Joined,
#: not a subquery per patient: PostgreSQL plans a prepared statement once for the life of a connection,
#: and a plan made while the table was small scans the whole of it once for each patient of the list
#: (seen in bench_web: 15 scans of a table grown from 80 to 590 queries, the dashboard's statement 1.8
#: instead of 1.0 ms, its open-queries part 0.8 instead of 0.1 ms).
_OPEN_QUERIES = (
    select(Query.patient_id, func.count().label("n"))
    .where(Query.status.in_((literal("open"), literal("reopened"))))
    .group_by(Query.patient_id)
    .subquery("open_queries_of")
)

#: Every patient of the worklist with what its lines need, in one statement (the scoped form filters sites).
_LINES = (
    select(
        Patient.pseudonym,
        Patient.status,
        Patient.stratum,
        Patient.first_dose_at,
        Patient.sepsis_onset_at,
        _OPEN_QUERIES.c.n.label("open_queries"),  # NULL for none (read as 0)
        CrfDaysEntered.days.label("crf_days"),  # kept by the database (store.models.CrfDaysEntered)
        _DRAW_DAYS.label("draw_days"),
        Outcome.death_day,
        Outcome.last_known_alive_day,
        Outcome.icu_discharge_day,
        Outcome.infection_day15,
    )
    .join(ScreeningEntry, ScreeningEntry.patient_id == Patient.id)
    .outerjoin(Outcome, Outcome.patient_id == Patient.id)
    .outerjoin(CrfDaysEntered, CrfDaysEntered.patient_id == Patient.id)
    .outerjoin(_OPEN_QUERIES, _OPEN_QUERIES.c.patient_id == Patient.id)
    .order_by(Patient.pseudonym)
)
_LINES_AT = _LINES.where(Patient.site_id.in_(bindparam("site_ids", expanding=True)))
_LINES_OF_SITE = _LINES.where(Patient.site_id == bindparam("site_id"))


def _days(text: str | None) -> set[int]:
    return {int(d) for d in text.split(",")} if text else set()
