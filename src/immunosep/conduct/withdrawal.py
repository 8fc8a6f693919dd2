"""Withdrawal of consent, with or without removal of the patient's data (GDPR art. 17).

With removal, the patient's rows are deleted from every table (``ON DELETE CASCADE`` from ``patients``),
the values and the reasons' free text of their audit entries are dropped, each entry pointing to the
``erase`` entry that authorised it, and their audit key is destroyed
(:func:`immunosep.store.audit.erase_subject`; the chain stays verifiable because it is built over digests
of values and reasons). What remains: a :class:`~immunosep.store.models.Withdrawal` row (pseudonym, site, the used
randomization slot, when, by whom) and the slot itself, still ``used`` so it is never given again.
On SQLite the file is then compacted (:func:`compact`: ``VACUUM`` and a WAL checkpoint with
``secure_delete`` on) so the values leave the file too; on PostgreSQL ``VACUUM FULL`` rewrites the
patient tables and the audit trail into new files, so dead tuples holding the values are not kept on disk
(it locks those tables for the seconds the rewrite takes). WAL segments and backups made before keep the
values until they expire: docs/conduct.md ("PostgreSQL: WAL and backups") gives the retention and the
post-erasure backup rotation to follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient
from immunosep.conduct.permissions import require
from immunosep.store import audit
from immunosep.store.db import session_scope
from immunosep.store.models import PATIENT_TABLES, CrfDaysEntered, Patient, RandomizationSlot, Withdrawal


@dataclass(frozen=True)
class WithdrawalResult:
    pseudonym: str
    data_erased: bool
    rows_erased: dict[str, int]


def withdraw(session: Session, actor: Actor, pseudonym: str, *, erase_data: bool) -> WithdrawalResult:
    """Record a withdrawal of consent; with ``erase_data`` remove every trace of the patient's values."""
    require(actor, "record_withdrawal")
    begin(session, actor, "withdrawal of consent" + (" with removal of data" if erase_data else ""))
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    slot = session.execute(
        select(RandomizationSlot).where(RandomizationSlot.patient_id == patient.id)
    ).scalar_one_or_none()
    session.add(
        Withdrawal(
            trial_id=patient.trial_id,
            site_id=patient.site_id,
            pseudonym=patient.pseudonym,
            slot_id=slot.id if slot else None,
            data_erased=erase_data,
            recorded_by=actor.user_id,
        )
    )
    counts: dict[str, int] = {}
    if not erase_data:
        patient.status = "withdrawn"
        session.flush()
        return WithdrawalResult(pseudonym, False, counts)
    for model in PATIENT_TABLES:
        n = session.execute(
            select(func.count()).select_from(model).where(model.patient_id == patient.id)
        ).scalar()
        if n:
            counts[model.__tablename__] = int(n)
    counts["patients"] = 1
    subject = patient.id
    if slot is not None:
        slot.patient_id = None  # the slot stays used; the link to the erased patient goes
    session.flush()
    session.delete(patient)
    session.flush()
    session.expunge_all()
    audit.erase_subject(session, subject, counts)
    return WithdrawalResult(pseudonym, True, counts)


def compact(engine: Engine) -> None:
    """Make erased values leave the storage: VACUUM (and WAL checkpoint on SQLite), outside a transaction."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("VACUUM")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for model in (*PATIENT_TABLES, CrfDaysEntered, Patient, RandomizationSlot):
                conn.execute(text(f"VACUUM FULL {model.__tablename__}"))
            conn.execute(text("VACUUM FULL audit_log"))


def withdraw_and_erase(engine: Engine, actor: Actor, pseudonym: str) -> WithdrawalResult:
    """Withdrawal with removal of data in its own transaction, then :func:`compact`."""
    with session_scope(engine) as session:
        result = withdraw(session, actor, pseudonym, erase_data=True)
    compact(engine)
    return result
