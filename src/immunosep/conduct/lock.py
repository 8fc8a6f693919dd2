"""Data lock per patient and for the whole trial: after it every service refuses to change data.

A patient can be locked once it has no open or answered query; the trial once every randomized patient
is locked. Locks are not reversible through the services. The trial lock reports the audit chain's head
as it stands with the lock (entry count, last id and hash), for the lock report and for a signed
checkpoint kept outside the database (``store.audit.sign_head``, ``immunosep lock --checkpoint-out``).
With ``credentials`` the data manager signs the lock ("database lock approved",
``conduct.signatures.sign_lock``) in the same transaction: a refused signature locks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient, trial
from immunosep.conduct.permissions import require
from immunosep.conduct.signatures import Credentials, SignatureView, sign_lock
from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.models import Patient, Query, User, utcnow


@dataclass(frozen=True)
class LockResult:
    """What was locked and when; for the trial lock, the audit chain's head including the lock's entries."""

    what: str
    locked_at: datetime
    audit_head: audit.ChainHead | None = None
    signature: SignatureView | None = None


def lock_patient(session: Session, actor: Actor, pseudonym: str) -> LockResult:
    require(actor, "lock")
    begin(session, actor, "patient lock")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    pending = session.execute(
        select(func.count()).where(Query.patient_id == patient.id, Query.status != "closed")
    ).scalar_one()
    if pending:
        raise ImmunoSepError(
            f"patient {pseudonym} has {pending} query(ies) not closed; close them before lock"
        )
    patient.locked_at = utcnow()
    session.flush()
    return LockResult(pseudonym, patient.locked_at)


def lock_trial(
    session: Session,
    actor: Actor | None,
    *,
    credentials: Credentials | None = None,
    session_token: str | None = None,
) -> LockResult:
    """Lock the trial (data manager; ``None`` = the command line with database access).

    With ``credentials`` the lock is signed (see the module docstring); ``session_token`` is the web
    login session's (the first signing of a session takes username and password, later ones the password).
    """
    if actor is not None:
        require(actor, "lock_trial")
        begin(session, actor, "trial lock")
    ensure_writable(session)
    unlocked = (
        session.execute(
            select(Patient.pseudonym)
            .where(Patient.status == "randomized", Patient.locked_at.is_(None))
            .limit(5)
        )
        .scalars()
        .all()
    )
    if unlocked:
        raise ImmunoSepError(
            f"randomized patients not yet locked, e.g. {', '.join(unlocked)}; lock them first"
        )
    t = trial(session)
    t.locked_at = utcnow()
    t.locked_by = actor.user_id if actor else None
    session.flush()
    signature = None
    if credentials is not None:
        signature = sign_lock(session, actor, credentials, session_token=session_token)
        if actor is None:
            for user_id in session.execute(
                select(User.id).where(User.username == signature.username)
            ).scalars():
                t.locked_by = user_id
            session.flush()
    return LockResult(t.code, t.locked_at, audit.chain_head(session), signature)
