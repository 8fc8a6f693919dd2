"""Automatic edit checks: the rules that open queries by themselves, each with an ID, in one place.

Three kinds, their numbers from the protocol's ``[monitoring]`` section:

* **range** (``RNG-*``): a daily CRF value outside its soft limit (``monitoring.soft_limits``, in the
  clinical unit of :data:`immunosep.clinical.units.PLAUSIBLE`; bilirubin and creatinine are converted from
  the unit entered). The plausible range, wider, refuses a value outright; a soft limit only asks.
* **cross-field** (``XF-*``): PaO2/FiO2 below ``pf_unventilated_min_mmhg`` without mechanical
  ventilation; the SOFA ventilation input against the organ-support box; a vasopressor dose against the
  vasopressor box; a daily CRF after the day of death; an adverse event starting after the day of death; a
  dose logged as given after the day of death.
* **missed visit** (``MV-01``): a daily CRF the worklist counts overdue (a treatment day that has
  passed, before death and ICU discharge) for ``missed_visit_grace_days`` more days.

They run on save (the daily CRF and outcome services call :func:`on_crf_saved` and
:func:`on_outcome_saved` in the same transaction) and in a sweep (:func:`run_checks`: ``immunosep queries
run-checks``, the data manager's button). Idempotent: a finding that already has a query not closed
keeps it; a finding whose query was closed with the same wording is not asked again (the data manager
accepted it). When the data are corrected and the check passes, its query is closed automatically with
the reason. Every message is arm-free (days and values only), so blinded readers may see them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, bindparam, insert, literal, or_, select
from sqlalchemy.orm import Session

from immunosep.clinical.units import PLAUSIBLE, unit_factor
from immunosep.conduct.access import Actor, begin, ensure_writable, scope_site_ids
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.worklist import worklist
from immunosep.protocol.schema import Protocol
from immunosep.store import audit
from immunosep.store.models import AdverseEvent, DailyCrf, DoseRecord, Outcome, Patient, Query, utcnow

AUTOMATIC = "automatic"
#: The close reason of a query its edit check closed itself (the data were corrected).
AUTO_CLOSED = "closed automatically: the edit check passes after the data changed"
#: Query statuses that still wait for something (not closed).
PENDING = ("open", "answered", "reopened")


@dataclass(frozen=True)
class EditCheck:
    """One automatic check: its ID, kind, the record it points at, and what it asks, in words."""

    id: str
    kind: str
    table_name: str
    field: str
    rule: str


#: Daily CRF items with a soft limit: range check ID -> (CRF item, its name in clinical.units.PLAUSIBLE).
RANGE_ITEMS: dict[str, tuple[str, str]] = {
    "RNG-01": ("pao2_fio2_mmhg", "pao2_fio2_mmhg"),
    "RNG-02": ("platelets_1e3_ul", "platelets_1e3_ul"),
    "RNG-03": ("bilirubin", "bilirubin_mg_dl"),
    "RNG-04": ("map_mmhg", "map_mmhg"),
    "RNG-05": ("dopamine_ug_kg_min", "dopamine_ug_kg_min"),
    "RNG-06": ("dobutamine_ug_kg_min", "dobutamine_ug_kg_min"),
    "RNG-07": ("epinephrine_ug_kg_min", "epinephrine_ug_kg_min"),
    "RNG-08": ("norepinephrine_ug_kg_min", "norepinephrine_ug_kg_min"),
    "RNG-09": ("creatinine", "creatinine_mg_dl"),
    "RNG-10": ("urine_ml_day", "urine_ml_day"),
    "RNG-11": ("weight_kg", "weight_kg"),
}
CHECKS: tuple[EditCheck, ...] = (
    *(
        EditCheck(cid, "range", "daily_crf", item, f"{PLAUSIBLE[name].what} within its soft limit")
        for cid, (item, name) in RANGE_ITEMS.items()
    ),
    EditCheck(
        "XF-01",
        "cross-field",
        "daily_crf",
        "pao2_fio2_mmhg",
        "PaO2/FiO2 below the limit needs mechanical ventilation",
    ),
    EditCheck(
        "XF-02",
        "cross-field",
        "daily_crf",
        "ventilated",
        "SOFA ventilation agrees with the organ-support box",
    ),
    EditCheck("XF-03", "cross-field", "daily_crf", "vasopressors", "a vasopressor dose agrees with the box"),
    EditCheck("XF-04", "cross-field", "daily_crf", "", "no daily CRF after the day of death"),
    EditCheck(
        "XF-05", "cross-field", "adverse_events", "onset_day", "no adverse event after the day of death"
    ),
    EditCheck("XF-06", "cross-field", "outcomes", "death_day", "no dose given after the day of death"),
    EditCheck("MV-01", "missed visit", "daily_crf", "", "a daily CRF for every expected day that has passed"),
)
BY_ID = {c.id: c for c in CHECKS}
_VASOPRESSORS = (
    "dopamine_ug_kg_min",
    "dobutamine_ug_kg_min",
    "epinephrine_ug_kg_min",
    "norepinephrine_ug_kg_min",
)
_UNIT = {"bilirubin": "bilirubin_unit", "creatinine": "creatinine_unit"}


@dataclass(frozen=True)
class Finding:
    """What a check found: the record it points at and the question to the site."""

    check_id: str
    table_name: str
    row_id: int | None
    study_day: int | None
    text: str

    @property
    def key(self) -> tuple[str, str, int | None, int | None]:
        return (self.check_id, self.table_name, self.row_id, self.study_day)


@dataclass(frozen=True)
class CheckRun:
    """What a run of the checks did: queries opened, closed (data corrected) and kept (still found)."""

    patients: int
    opened: int
    closed: int
    kept: int


def _g(v: float) -> str:
    return f"{v:g}"


# -- the checks ------------------------------------------------------------------------------------------
def crf_findings(p: Protocol, row: DailyCrf, death_day: int | None) -> list[Finding]:
    """Range and cross-field findings of one daily CRF row."""
    m, day = p.monitoring, row.study_day
    out: list[Finding] = []
    for cid, (item, name) in RANGE_ITEMS.items():
        value, limits = getattr(row, item), m.soft_limits.get(name)
        if value is None or limits is None:
            continue
        unit, factor = unit_factor(name, getattr(row, _UNIT[item]) if item in _UNIT else None)
        ours = float(value) / factor
        low, high = limits
        if not low <= ours <= high:
            shown = f"{_g(float(value))} {unit}"
            out.append(
                Finding(
                    cid,
                    "daily_crf",
                    row.id,
                    day,
                    f"[{cid}] day {day}: {PLAUSIBLE[name].what} {shown} is outside the expected "
                    f"{_g(low)}-{_g(high)} {PLAUSIBLE[name].unit}; please confirm against the source",
                )
            )
    pf = row.pao2_fio2_mmhg
    if (
        pf is not None
        and pf < m.pf_unventilated_min_mmhg
        and not (row.ventilated or row.mechanical_ventilation)
    ):
        out.append(
            Finding(
                "XF-01",
                "daily_crf",
                row.id,
                day,
                f"[XF-01] day {day}: PaO2/FiO2 {_g(pf)} mmHg below {_g(m.pf_unventilated_min_mmhg)} without "
                "mechanical ventilation; please confirm the ratio and the ventilation",
            )
        )
    if bool(row.ventilated) != bool(row.mechanical_ventilation):
        out.append(
            Finding(
                "XF-02",
                "daily_crf",
                row.id,
                day,
                f"[XF-02] day {day}: ventilation for the SOFA score ({'yes' if row.ventilated else 'no'}) "
                f"differs from mechanical ventilation under organ support "
                f"({'yes' if row.mechanical_ventilation else 'no'})",
            )
        )
    dosed = any((getattr(row, v) or 0) > 0 for v in _VASOPRESSORS)
    if dosed != bool(row.vasopressors):
        out.append(
            Finding(
                "XF-03",
                "daily_crf",
                row.id,
                day,
                f"[XF-03] day {day}: a vasopressor dose is {'entered' if dosed else 'not entered'} but "
                f"vasopressors under organ support is {'not ticked' if dosed else 'ticked'}",
            )
        )
    if death_day is not None and day > death_day:
        out.append(
            Finding(
                "XF-04",
                "daily_crf",
                row.id,
                day,
                f"[XF-04] a daily CRF is entered for day {day}, after the day of death (day {death_day})",
            )
        )
    return out


def death_findings(
    death_day: int | None, outcome_id: int | None, aes: Iterable[AdverseEvent], dose_days: Iterable[int]
) -> list[Finding]:
    """Findings that compare the day of death with adverse events and doses (XF-05, XF-06)."""
    if death_day is None:
        return []
    out = [
        Finding(
            "XF-05",
            "adverse_events",
            ae.id,
            ae.onset_day,
            f"[XF-05] an adverse event ({ae.pt_name}) starts on day {ae.onset_day}, after the day of death "
            f"(day {death_day})",
        )
        for ae in aes
        if ae.onset_day > death_day
    ]
    late = sorted({d for d in dose_days if d > death_day})
    if late:
        out.append(
            Finding(
                "XF-06",
                "outcomes",
                outcome_id,
                None,
                f"[XF-06] a dose is logged as given on day {', '.join(map(str, late))}, after the day of death "
                f"(day {death_day}); please check the day of death and the dosing log",
            )
        )
    return out


def missed_findings(p: Protocol, overdue_days: Iterable[int], study_day: int | None) -> list[Finding]:
    """MV-01: overdue daily CRF days that have been overdue for the grace days too."""
    grace = p.monitoring.missed_visit_grace_days
    if study_day is None:
        return []
    return [
        Finding(
            "MV-01",
            "daily_crf",
            None,
            d,
            f"[MV-01] the daily CRF of day {d} is missing; please enter it or tell why it was not done",
        )
        for d in overdue_days
        if d <= study_day - 1 - grace
    ]


# -- reconciling findings with the stored queries --------------------------------------------------------
def _key(q: Query) -> tuple[str, str, int | None, int | None]:
    return (q.check_id, q.table_name, q.row_id, q.study_day)


def reconcile(
    session: Session,
    actor: Actor,
    patient_id: int,
    findings: list[Finding],
    covers: Callable[[Query], bool],
    existing: list[Query] | None = None,
) -> tuple[int, int, int]:
    """Open a query for each new finding, keep the ones still found, close the automatic queries that
    ``covers`` says were evaluated and are no longer found. Returns (opened, closed, kept)."""
    if existing is None:
        existing = list(
            session.execute(
                select(Query).where(Query.patient_id == patient_id, Query.type == AUTOMATIC)
            ).scalars()
        )
    found = {f.key: f for f in findings}
    pending = {_key(q): q for q in existing if q.status in PENDING}
    # closed by a monitor or data manager (value confirmed): not asked again while the finding is the same
    accepted = {(_key(q), q.text) for q in existing if q.status == "closed" and q.close_reason != AUTO_CLOSED}
    opened = closed = kept = 0
    now = utcnow()
    reason = session.info.get("audit_reason", "")
    audit.set_context(session, actor.user_id, "edit check")
    for key, q in pending.items():
        if key in found:
            kept += 1
        elif covers(q):
            q.status, q.closed_by, q.closed_at = "closed", actor.user_id, now
            q.close_reason = AUTO_CLOSED
            closed += 1
    new = [
        _new_query(patient_id, f, actor.user_id, now)
        for key, f in found.items()
        if key not in pending and (key, f.text) not in accepted
    ]
    opened = len(new)
    if opened or closed:
        session.flush()  # the closes (and anything pending), audited as the edit check's
    if new:
        _insert_queries(session, new)
    audit.set_context(session, actor.user_id, reason)
    return opened, closed, kept


def _new_query(patient_id: int, f: Finding, raised_by: int, now: datetime) -> dict[str, Any]:
    """The row of the query a finding opens: every column but the key, as a new ``Query`` is flushed."""
    return {
        "patient_id": patient_id,
        "table_name": f.table_name,
        "row_id": f.row_id,
        "field": BY_ID[f.check_id].field,
        "text": f.text,
        "status": "open",
        "raised_by": raised_by,
        "raised_at": now,
        "answer": "",
        "answered_by": None,
        "answered_at": None,
        "closed_by": None,
        "closed_at": None,
        "type": AUTOMATIC,
        "check_id": f.check_id,
        "study_day": f.study_day,
        "close_reason": "",
        "reopened_by": None,
        "reopened_at": None,
        "reopen_reason": "",
    }


_QUERIES: Table = Query.__table__  # type: ignore[assignment]
_INSERT_QUERIES = insert(_QUERIES).returning(_QUERIES.c.id, sort_by_parameter_order=True)


def _insert_queries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert new queries with one Core statement and append their audit entries as the flush hook would
    (in order, after the entries of the flush before). A flush of the new ``Query`` objects cost about
    0.3 ms more CPU per daily CRF write that opens one (SQLite, in process), under the writers' lock."""
    audit.acquire_chain_lock(session)  # before the insert, as the flush hook takes it (held already: no-op)
    ids = session.connection().execute(_INSERT_QUERIES, rows).scalars().all()
    entries = [
        audit.insert_entry(session, "queries", {"id": qid, **row}, row["patient_id"])
        for qid, row in zip(ids, rows, strict=True)
    ]
    audit.append(session, entries)


# -- on save ---------------------------------------------------------------------------------------------
def crf_day_queries(row_id: Any, study_day: Any) -> ColumnElement[bool]:
    """The automatic queries a save of one daily CRF row can keep, close or leave unasked (of the patient's):
    those on the row, whatever their status (a closed one may have been accepted), and the pending
    missed-visit query of its day. :func:`on_crf_saved` reconciles with these alone: no other query has
    the key of a finding of the row or is one its save covers."""
    return or_(
        and_(Query.table_name == "daily_crf", Query.row_id == row_id),
        # One bound value per status, not an expanding list, which is rendered again at every execution.
        and_(Query.check_id == "MV-01", Query.study_day == study_day, Query.status.in_(_PENDING_VALUES)),
    )


_PENDING_VALUES = [literal(s) for s in PENDING]


_CRF_DAY_QUERIES = select(Query).where(
    Query.patient_id == bindparam("patient_id"),
    Query.type == AUTOMATIC,
    crf_day_queries(bindparam("row_id"), bindparam("study_day")),
)


def on_crf_saved(
    session: Session, actor: Actor, patient_id: int, row: DailyCrf, death_day: int | None, related: int
) -> None:
    """Run the row's checks after a daily CRF save.

    ``related``: how many of the patient's automatic queries :func:`crf_day_queries` selects, read with the
    patient before the save (a row inserted by it has none on it yet); with none there are none to read,
    and with nothing found either nothing to write.
    """
    findings = crf_findings(protocol_of(session), row, death_day)
    if not findings and not related:
        return
    existing: list[Query] = []
    if related:
        params = {"patient_id": patient_id, "row_id": row.id, "study_day": row.study_day}
        existing = list(session.execute(_CRF_DAY_QUERIES, params).scalars())
    else:  # what the read would have flushed (a signature the save invalidated), under the save's reason
        session.flush()

    def covers(q: Query) -> bool:
        on_row = q.table_name == "daily_crf" and q.row_id == row.id
        return on_row or (q.check_id == "MV-01" and q.study_day == row.study_day)

    reconcile(session, actor, patient_id, findings, covers, existing)


def on_outcome_saved(session: Session, actor: Actor, patient: Patient, outcome: Outcome) -> None:
    """Run the checks that compare the day of death with the CRF, adverse events and doses."""
    death = outcome.death_day
    crf_rows = list(session.execute(select(DailyCrf).where(DailyCrf.patient_id == patient.id)).scalars())
    aes = list(session.execute(select(AdverseEvent).where(AdverseEvent.patient_id == patient.id)).scalars())
    dose_days = session.execute(
        select(DoseRecord.study_day).where(DoseRecord.patient_id == patient.id, DoseRecord.given.is_(True))
    ).scalars()
    findings = [
        f for r in crf_rows for f in crf_findings(protocol_of(session), r, death) if f.check_id == "XF-04"
    ]
    findings += death_findings(death, outcome.id, aes, dose_days)
    death_checks = {"XF-04", "XF-05", "XF-06"}
    reconcile(session, actor, patient.id, findings, lambda q: q.check_id in death_checks)


# -- the sweep -------------------------------------------------------------------------------------------
def run_checks(session: Session, actor: Actor, *, today: date | None = None) -> CheckRun:
    """Every check on every randomized, unlocked patient in scope (data managers): opens what is new,
    closes what was corrected, keeps the rest; running it twice opens nothing the second time."""
    require(actor, "run_edit_checks")
    begin(session, actor, "edit checks run")
    ensure_writable(session)
    p = protocol_of(session)
    stmt = select(Patient).where(Patient.status == "randomized", Patient.locked_at.is_(None))
    sites = scope_site_ids(actor)
    if sites is not None:
        stmt = stmt.where(Patient.site_id.in_(sorted(sites)))
    patients = list(session.execute(stmt.order_by(Patient.id)).scalars())
    ids = [pt.id for pt in patients]
    lines = {line.pseudonym: line for line in worklist(session, actor, today=today).patients}

    def by_patient(model: Any, *where: Any) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {}
        if ids:
            for r in session.execute(select(model).where(model.patient_id.in_(ids), *where)).scalars():
                out.setdefault(r.patient_id, []).append(r)
        return out

    crf_rows = by_patient(DailyCrf)
    outcomes = {o.patient_id: o for rows in by_patient(Outcome).values() for o in rows}
    aes = by_patient(AdverseEvent)
    doses = by_patient(DoseRecord, DoseRecord.given.is_(True))
    queries = by_patient(Query, Query.type == AUTOMATIC)
    opened = closed = kept = 0
    for pt in patients:
        outcome = outcomes.get(pt.id)
        death = outcome.death_day if outcome is not None else None
        findings = [f for r in crf_rows.get(pt.id, []) for f in crf_findings(p, r, death)]
        findings += death_findings(
            death,
            outcome.id if outcome else None,
            aes.get(pt.id, []),
            [d.study_day for d in doses.get(pt.id, [])],
        )
        line = lines.get(pt.pseudonym)
        if line is not None:
            findings += missed_findings(p, line.overdue_crf_days, line.study_day)
        o, c, k = reconcile(session, actor, pt.id, findings, lambda q: True, queries.get(pt.id, []))
        opened, closed, kept = opened + o, closed + c, kept + k
    return CheckRun(len(patients), opened, closed, kept)
