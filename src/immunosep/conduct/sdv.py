"""Source data verification (SDV): a monitor marks fields or whole records as checked against source.

**The plan** (computed from the stored protocol, never stored, so anyone can reproduce it): every item of
the primary endpoint's inputs (the SOFA inputs of the daily CRF from the baseline day to the end of the
primary window), the day of death and the last day known alive, and the randomization biomarkers (the
baseline draw's ferritin and mHLA-DR) are verified in full; of every other item the plan keeps a fraction
``[monitoring] sdv_sample_rate``, drawn per *site* from SHA-256 of the protocol's ``sdv_seed``, the site,
the record kind, the study day and the field. A site's plan is thus one list of items ("GCS of day 11",
"ferritin of day 7") that the monitor checks for every patient of the site, and a new seed draws a new one.

**A mark** (``sdv_marks``) holds the SHA-256 of the values it verified. It counts only while the record's
current values give the same digest; when a service changes a verified record
(:func:`reset_changed`, called by the CRF, outcome and draw services) the mark is set invalidated with the
reason, an audited update, so the trail shows that a verified value returned to unverified. A mark of a
whole record (``field=""``) covers each of the record's items.

Blinded: only arm-free clinical tables are verified (no dose log, no allocation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, String, bindparam, cast, literal, null, select, union_all
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient, scope_site_ids
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.store import audit
from immunosep.store.models import (
    AdverseEvent,
    Base,
    BiomarkerDraw,
    DailyCrf,
    Outcome,
    Patient,
    SdvMark,
    Site,
    utcnow,
)

#: The items of each verifiable record: item -> the columns its digest covers (a value and its unit).
ITEMS: dict[str, dict[str, tuple[str, ...]]] = {
    "daily_crf": {
        "pao2_fio2_mmhg": ("pao2_fio2_mmhg",),
        "ventilated": ("ventilated",),
        "platelets_1e3_ul": ("platelets_1e3_ul",),
        "bilirubin": ("bilirubin", "bilirubin_unit"),
        "map_mmhg": ("map_mmhg",),
        "dopamine_ug_kg_min": ("dopamine_ug_kg_min",),
        "dobutamine_ug_kg_min": ("dobutamine_ug_kg_min",),
        "epinephrine_ug_kg_min": ("epinephrine_ug_kg_min",),
        "norepinephrine_ug_kg_min": ("norepinephrine_ug_kg_min",),
        "gcs": ("gcs",),
        "creatinine": ("creatinine", "creatinine_unit"),
        "urine_ml_day": ("urine_ml_day",),
        "weight_kg": ("weight_kg",),
        "mechanical_ventilation": ("mechanical_ventilation",),
        "vasopressors": ("vasopressors",),
        "ckrt": ("ckrt",),
    },
    "biomarker_draws": {
        "ferritin_ng_ml": ("ferritin_ng_ml",),
        "hla_dr_per_monocyte": ("hla_dr_per_monocyte",),
    },
    "outcomes": {
        "death_day": ("death_day",),
        "last_known_alive_day": ("last_known_alive_day",),
        "icu_discharge_day": ("icu_discharge_day",),
        "infection_day15": ("infection_day15",),
    },
    "adverse_events": {
        "onset_day": ("onset_day",),
        "term": ("pt_code", "pt_name", "verbatim"),
        "serious": ("serious",),
        "relatedness": ("relatedness",),
        "expected": ("expected",),
    },
}
_MODELS: dict[str, type[Base]] = {
    "daily_crf": DailyCrf,
    "biomarker_draws": BiomarkerDraw,
    "outcomes": Outcome,
    "adverse_events": AdverseEvent,
}
#: The daily CRF items the SOFA score is computed from (verified in full on the primary endpoint's days).
SOFA_ITEMS = frozenset(
    set(ITEMS["daily_crf"]) - {"weight_kg", "mechanical_ventilation", "vasopressors", "ckrt"}
)
#: Outcome items every plan verifies in full (the day of death and the last day known alive).
OUTCOME_ITEMS = frozenset({"death_day", "last_known_alive_day"})
#: Biomarker items that decided the randomization (the baseline draw's).
RANDOMIZATION_ITEMS = frozenset({"ferritin_ng_ml", "hla_dr_per_monocyte"})


@dataclass(frozen=True)
class PlanItem:
    """One item of a patient's plan and its state; ``changed``: verified once, changed since."""

    table_name: str
    row_id: int
    study_day: int | None
    field: str
    critical: bool
    verified: bool
    changed: bool
    verified_at: datetime | None
    #: The record as the patient's pages name it, the same for every patient (no database id):
    #: ``daily_crf/3`` (day 3), ``biomarker_draws/1``, ``outcomes``, ``adverse_events/2`` (the second).
    record: str = ""


@dataclass(frozen=True)
class PatientPlan:
    pseudonym: str
    site: str
    items: list[PlanItem]

    @property
    def planned(self) -> int:
        return len(self.items)

    @property
    def verified(self) -> int:
        return sum(i.verified for i in self.items)

    @property
    def critical(self) -> int:
        return sum(i.critical for i in self.items)

    @property
    def critical_verified(self) -> int:
        return sum(i.critical and i.verified for i in self.items)

    @property
    def changed(self) -> int:
        return sum(i.changed for i in self.items)


@dataclass(frozen=True)
class Progress:
    """SDV progress of one site or one patient: items planned and verified (all, and the 100 % part)."""

    name: str
    patients: int
    planned: int
    verified: int
    critical: int
    critical_verified: int
    changed: int

    @property
    def percent(self) -> float:
        return 100.0 * self.verified / self.planned if self.planned else 100.0


@dataclass(frozen=True)
class MarkRecord:
    pseudonym: str
    table_name: str
    row_id: int
    field: str
    verified_at: datetime


# -- the plan -------------------------------------------------------------------------------------------
def _day_of(table: str, row: Any) -> int | None:
    if table == "adverse_events":
        return int(row.onset_day)
    if table == "outcomes":
        return None
    return int(row.study_day)


def critical(protocol: Protocol, table: str, study_day: int | None, item: str) -> bool:
    """True for an item every plan verifies in full (the primary endpoint's inputs, death, randomization)."""
    primary = protocol.endpoints.primary
    window = (primary.baseline_day, primary.window_last_day)
    return _critical(window, protocol.biospecimens.baseline_day, table, study_day, item)


def _critical(window: tuple[int, int], draw_day: int, table: str, study_day: int | None, item: str) -> bool:
    if table == "daily_crf":
        return item in SOFA_ITEMS and study_day is not None and window[0] <= study_day <= window[1]
    if table == "outcomes":
        return item in OUTCOME_ITEMS
    if table == "biomarker_draws":
        return item in RANDOMIZATION_ITEMS and study_day == draw_day
    return False


def sampled(protocol: Protocol, site_code: str, table: str, study_day: int | None, item: str) -> bool:
    """True when the site's plan draws this (not critical) item: SHA-256 of the seed, site, record kind,
    day and item, read as a fraction of 2^64, below ``sdv_sample_rate`` (reproducible from the protocol)."""
    m = protocol.monitoring
    return _sampled(m.sdv_seed, m.sdv_sample_rate, site_code, table, study_day, item)


@lru_cache(maxsize=65536)
def _sampled(seed: str, rate: float, site_code: str, table: str, study_day: int | None, item: str) -> bool:
    key = f"{seed}|{site_code}|{table}|{'' if study_day is None else study_day}|{item}"
    fraction = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    return fraction < rate


def in_plan(protocol: Protocol, site_code: str, table: str, study_day: int | None, item: str) -> bool:
    return critical(protocol, table, study_day, item) or sampled(protocol, site_code, table, study_day, item)


def plan_fields(
    protocol: Protocol, site_code: str, table: str, study_day: int | None
) -> tuple[tuple[str, bool], ...]:
    """(item, critical) of each item of a ``table`` record of ``study_day`` that the site's plan holds, in
    :data:`ITEMS` order: the same for every record of that kind and day at the site, so kept per process
    (keyed by the protocol numbers the plan depends on)."""
    m, primary = protocol.monitoring, protocol.endpoints.primary
    return _plan_fields(
        m.sdv_seed,
        m.sdv_sample_rate,
        (primary.baseline_day, primary.window_last_day),
        protocol.biospecimens.baseline_day,
        site_code,
        table,
        study_day,
    )


@lru_cache(maxsize=8192)
def _plan_fields(
    seed: str,
    rate: float,
    window: tuple[int, int],
    draw_day: int,
    site_code: str,
    table: str,
    study_day: int | None,
) -> tuple[tuple[str, bool], ...]:
    out = []
    for item in ITEMS[table]:
        is_critical = _critical(window, draw_day, table, study_day, item)
        if is_critical or _sampled(seed, rate, site_code, table, study_day, item):
            out.append((item, is_critical))
    return tuple(out)


def digest(row: Any, table: str, field: str) -> str:
    """SHA-256 of the values an item (or, for ``field=""``, the whole record's items) holds now."""
    items = ITEMS[table]
    names = items[field] if field else tuple(c for cols in items.values() for c in cols)
    values = {c: getattr(row, c) for c in names}
    text = json.dumps([table, int(row.id), field, values], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _records(session: Session, patient_ids: Sequence[int]) -> dict[int, list[tuple[str, Any]]]:
    """(table, row) of every verifiable record of these patients, by patient id."""
    out: dict[int, list[tuple[str, Any]]] = {pid: [] for pid in patient_ids}
    if not patient_ids:
        return out
    for table, model in _MODELS.items():
        rows = session.execute(select(model).where(model.patient_id.in_(patient_ids))).scalars()  # type: ignore[attr-defined]
        for row in rows:
            out[int(row.patient_id)].append((table, row))  # type: ignore[attr-defined]
    return out


def _marks(session: Session, patient_ids: Sequence[int]) -> dict[tuple[str, int, str], SdvMark]:
    if not patient_ids:
        return {}
    rows = session.execute(select(SdvMark).where(SdvMark.patient_id.in_(patient_ids))).scalars()
    return {(m.table_name, m.row_id, m.field): m for m in rows}


def _valid(mark: SdvMark | None, row: Any, table: str) -> bool:
    return (
        mark is not None
        and mark.invalidated_at is None
        and mark.value_digest == digest(row, table, mark.field)
    )


def _keyed(records: Iterable[tuple[str, Any]]) -> list[tuple[str, Any, str]]:
    """(table, row, record key) in plan order; adverse events numbered in the order they were entered."""
    out: list[tuple[str, Any, str]] = []
    ae = 0
    for table, row in sorted(
        records, key=lambda r: (r[0], r[1].id if r[0] == "adverse_events" else 0, _day_of(r[0], r[1]) or 0)
    ):
        if table == "outcomes":
            key = table
        elif table == "adverse_events":
            ae += 1
            key = f"{table}/{ae}"
        else:
            key = f"{table}/{row.study_day}"
        out.append((table, row, key))
    return out


def _plan_items(
    protocol: Protocol,
    site_code: str,
    records: Iterable[tuple[str, Any]],
    marks: dict[tuple[str, int, str], SdvMark],
) -> list[PlanItem]:
    items: list[PlanItem] = []
    for table, row, record in _keyed(records):
        day = _day_of(table, row)
        whole = marks.get((table, row.id, ""))
        whole_ok = _valid(whole, row, table)
        for item, is_critical in plan_fields(protocol, site_code, table, day):
            mark = marks.get((table, row.id, item))
            ok = whole_ok or _valid(mark, row, table)
            seen = [m for m in (whole, mark) if m is not None]
            items.append(
                PlanItem(
                    table_name=table,
                    row_id=int(row.id),
                    study_day=day,
                    field=item,
                    critical=is_critical,
                    verified=ok,
                    changed=not ok and bool(seen),
                    verified_at=max(m.verified_at for m in seen) if ok and seen else None,
                    record=record,
                )
            )
    return items


def patient_plan(session: Session, actor: Actor, pseudonym: str) -> PatientPlan:
    """The patient's plan: each planned item of the records entered so far, verified or not (monitors,
    data managers)."""
    require(actor, "read_sdv")
    patient = get_patient(session, actor, pseudonym)
    site_code = session.execute(select(Site.code).where(Site.id == patient.site_id)).scalar_one()
    protocol = protocol_of(session)
    records = _records(session, [patient.id])[patient.id]
    return PatientPlan(
        pseudonym, site_code, _plan_items(protocol, site_code, records, _marks(session, [patient.id]))
    )


_DAY_COLUMN = {"daily_crf": "study_day", "biomarker_draws": "study_day", "adverse_events": "onset_day"}
_IN_PROGRESS = ("randomized", "withdrawn")


def _progress_statements() -> tuple[tuple[Any, Any, Any], tuple[Any, Any, Any]]:
    """The statements of :func:`progress`, built once: its patients, every verifiable record of theirs as
    (table, id, patient, day), and their marks; each of every site and of the sites given (``site_ids``)."""
    patients = (
        select(Patient.id, Patient.pseudonym, Site.code)
        .join(Site, Site.id == Patient.site_id)
        .where(Patient.status.in_(_IN_PROGRESS))
        .order_by(Patient.pseudonym)
    )
    parts = []
    for table, model in _MODELS.items():
        column = _DAY_COLUMN.get(table)
        day = getattr(model, column) if column else cast(null(), Integer)
        parts.append(
            select(literal(table, String), model.id, model.patient_id, day)  # type: ignore[attr-defined]
            .join(Patient, Patient.id == model.patient_id)  # type: ignore[attr-defined]
            .where(Patient.status.in_(_IN_PROGRESS))
        )
    at_sites = Patient.site_id.in_(bindparam("site_ids", expanding=True))
    records = union_all(*parts)
    records_at = union_all(*(part.where(at_sites) for part in parts))
    marks = (
        select(SdvMark)
        .join(Patient, Patient.id == SdvMark.patient_id)
        .where(Patient.status.in_(_IN_PROGRESS))
    )
    return (patients, records, marks), (patients.where(at_sites), records_at, marks.where(at_sites))


_PROGRESS, _PROGRESS_AT = _progress_statements()


def progress(session: Session, actor: Actor) -> tuple[list[Progress], list[Progress]]:
    """SDV progress per site and per randomized patient in the actor's scope (monitors, data managers).

    The counts :func:`patient_plan` gives each patient (a data manager's dashboard shows every patient's):
    the records are read as (id, patient, day) only and counted from their kind's and day's plan
    (:func:`plan_fields`); only records with a mark are read whole, to check the mark's digest.
    """
    require(actor, "read_sdv")
    protocol = protocol_of(session)
    sites = scope_site_ids(actor)
    (patients_of, records_of, marks_of), params = (
        (_PROGRESS, {}) if sites is None else (_PROGRESS_AT, {"site_ids": sorted(sites)})
    )
    patients = session.execute(patients_of, params).all()
    site_of = {int(p.id): str(p.code) for p in patients}
    marks = {(m.table_name, m.row_id, m.field): m for m in session.execute(marks_of, params).scalars()}
    marked = {(t, r) for t, r, _ in marks}
    # per patient: planned, verified, critical, critical verified, changed
    counts: dict[int, list[int]] = {pid: [0, 0, 0, 0, 0] for pid in site_of}
    with_marks: dict[str, list[int]] = {}
    for table, row_id, patient_id, day in session.connection().execute(records_of, params):
        if (table, row_id) in marked:
            with_marks.setdefault(table, []).append(int(row_id))
            continue
        plan = plan_fields(protocol, site_of[patient_id], table, day)
        c = counts[patient_id]
        c[0] += len(plan)
        c[2] += sum(is_critical for _, is_critical in plan)
    for table, row_ids in with_marks.items():  # each item's state, as in the patient's plan
        model = _MODELS[table]
        for row in session.execute(select(model).where(model.id.in_(row_ids))).scalars():  # type: ignore[attr-defined]
            pid = int(row.patient_id)  # type: ignore[attr-defined]
            c = counts[pid]
            for item in _plan_items(protocol, site_of[pid], [(table, row)], marks):
                c[0] += 1
                c[1] += item.verified
                c[2] += item.critical
                c[3] += item.critical and item.verified
                c[4] += item.changed
    per_patient: list[Progress] = []
    per_site: dict[str, list[Progress]] = {}
    for p in patients:
        line = Progress(p.pseudonym, 1, *counts[int(p.id)])
        per_patient.append(line)
        per_site.setdefault(p.code, []).append(line)
    site_lines = [
        Progress(
            code,
            len(lines),
            sum(x.planned for x in lines),
            sum(x.verified for x in lines),
            sum(x.critical for x in lines),
            sum(x.critical_verified for x in lines),
            sum(x.changed for x in lines),
        )
        for code, lines in sorted(per_site.items())
    ]
    return site_lines, per_patient


# -- marking and resetting ------------------------------------------------------------------------------
def verify(
    session: Session, actor: Actor, pseudonym: str, *, table_name: str, row_id: int, field: str = ""
) -> MarkRecord:
    """Mark one item (``field``) or a whole record (``field=""``) of the patient as verified against
    source (monitors); a mark made before is renewed with the values as they are now."""
    require(actor, "verify_source")
    begin(session, actor, "source data verified")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if table_name not in ITEMS:
        raise ImmunoSepError(f"source data verification covers one of {tuple(ITEMS)}", field="table_name")
    if field and field not in ITEMS[table_name]:
        raise ImmunoSepError(
            f"{table_name} has the items {', '.join(ITEMS[table_name])} (or none, for the whole record)",
            field="field",
        )
    model = _MODELS[table_name]
    row = session.execute(
        select(model).where(model.id == row_id, model.patient_id == patient.id)  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if row is None:
        raise ImmunoSepError(f"no {table_name} record {row_id} of patient {pseudonym}", field="row_id")
    now = utcnow()
    mark = session.execute(
        select(SdvMark).where(
            SdvMark.table_name == table_name, SdvMark.row_id == row_id, SdvMark.field == field
        )
    ).scalar_one_or_none()
    value = digest(row, table_name, field)
    if mark is None:
        mark = SdvMark(
            patient_id=patient.id,
            table_name=table_name,
            row_id=row_id,
            field=field,
            value_digest=value,
            verified_by=actor.user_id,
            verified_at=now,
            invalidated_reason="",
        )
        session.add(mark)
    else:
        mark.value_digest, mark.verified_by, mark.verified_at = value, actor.user_id, now
        mark.invalidated_at, mark.invalidated_reason = None, ""
    session.flush()
    return MarkRecord(pseudonym, table_name, row_id, field, now)


def verify_record(session: Session, actor: Actor, pseudonym: str, record: str, field: str = "") -> MarkRecord:
    """:func:`verify` of a record named by its key (:attr:`PlanItem.record`, e.g. ``daily_crf/3``)."""
    require(actor, "verify_source")
    begin(session, actor, "source data verified")
    patient = get_patient(session, actor, pseudonym)
    for table, row, key in _keyed(_records(session, [patient.id])[patient.id]):
        if key == record:
            return verify(session, actor, pseudonym, table_name=table, row_id=int(row.id), field=field)
    raise ImmunoSepError(f"no record {record!r} of patient {pseudonym} to verify", field="record")


def reset_changed(session: Session, table_name: str, row: Any) -> int:
    """Set invalidated every mark of ``row`` whose values changed (an audited update, with the reason);
    the services call it after changing a record. Returns how many marks returned to unverified."""
    marks = session.execute(
        select(SdvMark).where(
            SdvMark.table_name == table_name, SdvMark.row_id == row.id, SdvMark.invalidated_at.is_(None)
        )
    ).scalars()
    changed = [m for m in marks if m.value_digest != digest(row, table_name, m.field)]
    if not changed:
        return 0
    user_id = session.info.get("audit_user_id")
    why = session.info.get("audit_reason", "")
    audit.set_context(session, user_id, f"verified value changed, returns to unverified ({why})")
    now = utcnow()
    for m in changed:
        m.invalidated_at = now
        m.invalidated_reason = f"changed after verification: {why}" if why else "changed after verification"
    session.flush()
    audit.set_context(session, user_id, why)
    return len(changed)
