"""A patient's casebook as signed: its records, their canonical serialisation and SHA-256 digests.

An electronic signature (``conduct.signatures``) is linked to the exact record versions it covers by the
SHA-256 of :meth:`Casebook.text`, a canonical serialisation of every casebook record of the patient:
the patient row (less its lock and bookkeeping columns), screening log, eligibility answers, consent,
biomarker draws, daily CRFs, outcome, adverse events and withdrawal. Never an arm: the tables that reveal
an allocation (``conduct.blinding.ALLOCATION_TABLES``: kits, doses, unblindings) are not part of it, so
the casebook a blinded signer sees and signs is the one anybody signs. Queries are not records either.

Canonical form: JSON with sorted keys, no whitespace, ASCII only; records sorted by their key; NULL values
left out (so a nullable column added later does not change the digest of what was signed before); times
in ISO 8601 UTC; numbers of a float column as floats, whatever the backend returned. ``manifest`` is each
record's own SHA-256, kept with a signature so that a later change can be named ("daily CRF, day 3
changed").

:func:`install` hooks the trial sessions (``store.db.TrialSession``): a flush that changes a record of a
patient holding a valid signature (or any record while a lock signature is valid) recomputes the digest
and, when it differs, marks the signature invalidated in the same transaction, with what changed; the
audit trail records that update. The same hook refuses any other change to a signature, and its deletion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Integer, Table, bindparam, event, inspect, or_, select
from sqlalchemy.orm import Session

from immunosep.conduct.blinding import ALLOCATION_TABLES, SEALED_COLUMNS
from immunosep.errors import ImmunoSepError
from immunosep.store.db import TrialSession, holds_writers_lock
from immunosep.store.models import (
    AdverseEvent,
    Base,
    BiomarkerDraw,
    Consent,
    DailyCrf,
    EligibilityAnswer,
    Outcome,
    Patient,
    ScreeningEntry,
    Signature,
    Trial,
    Withdrawal,
    utcnow,
)

#: Name of the serialisation, stored with each signature (a new one would get a new name).
SCHEME = "immunosep-casebook-1"
LOCK_SCHEME = "immunosep-trial-lock-1"

#: The casebook's sections in reading order: (model, title). Patient rows hang on ``patient_id``,
#: the patient row on ``id``, the withdrawal on ``pseudonym``.
SECTIONS: tuple[tuple[type[Base], str], ...] = (
    (Patient, "Patient"),
    (ScreeningEntry, "Screening"),
    (EligibilityAnswer, "Eligibility"),
    (Consent, "Consent"),
    (BiomarkerDraw, "Biomarkers"),
    (DailyCrf, "Daily CRF"),
    (Outcome, "Outcome"),
    (AdverseEvent, "Adverse events"),
    (Withdrawal, "Withdrawal"),
)
#: Columns that are not part of a record's content: keys, links, bookkeeping, the lock.
LEFT_OUT = {
    "*": frozenset({"id", "patient_id"}),
    "patients": frozenset({"trial_id", "site_id", "locked_at", "created_at"}),
    "withdrawals": frozenset({"trial_id", "site_id", "slot_id", "pseudonym"}),
}
_TABLES = {model.__tablename__: model for model, _ in SECTIONS}


def _check_blinding() -> None:
    """No casebook table reveals an allocation, and no sealed column is in one (checked on import)."""
    for name in _TABLES:
        if name in ALLOCATION_TABLES or any(table == name for table, _ in SEALED_COLUMNS):
            raise AssertionError(f"the casebook must not hold {name}: it reveals an allocation")


_check_blinding()


def covered_columns(table: Table) -> list[str]:
    """The columns of a casebook table that a signature covers."""
    out = LEFT_OUT["*"] | LEFT_OUT.get(table.name, frozenset())
    return [c.name for c in table.columns if c.name not in out]


def _canonical_value(column_type: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(column_type, Boolean):
        return bool(value)
    if isinstance(column_type, Float):
        return float(value)
    if isinstance(column_type, Integer):
        return int(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """The one text of a JSON value that is digested: sorted keys, no whitespace, ASCII, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CasebookRecord:
    """One record of a casebook: a stable key, its section and label, its values (canonical types)."""

    key: str
    section: str
    label: str
    values: Mapping[str, Any]

    def canonical(self) -> dict[str, Any]:
        return {"key": self.key, "values": dict(self.values)}

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of this record's canonical serialisation."""
        return sha256_hex(canonical_json(self.canonical()))


@dataclass(frozen=True)
class Casebook:
    """Every casebook record of one patient, in reading order (see the module docstring)."""

    pseudonym: str
    records: tuple[CasebookRecord, ...]

    def text(self) -> str:
        """The canonical serialisation that a signature's digest is taken over."""
        records = sorted((r.canonical() for r in self.records), key=lambda r: str(r["key"]))
        return canonical_json({"scheme": SCHEME, "patient": self.pseudonym, "records": records})

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`text`."""
        return sha256_hex(self.text())

    @property
    def manifest(self) -> dict[str, str]:
        """Record key -> that record's SHA-256, for naming what changed after signing."""
        return {r.key: r.digest for r in self.records}


def _label(table: str, values: Mapping[str, Any], ordinal: int) -> tuple[str, str]:
    """(key, label) of a record; keys are stable natural keys, never database ids."""
    if table == "patients":
        return "patient", "Patient"
    if table == "eligibility_answers":
        q = str(values.get("question", ""))
        return f"eligibility/{q}", f"Eligibility: {q.replace('_', ' ')}"
    if table == "biomarker_draws":
        return f"biomarkers/day-{values.get('study_day')}", f"Biomarker draw, day {values.get('study_day')}"
    if table == "daily_crf":
        return f"daily_crf/day-{values.get('study_day')}", f"Daily CRF, day {values.get('study_day')}"
    if table == "adverse_events":
        return f"adverse_event/{ordinal}", f"Adverse event {ordinal} (onset day {values.get('onset_day')})"
    return _SINGLE[table]


#: (key, label) of the tables with one record per patient.
_SINGLE = {
    "screening_log": ("screening", "Screening"),
    "consents": ("consent", "Consent"),
    "outcomes": ("outcome", "Outcome"),
    "withdrawals": ("withdrawal", "Withdrawal"),
}


def casebooks(session: Session, patient_ids: Iterable[int] | None = None) -> dict[int, Casebook]:
    """The casebooks of these patients (all patients when None), one statement per table.

    Read with Core statements from what the transaction sees (also inside a flush hook).
    """
    ids = None if patient_ids is None else sorted(set(patient_ids))
    if ids == []:
        return {}
    records: dict[int, list[CasebookRecord]] = {}
    pseudonyms: dict[int, str] = {}
    by_name: dict[str, int] = {}
    for model, title in SECTIONS:
        table: Table = model.__table__  # type: ignore[assignment]
        cols = covered_columns(table)
        if model is Patient:
            stmt = select(table).order_by(table.c.id)
            if ids is not None:
                stmt = stmt.where(table.c.id.in_(ids))
        elif model is Withdrawal:
            if not by_name:
                continue
            stmt = select(table).where(table.c.pseudonym.in_(sorted(by_name))).order_by(table.c.id)
        else:
            stmt = select(table).order_by(table.c.id)
            if ids is not None:
                stmt = stmt.where(table.c.patient_id.in_(ids))
        ordinals: dict[int, int] = {}
        for row in session.execute(stmt).mappings():
            if model is Patient:
                pid = int(row["id"])
                pseudonyms[pid] = str(row["pseudonym"])
                by_name[str(row["pseudonym"])] = pid
                records[pid] = []
            elif model is Withdrawal:
                pid = by_name[str(row["pseudonym"])]
            else:
                pid = int(row["patient_id"])
                if pid not in records:
                    continue
            values = {c: _canonical_value(table.c[c].type, row[c]) for c in cols if row[c] is not None}
            ordinals[pid] = ordinals.get(pid, 0) + 1
            key, label = _label(table.name, values, ordinals[pid])
            records[pid].append(CasebookRecord(key, title, label, values))
    return {pid: Casebook(pseudonyms[pid], tuple(recs)) for pid, recs in records.items()}


def casebook_of(session: Session, patient_id: int) -> Casebook:
    """One patient's casebook (see :func:`casebooks`)."""
    found = casebooks(session, [patient_id]).get(patient_id)
    if found is None:
        raise ImmunoSepError(f"no patient {patient_id}")
    return found


def trial_manifest(session: Session) -> dict[str, str]:
    """Pseudonym -> casebook digest of every patient: what a lock signature covers."""
    return {book.pseudonym: book.digest for book in casebooks(session).values()}


def trial_digest(session: Session, manifest: Mapping[str, str] | None = None) -> str:
    """SHA-256 of the canonical serialisation of every casebook digest and the trial's code."""
    code = session.execute(select(Trial.code).order_by(Trial.id).limit(1)).scalar()
    books = trial_manifest(session) if manifest is None else dict(manifest)
    return sha256_hex(canonical_json({"scheme": LOCK_SCHEME, "trial": code, "casebooks": books}))


def changes(signed: Mapping[str, str], now: Mapping[str, str], labels: Mapping[str, str]) -> list[str]:
    """What differs between two manifests, in words: "Daily CRF, day 3 changed", "... added", "... removed"."""
    out = []
    for key in sorted(set(signed) | set(now)):
        label = labels.get(key, key)
        if key not in now:
            out.append(f"{label} removed")
        elif key not in signed:
            out.append(f"{label} added")
        elif signed[key] != now[key]:
            out.append(f"{label} changed")
    return out


# --- the flush hook: invalidate in the transaction of the change ---------------------------------------

_TOUCHED = "immunosep_casebook_touched"
#: What this transaction found, under the writers' lock, of signatures that are not there: the patients
#: (ids) without a valid signature, and no valid lock signature. A flush that changes only their records
#: then needs no look for signatures to invalidate. Forgotten at any flush that writes a signature and at
#: the end of the transaction (or of a savepoint).
_UNSIGNED = "immunosep_casebook_unsigned"
#: Columns of a signature the hook may set, once: the invalidation.
INVALIDATION = frozenset({"invalidated_at", "invalidated_reason"})


def _patient_changed(obj: Patient) -> bool:
    state = inspect(obj)
    covered = covered_columns(Patient.__table__)  # type: ignore[arg-type]
    return any(state.attrs[c].history.has_changes() for c in covered)


def _guard_signature(session: Session, obj: Signature) -> None:
    state = inspect(obj)
    for attr in state.mapper.column_attrs:
        hist = state.attrs[attr.key].history
        if not hist.has_changes():
            continue
        if attr.key not in INVALIDATION:
            raise ImmunoSepError("an electronic signature cannot be changed (21 CFR 11.70)")
        if attr.key == "invalidated_at" and hist.deleted and hist.deleted[0] is not None:
            raise ImmunoSepError("an invalidated signature stays invalidated")


def _before_flush(session: Session, _ctx: object, _instances: object) -> None:
    touched: tuple[set[int], set[str]] = session.info.setdefault(_TOUCHED, (set(), set()))
    ids, names = touched
    for obj in session.deleted:
        if isinstance(obj, Signature):
            raise ImmunoSepError("an electronic signature cannot be deleted (21 CFR 11.70)")
    for group, is_dirty in ((session.new, False), (session.dirty, True), (session.deleted, False)):
        for obj in group:
            if isinstance(obj, Signature):
                session.info.pop(_UNSIGNED, None)
                if is_dirty:
                    _guard_signature(session, obj)
                continue
            name = getattr(obj, "__tablename__", None)
            if name not in _TABLES:
                continue
            if is_dirty and not session.is_modified(obj, include_collections=False):
                continue
            if isinstance(obj, Patient):
                if obj.id is not None and (not is_dirty or _patient_changed(obj)):
                    ids.add(obj.id)
            elif isinstance(obj, Withdrawal):
                names.add(obj.pseudonym)
            elif isinstance(getattr(obj, "patient_id", None), int):
                ids.add(obj.patient_id)


#: The valid signatures a flush may invalidate: the trial's lock and those of the touched patients, given
#: by id (``ids``) and by pseudonym (``names``); built once (building it cost more than running it).
_VALID_SIGNATURES = select(Signature).where(
    Signature.invalidated_at.is_(None),
    or_(
        Signature.kind == "lock",
        Signature.patient_id.in_(bindparam("ids", expanding=True)),
        Signature.patient_id.in_(
            select(Patient.id).where(Patient.pseudonym.in_(bindparam("names", expanding=True)))
        ),
    ),
)


def signed_column(patient_id: Any) -> Any:
    """A column that says whether patient ``patient_id`` (a column) or the trial holds a valid signature,
    to read with the patient under the writers' lock: then :func:`note_signed`."""
    return (
        select(Signature.id)
        .where(
            Signature.invalidated_at.is_(None),
            or_(Signature.kind == "lock", Signature.patient_id == patient_id),
        )
        .exists()
    )


def note_signed(session: Session, patient_id: int, signed: bool) -> None:
    """Remember what :func:`signed_column` read under the writers' lock, as the flush hook would after its
    own look: a flush that then changes only this patient's records reads no signatures (one statement
    less under the lock for every write of a patient not signed, measured on the daily CRF)."""
    if signed:
        unsigned: set[int] | None = session.info.get(_UNSIGNED)
        if unsigned is not None:
            unsigned.discard(patient_id)
    else:
        session.info.setdefault(_UNSIGNED, set()).add(patient_id)


def _after_flush_postexec(session: Session, _ctx: object) -> None:
    ids, names = session.info.pop(_TOUCHED, (set(), set()))
    records_changed(session, ids, names)


def records_changed(session: Session, ids: set[int], names: frozenset[str] | set[str] = frozenset()) -> None:
    """Invalidate the valid signatures that records of these patients (by id and by pseudonym) changed,
    as the flush hook does: for a service that writes a casebook record with a Core statement."""
    if not ids and not names:
        return
    under_lock = holds_writers_lock(session)
    unsigned: set[int] | None = session.info.get(_UNSIGNED) if under_lock else None
    if unsigned is not None and not names and ids <= unsigned:
        return  # none of them, and no lock, has a valid signature (read under the lock, none written since)
    valid = session.execute(_VALID_SIGNATURES, {"ids": sorted(ids), "names": sorted(names)}).scalars().all()
    if valid:
        invalidate_changed(session, valid)
    elif under_lock:
        session.info.setdefault(_UNSIGNED, set()).update(ids)


def invalidate_changed(session: Session, signatures: Iterable[Signature]) -> list[Signature]:
    """Mark invalidated each of ``signatures`` whose records no longer have the signed digest."""
    sigs = [s for s in signatures if s.invalidated_at is None]
    books = casebooks(session, [s.patient_id for s in sigs if s.patient_id is not None])
    out = []
    for sig in sigs:
        now: dict[str, str]
        labels: dict[str, str] = {}
        if sig.patient_id is None:
            now = trial_manifest(session)
            digest = trial_digest(session, now)
        elif sig.patient_id in books:
            book = books[sig.patient_id]
            now, digest = book.manifest, book.digest
            labels = {r.key: r.label for r in book.records}
        else:
            continue  # the patient was erased: the signature went with it
        if digest == sig.digest:
            continue
        what = changes(json.loads(sig.manifest), now, labels)
        sig.invalidated_at = utcnow()
        sig.invalidated_reason = "record changed after signing: " + ("; ".join(what) or "content changed")
        out.append(sig)
    return out


def _after_end(session: Session) -> None:
    session.info.pop(_TOUCHED, None)
    session.info.pop(_UNSIGNED, None)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None or transaction.nested:  # not the inner transaction of a flush
        session.info.pop(_UNSIGNED, None)


def install(session_class: type[Session]) -> None:
    """Attach the invalidation hook to a session class (done once, on import, for ``TrialSession``)."""
    event.listen(session_class, "before_flush", _before_flush)
    event.listen(session_class, "after_flush_postexec", _after_flush_postexec)
    event.listen(session_class, "after_commit", _after_end)
    event.listen(session_class, "after_rollback", _after_end)
    event.listen(session_class, "after_transaction_end", _after_transaction_end)


install(TrialSession)
