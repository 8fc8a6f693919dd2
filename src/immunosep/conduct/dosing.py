"""Dosing: the day's double-dummy regimen for the unblinded pharmacist, and the log of every dose.

The regimen comes from ``clinical.regimen.daily_regimen`` with the creatinine clearance in force on the
dose day, by the one carry-forward rule ``clinical.regimen.clearance_in_force``: the clearance of the most
recent study day <= the dose day whose daily CRF has a creatinine and a weight (the CRF's, else the
screening weight) stands until a new one is recorded (Cockcroft-Gault, ``clinical.renal``; age and sex
from screening). With no clearance known at all, the ``renal.route`` (IV) injection is held, in every arm
alike (the saline dummy too, so nothing reveals the arm): the regimen carries a warning, and
:func:`record_dose` refuses to log it as given until a creatinine is entered on a daily CRF (it may be
logged as missed, with a reason). Each dose record keeps the clearance it used and the CRF day it came
from. The first dose must start within ``protocol.treatment.first_dose_max_hours_after_onset`` of sepsis
onset. Blinded roles see only :func:`administrations` (day, hour, route, given or missed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session

from immunosep.clinical.regimen import (
    ClearanceInForce,
    DailyDose,
    clearance_in_force,
    daily_regimen,
    describe_clearance,
    renal_route_held,
)
from immunosep.clinical.renal import creatinine_clearance_ml_min
from immunosep.clinical.units import creatinine_mg_dl
from immunosep.conduct.access import (
    Actor,
    begin,
    ensure_writable,
    get_patient,
    scope_condition,
)
from immunosep.conduct.access_log import log_access
from immunosep.conduct.permissions import require
from immunosep.conduct.randomization import slot_of
from immunosep.conduct.trial import protocol_of
from immunosep.errors import Conflict, ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.store.db import TrialSession, holds_writers_lock
from immunosep.store.models import DailyCrf, DoseRecord, Outcome, Patient, RandomizationSlot, utcnow


def study_day_on(first_dose_on: date, today: date) -> int:
    """Study day of ``today`` when day 1 is the day of the first dose (UTC dates)."""
    return (today - first_dose_on).days + 1


def first_dose_deadline(sepsis_onset_at: datetime, protocol: Protocol) -> datetime:
    """When the first-dose window closes: ``protocol.treatment.first_dose_max_hours_after_onset`` after
    sepsis onset (a first dose at or after it is refused)."""
    return sepsis_onset_at + timedelta(hours=protocol.treatment.first_dose_max_hours_after_onset)


@dataclass(frozen=True)
class DayRegimen:
    """What the pharmacist prepares for one day (unblinded).

    ``crcl_ml_min`` is the clearance in force (mL/min) and ``crcl_study_day`` the study day of the CRF it
    was computed from (earlier than ``study_day`` when carried forward); both None when none is known.
    ``clearance`` says it in words (value with enough digits, source day, the rule's side) or, with none
    known, the warning; ``held_routes`` are the routes that may not be logged as given that day.
    """

    pseudonym: str
    study_day: int
    crcl_ml_min: float | None
    crcl_study_day: int | None
    clearance: str
    held_routes: tuple[str, ...]
    doses: tuple[DailyDose, ...]


_CRF_RENAL = (DailyCrf.study_day, DailyCrf.creatinine, DailyCrf.creatinine_unit, DailyCrf.weight_kg)


def _clearances(patient: Patient, rows: Iterable[Any], protocol: Protocol) -> dict[int, float | None]:
    """Creatinine clearance (mL/min) of each CRF row ``(study_day, creatinine, unit, weight_kg)`` with a
    creatinine; None for a day without any weight (neither the CRF's nor the screening weight)."""
    out: dict[int, float | None] = {}
    for day, creatinine, unit, crf_weight in rows:
        if creatinine is None:
            continue
        weight = crf_weight if crf_weight is not None else patient.weight_kg
        out[day] = (
            None
            if weight is None
            else float(
                creatinine_clearance_ml_min(
                    patient.age_years,
                    weight,
                    patient.sex,
                    float(creatinine_mg_dl(creatinine, unit)),
                    height_cm=patient.height_cm,
                    protocol=protocol,
                )
            )
        )
    return out


# Statements of every dose, built once (building a statement costs more than running it on SQLite).
_RENAL_ROWS = select(*_CRF_RENAL).where(
    DailyCrf.patient_id == bindparam("patient_id"),
    DailyCrf.study_day <= bindparam("study_day"),
    DailyCrf.creatinine.is_not(None),
)
_LOGGED = select(DoseRecord.id).where(
    DoseRecord.patient_id == bindparam("patient_id"),
    DoseRecord.study_day == bindparam("study_day"),
    DoseRecord.route == bindparam("route"),
    DoseRecord.hour == bindparam("hour"),
)


def _measured_clearances(session: Session, patient: Patient, study_day: int) -> dict[int, float | None]:
    """Creatinine clearance of each CRF day <= ``study_day`` of ``patient`` (see :func:`_clearances`)."""
    rows = session.execute(_RENAL_ROWS, {"patient_id": patient.id, "study_day": study_day}).all()
    return _clearances(patient, rows, protocol_of(session))


def _clearance_words(known: ClearanceInForce | None, study_day: int, protocol: Protocol) -> str:
    if known is None:
        return (
            f"no creatinine clearance known on or before day {study_day}: the {protocol.renal.route.upper()} "
            "injection is on hold until the investigator enters a creatinine (and a weight, if none was "
            "given at screening) on the daily CRF"
        )
    source = (
        f"from the CRF of day {known.study_day}"
        if known.study_day == study_day
        else f"from the CRF of day {known.study_day}, carried forward (no newer clearance)"
    )
    return f"{describe_clearance(known.crcl_ml_min, protocol)}, {source}"


#: ``session.info`` key of the day regimens worked out in this transaction under the writers' lock:
#: ``(patient id, study day) -> DayRegimen``. A day's three or four injections are logged one by one, and
#: each must be checked against the regimen and the clearance in force: worked out once per patient-day,
#: they are the same as recomputed at each dose while nothing they come from changes. Every flush that
#: writes a daily CRF, a patient or a randomization slot, every bulk UPDATE, DELETE or INSERT and every
#: end of a transaction or savepoint forget them all (:func:`forget_regimens`).
_REGIMENS = "dosing_regimens"
#: The rows a day's regimen is worked out from (the CRF's creatinine and weight; age, sex, height,
#: screening weight and stratum; the arm).
_REGIMEN_SOURCES = (DailyCrf, Patient, RandomizationSlot)


def forget_regimens(session: Session) -> None:
    """Forget the regimens worked out in this transaction: for a service that writes a daily CRF, a patient
    or a randomization slot with a Core statement on the session's connection, which no hook sees."""
    session.info.pop(_REGIMENS, None)


@event.listens_for(TrialSession, "after_flush")
def _forget_regimens_on_flush(session: Session, _flush: Any) -> None:
    """A flush that wrote a row a regimen comes from forgets the regimens worked out before it."""
    if _REGIMENS not in session.info:
        return
    for group in (session.new, session.dirty, session.deleted):  # still as they were before the flush
        if any(isinstance(obj, _REGIMEN_SOURCES) for obj in group):
            forget_regimens(session)
            return


@event.listens_for(TrialSession, "do_orm_execute")
def _forget_regimens_on_bulk_write(state: ORMExecuteState) -> None:
    if not state.is_select:
        forget_regimens(state.session)


@event.listens_for(TrialSession, "after_transaction_end")
def _forget_regimens_at_end(session: Session, transaction: Any) -> None:
    """The end of the transaction, or of a savepoint (rolled back, it may take a CRF with it); not the
    inner transaction of each flush."""
    if transaction.parent is None or transaction.nested:
        forget_regimens(session)


def _regimen(session: Session, patient: Patient, study_day: int) -> DayRegimen:
    """The day's regimen; worked out once per patient-day while the writers' lock is held (:data:`_REGIMENS`)."""
    p = protocol_of(session)
    if not 1 <= study_day <= p.treatment.days:
        raise ImmunoSepError(f"treatment days are 1-{p.treatment.days}, got {study_day}", field="study_day")
    if not holds_writers_lock(session):  # what was read may change under us: nothing is kept
        return _work_out_regimen(session, patient, study_day, p)
    regimens: dict[tuple[int, int], DayRegimen] = session.info.setdefault(_REGIMENS, {})
    key = (patient.id, study_day)
    regimen = regimens.get(key)
    if regimen is None:
        regimen = regimens[key] = _work_out_regimen(session, patient, study_day, p)
    return regimen


def _work_out_regimen(session: Session, patient: Patient, study_day: int, p: Protocol) -> DayRegimen:
    slot = slot_of(session, patient)
    assert patient.stratum is not None
    known = clearance_in_force(_measured_clearances(session, patient, study_day), study_day, p)
    doses = daily_regimen(patient.stratum, slot.arm, None if known is None else known.crcl_ml_min, protocol=p)
    return DayRegimen(
        pseudonym=patient.pseudonym,
        study_day=study_day,
        crcl_ml_min=None if known is None else known.crcl_ml_min,
        crcl_study_day=None if known is None else known.study_day,
        clearance=_clearance_words(known, study_day, p),
        held_routes=tuple(d.route for d in doses if renal_route_held(d.route, known, p)),
        doses=tuple(doses),
    )


def day_regimen(session: Session, actor: Actor, pseudonym: str, study_day: int) -> DayRegimen:
    """The day's injections (active or dummy) with the clearance in force and its day, renal adjustment
    applied; with no clearance known the renal route is held (see the module): pharmacist of the site."""
    require(actor, "see_regimen")
    patient = get_patient(session, actor, pseudonym)
    regimen = _regimen(session, patient, study_day)
    log_access(
        session,
        actor,
        "read",
        "see_regimen",
        subject_id=patient.id,
        pseudonym=pseudonym,
        detail={"study_day": study_day},
    )
    return regimen


#: Length of ``DoseRecord.missed_reason`` (store.models), the same on both backends.
MISSED_REASON_MAX = 200


def record_dose(
    session: Session,
    actor: Actor,
    pseudonym: str,
    study_day: int,
    route: str,
    hour: int,
    *,
    given: bool,
    missed_reason: str = "",
    given_at: datetime | None = None,
) -> DoseRecord:
    """Log one scheduled injection as given or missed (with a reason), with the clearance it used.

    A held injection (renal route, no clearance known yet) is refused as given, in every arm alike.
    """
    require(actor, "record_dose")
    begin(session, actor, "dose log")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    regimen = _regimen(session, patient, study_day)

    def logged(route: str, hour: int) -> bool:
        params = {"patient_id": patient.id, "study_day": study_day, "route": route, "hour": hour}
        return session.execute(_LOGGED, params).first() is not None

    entry = DoseEntry(route, hour, given=given, missed_reason=missed_reason, given_at=given_at)
    record = _dose_record(session, actor, patient, regimen, entry, logged)
    session.add(record)
    try:
        session.flush()
    except IntegrityError as exc:  # the same dose logged at the same moment (a form submitted twice)
        raise Conflict(_already(entry, study_day, pseudonym), field="hour") from exc
    return record


@dataclass(frozen=True)
class DoseEntry:
    """One scheduled injection to log as given or missed (the arguments of :func:`record_dose`)."""

    route: str
    hour: int
    given: bool
    missed_reason: str = ""
    given_at: datetime | None = None


_LOGGED_ON_DAY = select(DoseRecord.route, DoseRecord.hour).where(
    DoseRecord.patient_id == bindparam("patient_id"), DoseRecord.study_day == bindparam("study_day")
)


def record_doses(
    session: Session, actor: Actor, pseudonym: str, study_day: int, entries: Sequence[DoseEntry]
) -> list[DoseRecord | ImmunoSepError]:
    """Log a day's injections of one patient at once: each checked as :func:`record_dose` checks it.

    In order, so that the first dose given sets the first-dose time the next ones are checked against;
    with the day's regimen and clearance in force worked out once (the renal hold is checked at every
    injection). Returns, for each entry, its record or the error that refused it (a refused injection is
    left out, the others are logged). An error about the patient or the day (access, lock, not a
    treatment day) refuses them all, raised. One flush: a site's pharmacist logs the day's sheet.
    """
    require(actor, "record_dose")
    begin(session, actor, "dose log")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    regimen = _regimen(session, patient, study_day)
    done = {
        (str(route), int(hour))
        for route, hour in session.execute(_LOGGED_ON_DAY, {"patient_id": patient.id, "study_day": study_day})
    }
    out: list[DoseRecord | ImmunoSepError] = []
    for entry in entries:
        try:
            record = _dose_record(session, actor, patient, regimen, entry, lambda r, h: (r, h) in done)
        except ImmunoSepError as exc:
            out.append(exc)
            continue
        done.add((entry.route, entry.hour))
        session.add(record)
        out.append(record)
    try:
        session.flush()
    except IntegrityError as exc:  # one of them logged at the same moment (a form submitted twice)
        raise Conflict(
            f"a dose of day {study_day} was logged for {pseudonym} meanwhile; reload the day", field="hour"
        ) from exc
    return out


def _already(entry: DoseEntry, study_day: int, pseudonym: str) -> str:
    return f"the {entry.route} dose of day {study_day} at hour {entry.hour} is already logged for {pseudonym}"


def _dose_record(
    session: Session,
    actor: Actor,
    patient: Patient,
    regimen: DayRegimen,
    entry: DoseEntry,
    logged: Callable[[str, int], bool],
) -> DoseRecord:
    """The record of one injection of ``regimen``'s day, after every check (not added to the session).

    Sets the patient's first-dose time when it is the first dose given. ``logged(route, hour)`` says
    whether that injection is logged already.
    """
    study_day, route, hour, given, missed_reason = (
        regimen.study_day,
        entry.route,
        entry.hour,
        entry.given,
        entry.missed_reason,
    )
    dose = next((d for d in regimen.doses if d.route == route), None)
    if dose is None:
        raise ImmunoSepError(f"route must be one of {[d.route for d in regimen.doses]}", field="route")
    if not 0 <= hour < 24 or ((study_day - 1) * 24 + hour) % dose.interval_hours:
        raise ImmunoSepError(
            f"no {route} dose is due on day {study_day} at hour {hour}: {route} doses are due every "
            f"{dose.interval_hours} h from hour 0 of day 1",
            field="hour",
        )
    if not given and not missed_reason.strip():
        raise ImmunoSepError("a missed dose needs a reason", field="missed_reason")
    if len(missed_reason) > MISSED_REASON_MAX:
        raise ImmunoSepError(
            f"the reason for a missed dose has at most {MISSED_REASON_MAX} characters", field="missed_reason"
        )
    if logged(route, hour):
        raise Conflict(_already(entry, study_day, regimen.pseudonym), field="hour")
    if given and route in regimen.held_routes:
        raise ImmunoSepError(
            f"{regimen.pseudonym}: {regimen.clearance}. The {route.upper()} dose is adjusted to the "
            "renal function, so it cannot be logged as given before a clearance is known; log it as missed "
            "with a reason if it cannot wait",
            field="route",
        )
    p = protocol_of(session)
    when = entry.given_at or utcnow()
    if given and patient.first_dose_at is None:
        if when >= first_dose_deadline(patient.sepsis_onset_at, p):
            hours = (when - patient.sepsis_onset_at).total_seconds() / 3600.0
            limit = p.treatment.first_dose_max_hours_after_onset
            raise ImmunoSepError(
                f"the first dose must start within {limit:g} h of sepsis onset ({hours:.1f} h have passed)"
            )
        patient.first_dose_at = when
    return DoseRecord(
        patient_id=patient.id,
        study_day=study_day,
        hour=hour,
        route=route,
        drug=dose.drug,
        dose=dose.dose,
        unit=dose.unit,
        volume_ml=dose.volume_ml,
        dummy=dose.dummy,
        renal_adjusted=dose.renal_adjusted,
        crcl_ml_min=regimen.crcl_ml_min,
        crcl_study_day=regimen.crcl_study_day,
        given=given,
        missed_reason=missed_reason,
        recorded_by=actor.user_id,
    )


@dataclass(frozen=True)
class Administration:
    """A blinded view of one logged injection."""

    study_day: int
    hour: int
    route: str
    given: bool
    missed_reason: str


def administrations(session: Session, actor: Actor, pseudonym: str) -> list[Administration]:
    """Which scheduled injections were given or missed, without drug, dose or volume."""
    require(actor, "read_dosing_log")
    patient = get_patient(session, actor, pseudonym)
    rows = session.execute(
        select(DoseRecord)
        .where(DoseRecord.patient_id == patient.id)
        .order_by(DoseRecord.study_day, DoseRecord.hour, DoseRecord.route)
    ).scalars()
    return [Administration(r.study_day, r.hour, r.route, r.given, r.missed_reason) for r in rows]


def due_hours(study_day: int, interval_hours: int) -> list[int]:
    """Hours (0-23) of ``study_day`` when a dose given every ``interval_hours`` from day 1 hour 0 is due."""
    return [h for h in range(24) if ((study_day - 1) * 24 + h) % interval_hours == 0]


@dataclass(frozen=True)
class TreatmentDay:
    """A patient on study treatment today, as the pharmacist's list shows it (unblinded role only)."""

    pseudonym: str
    study_day: int  # today's study day; 1 while the first dose is not logged
    first_dose_logged: bool
    due: int  # injections due that day, every route
    logged: int  # of them, logged as given or missed
    renal_hold: bool  # no creatinine clearance known on or before that day: the renal route is held


def patients_on_treatment(session: Session, actor: Actor, now: datetime | None = None) -> list[TreatmentDay]:
    """The randomized patients of the pharmacist's site whose treatment runs today (study day 1 to the last
    treatment day, alive), with how many of the day's injections are logged and whether the renal route
    is held for want of a creatinine clearance (same rule as :func:`day_regimen`); by pseudonym. A patient
    whose first dose is not logged stays on the list only while it may still start (within
    ``protocol.treatment.first_dose_max_hours_after_onset`` of sepsis onset)."""
    require(actor, "list_on_treatment")
    now = now or utcnow()
    today = now.date()
    p = protocol_of(session)
    rows = session.execute(
        select(Patient, RandomizationSlot.arm, Outcome.death_day)
        .join(RandomizationSlot, RandomizationSlot.patient_id == Patient.id)
        .outerjoin(Outcome, Outcome.patient_id == Patient.id)
        .where(Patient.status == "randomized", scope_condition(actor))
        .order_by(Patient.pseudonym)
    ).all()
    counts = session.execute(
        select(DoseRecord.patient_id, DoseRecord.study_day, func.count())
        .where(DoseRecord.patient_id.in_([patient.id for patient, _, _ in rows]))
        .group_by(DoseRecord.patient_id, DoseRecord.study_day)
    ).all()
    logged = {(pid, day): int(n) for pid, day, n in counts}
    renal_rows: dict[int, list[Any]] = {}
    for pid, *row in session.execute(
        select(DailyCrf.patient_id, *_CRF_RENAL).where(
            DailyCrf.patient_id.in_([patient.id for patient, _, _ in rows]), DailyCrf.creatinine.is_not(None)
        )
    ):
        renal_rows.setdefault(pid, []).append(row)
    out = []
    for patient, arm, death_day in rows:
        first = patient.first_dose_at
        if first is None and now >= first_dose_deadline(patient.sepsis_onset_at, p):
            continue  # too late to start: record_dose would refuse the first dose
        day = 1 if first is None else study_day_on(first.date(), today)
        if not 1 <= day <= p.treatment.days or (death_day is not None and death_day <= day):
            continue
        assert patient.stratum is not None
        due = sum(len(due_hours(day, item.interval_hours)) for item in p.regimen_for(patient.stratum, arm))
        done = logged.get((patient.id, day), 0)
        known = clearance_in_force(_clearances(patient, renal_rows.get(patient.id, []), p), day, p)
        out.append(TreatmentDay(patient.pseudonym, day, first is not None, due, done, known is None))
    log_access(session, actor, "read", "list_on_treatment", detail={"patients": len(out)})
    return out
