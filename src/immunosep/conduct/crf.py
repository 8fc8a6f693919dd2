"""The daily case report form: one row per patient-day with the SOFA inputs and organ support.

SOFA is always computed by ``clinical.sofa.sofa`` from the stored inputs, never typed in. A second
entry for the same day is a correction and needs a reason (recorded in the audit trail with the old and
new values). Everything here is arm-free, so every clinical reader gets the same view.
"""

from __future__ import annotations

from dataclasses import dataclass as std_dataclass
from dataclasses import fields
from types import SimpleNamespace
from typing import Any, cast

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass
from sqlalchemy import Table, and_, bindparam, func, insert, select
from sqlalchemy.orm import Session

from immunosep.clinical.sofa import SofaScore, sofa
from immunosep.clinical.units import measured
from immunosep.conduct import casebook, dosing, sdv
from immunosep.conduct.access import (
    Actor,
    begin,
    get_patient,
    patient_select,
    writable_patient,
)
from immunosep.conduct.edit_checks import AUTOMATIC, crf_day_queries, on_crf_saved
from immunosep.conduct.permissions import require
from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.models import DailyCrf, Outcome, Patient, Query, SdvMark

MAX_STUDY_DAY = 90
#: The patient, the trial and the patient-day being entered (if entered before), in one statement, with
#: what the edit checks and source data verification need: the patient's automatic queries that the save
#: may keep or close (``edit_checks.crf_day_queries``), the day of death, and the live verification marks
#: of the day's record.
_PATIENT_DAY = patient_select(
    DailyCrf.id,
    select(func.count())
    .where(
        Query.patient_id == Patient.id,
        Query.type == AUTOMATIC,
        crf_day_queries(DailyCrf.id, bindparam("study_day")),
    )
    .correlate(Patient, DailyCrf)
    .scalar_subquery(),
    select(Outcome.death_day).where(Outcome.patient_id == Patient.id).correlate(Patient).scalar_subquery(),
    select(func.count())
    .where(SdvMark.table_name == "daily_crf", SdvMark.row_id == DailyCrf.id, SdvMark.invalidated_at.is_(None))
    .correlate(DailyCrf)
    .scalar_subquery(),
).outerjoin(DailyCrf, and_(DailyCrf.patient_id == Patient.id, DailyCrf.study_day == bindparam("study_day")))


@dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class SofaInputs:
    """The SOFA inputs of one patient-day as they are entered: the bedside calculator's form and API, and
    the daily CRF (its form, its API and the simulated sites) all take this one model.

    The worst value of the day (``None`` = not measured), in the unit its name carries (vasopressors in
    ug/kg/min). Bilirubin and creatinine are kept as the laboratory reports them, with their unit:
    ``bilirubin_unit``/``creatinine_unit`` "mg/dL" or "umol/L"; ``None`` = not stated, read as mg/dL, but
    a value that looks like umol/L is refused until the unit is stated. Plausible ranges have one home,
    :data:`immunosep.clinical.units.PLAUSIBLE`, and are checked when the inputs are scored.
    """

    pao2_fio2_mmhg: float | None = None
    ventilated: bool = False
    platelets_1e3_ul: float | None = None
    bilirubin: float | None = None
    bilirubin_unit: str | None = None
    map_mmhg: float | None = None
    dopamine_ug_kg_min: float | None = None
    dobutamine_ug_kg_min: float | None = None
    epinephrine_ug_kg_min: float | None = None
    norepinephrine_ug_kg_min: float | None = None
    gcs: int | None = None
    creatinine: float | None = None
    creatinine_unit: str | None = None
    urine_ml_day: float | None = None

    def sofa_keywords(self) -> dict[str, Any]:
        """The keywords of :func:`immunosep.clinical.sofa.sofa` (its unit-bearing names)."""
        return {CLINICAL_NAME.get(name, name): getattr(self, name) for name in SOFA_INPUT_FIELDS}

    def score(self) -> SofaScore:
        """SOFA (Vincent 1996) of these inputs; an implausible value raises one ``ImmunoSepError``
        naming the value and the unit it most likely is in (its ``field`` in the clinical vocabulary:
        :func:`item_of_error` gives the CRF item)."""
        return sofa(**self.sofa_keywords())


@dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class DailyInputs(SofaInputs):
    """A daily CRF: the SOFA inputs, the body weight (kg) and the organ support of the day."""

    weight_kg: float | None = None
    mechanical_ventilation: bool = False
    vasopressors: bool = False
    ckrt: bool = False


SOFA_INPUT_FIELDS = tuple(f.name for f in fields(SofaInputs))
#: A CRF item whose value is stored in its own unit -> its name in ``clinical.sofa`` and
#: ``clinical.units.PLAUSIBLE`` (every other item has the same name in both).
CLINICAL_NAME = {"bilirubin": "bilirubin_mg_dl", "creatinine": "creatinine_mg_dl"}
#: The field an error of the SOFA rules names (clinical vocabulary) -> the CRF item it is about.
ERROR_ITEM = {
    **{name: name for name in (*SOFA_INPUT_FIELDS, "weight_kg") if not name.endswith("_unit")},
    **{clinical: item for item, clinical in CLINICAL_NAME.items()},
    "pao2_fio2": "pao2_fio2_mmhg",
    "pao2_mmhg": "pao2_fio2_mmhg",
}
ERROR_ITEM.pop("ventilated")


def item_of_error(field: str | None) -> str | None:
    """The CRF item an ``ImmunoSepError`` of the SOFA rules is about (``field`` in the clinical
    vocabulary, e.g. ``bilirubin_mg_dl`` -> ``bilirubin``), or ``None`` when it names no CRF value."""
    return ERROR_ITEM.get(field or "")


INPUT_FIELDS = tuple(f.name for f in fields(DailyInputs))
SOFA_FIELDS = (
    "sofa_respiration",
    "sofa_coagulation",
    "sofa_liver",
    "sofa_cardiovascular",
    "sofa_cns",
    "sofa_renal",
    "sofa_total",
    "sofa_missing",
)


@std_dataclass(frozen=True)
class DailyRecord:
    """One stored patient-day: the inputs and the computed SOFA."""

    pseudonym: str
    study_day: int
    inputs: DailyInputs
    sofa_total: int
    sofa_components: dict[str, int]
    sofa_missing: str


def _score(inputs: DailyInputs) -> dict[str, int | str]:
    """The day's SOFA; every input is checked against its plausible range first (one
    ``ImmunoSepError`` naming the field, the value and the unit it most likely is in)."""
    if inputs.weight_kg is not None:
        measured("weight_kg", inputs.weight_kg, missing_ok=False)
    s = inputs.score()
    return {
        "sofa_respiration": s.respiration,
        "sofa_coagulation": s.coagulation,
        "sofa_liver": s.liver,
        "sofa_cardiovascular": s.cardiovascular,
        "sofa_cns": s.cns,
        "sofa_renal": s.renal,
        "sofa_total": s.total,
        "sofa_missing": ",".join(s.missing),
    }


def _record(pseudonym: str, row: DailyCrf) -> DailyRecord:
    return DailyRecord(
        pseudonym=pseudonym,
        study_day=row.study_day,
        inputs=DailyInputs(**{f: getattr(row, f) for f in INPUT_FIELDS}),
        sofa_total=row.sofa_total,
        sofa_components={f.removeprefix("sofa_"): getattr(row, f) for f in SOFA_FIELDS[:6]},
        sofa_missing=row.sofa_missing,
    )


def record_day(
    session: Session, actor: Actor, pseudonym: str, study_day: int, inputs: DailyInputs, *, reason: str = ""
) -> DailyRecord:
    """Enter a patient-day, or correct it (``reason`` required); SOFA is recomputed either way.

    The day and the inputs are checked and scored before the writers' lock is taken (they depend on
    nothing stored), so the lock is held for the reads and writes only.
    """
    require(actor, "enter_crf")
    if not 1 <= study_day <= MAX_STUDY_DAY:
        raise ImmunoSepError(f"study day must be 1-{MAX_STUDY_DAY}, got {study_day}", field="study_day")
    values: dict[str, Any] = {f: getattr(inputs, f) for f in INPUT_FIELDS}  # flat: no deep copies
    for unit in ("bilirubin_unit", "creatinine_unit"):  # not stated: read (and stored) as SOFA's mg/dL
        values[unit] = values[unit] or "mg/dL"
    values.update(_score(inputs))
    begin(session, actor, reason or "daily CRF")
    patient, row_id, related_queries, death_day, marks = writable_patient(
        session, actor, _PATIENT_DAY, {"pseudonym": pseudonym, "study_day": study_day}
    )
    if patient.status != "randomized":
        raise ImmunoSepError(
            f"patient {pseudonym} is not randomized; the daily CRF starts after randomization"
        )
    row: DailyCrf
    if row_id is None:
        values.update(patient_id=patient.id, study_day=study_day, recorded_by=actor.user_id)
        # The row as stored, for the checks and the answer: not an ORM object, whose instrumented
        # constructor cost more than the insert's Python side, under the writers' lock.
        row = cast(DailyCrf, SimpleNamespace(id=_insert_day(session, values), **values))
    else:
        if not reason.strip():
            raise ImmunoSepError(
                f"day {study_day} of {pseudonym} is already entered; a correction needs a reason",
                field="reason",
            )
        row = session.get_one(DailyCrf, row_id)
        for k, v in values.items():
            setattr(row, k, v)
        session.flush()
        if marks:  # a verified value that changed returns to unverified (audited)
            sdv.reset_changed(session, "daily_crf", row)
    on_crf_saved(session, actor, patient.id, row, death_day, related_queries)
    return _record(pseudonym, row)


_DAILY_CRF: Table = DailyCrf.__table__  # type: ignore[assignment]
#: On the table, not the class: a Core statement (the ORM's bulk insert costs more than a flush).
_INSERT_DAY = insert(_DAILY_CRF).returning(_DAILY_CRF.c.id)


def _insert_day(session: Session, values: dict[str, Any]) -> int:
    """Insert a new patient-day (``values``: every column but the key) with one Core statement, and do what
    the flush hooks do for a new ``DailyCrf``: its audit entry, and the invalidation of a signature that
    covered the patient's casebook (left to the next flush, as the hook leaves it). Returns its id.

    The ORM's flush of the one new object cost about 0.5 ms more CPU per write than this (SQLite, in
    process, about 3.0 -> 2.4 ms a write), all of it under the writers' lock."""
    session.flush()  # what is pending first, as a flush of the new row would have written it
    audit.acquire_chain_lock(session)  # before the insert, as the flush hook takes it (held already: no-op)
    # On the session's connection: the session's own execute cost as much again as the statement, under
    # the lock, for its execution hooks, of which only dosing's applies (the day's creatinine and weight).
    row_id: int = session.connection().execute(_INSERT_DAY, values).scalar_one()
    dosing.forget_regimens(session)
    patient_id: int = values["patient_id"]
    audit.append(session, [audit.insert_entry(session, "daily_crf", {"id": row_id, **values}, patient_id)])
    with session.no_autoflush:  # as inside the flush hook: an invalidated signature waits for the next flush
        casebook.records_changed(session, {patient_id})
    return row_id


def daily_records(session: Session, actor: Actor, pseudonym: str) -> list[DailyRecord]:
    """All patient-days of one patient, by day (investigators, monitors, data managers)."""
    require(actor, "read_crf")
    patient = get_patient(session, actor, pseudonym)
    return [_record(pseudonym, r) for r in _rows(session, patient)]


def _rows(session: Session, patient: Patient) -> list[DailyCrf]:
    return list(
        session.execute(
            select(DailyCrf).where(DailyCrf.patient_id == patient.id).order_by(DailyCrf.study_day)
        ).scalars()
    )
