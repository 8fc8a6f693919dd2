"""The authenticated caller (:class:`Actor`, which every service takes first) and its site scope.

What each role may do is :mod:`immunosep.conduct.permissions` (``require(actor, action)``); which roles
are blinded is :mod:`immunosep.conduct.blinding`. This module reads the actor and answers which patients
it may see: a patient outside the actor's scope and a patient that does not exist give the *same* error,
so scope errors reveal nothing either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, bindparam, false, select, true
from sqlalchemy.orm import Session

from immunosep.conduct import casebook
from immunosep.conduct.blinding import is_blinded
from immunosep.conduct.permissions import site_scope
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store import audit
from immunosep.store.db import holds_writers_lock, transaction_cache
from immunosep.store.models import MonitorSite, Patient, Site, Trial, User, UserSession


@dataclass(frozen=True)
class Actor:
    """The authenticated caller: user id, role and the sites in scope (empty for all-site roles).

    ``site_codes`` are the codes of ``site_ids`` (sorted), read with them so that pages can show them.
    """

    user_id: int
    role: str
    site_ids: frozenset[int] = field(default_factory=frozenset)
    username: str = ""
    site_codes: tuple[str, ...] = ()

    @property
    def blinded(self) -> bool:
        """True for every role that must never learn an arm or a drug."""
        return is_blinded(self.role)


# Statements of every request, built once (building a statement costs more than running it on SQLite).
_TRIAL_PROTOCOL = select(Trial.protocol_sha256).order_by(Trial.id).limit(1).scalar_subquery()
#: The user of a live (not ended) server-side session, by its token's SHA-256 (``conduct.users``).
_SESSION_USER = (
    select(UserSession.user_id)
    .where(UserSession.token_sha256 == bindparam("sid"), UserSession.ended_at.is_(None))
    .scalar_subquery()
)
_USER = (
    select(
        User.id,
        User.role,
        User.username,
        User.active,
        User.site_id,
        Site.code,
        _TRIAL_PROTOCOL.label("protocol_sha256"),
        _SESSION_USER.label("session_user"),
    )
    .outerjoin(Site, Site.id == User.site_id)
    .where(User.id == bindparam("uid"))
)
#: ``transaction_cache`` key of the trial's protocol hash, read with the actor (see :func:`actor_for`).
PROTOCOL_SHA256 = "protocol_sha256"
_MONITOR_SITES = (
    select(MonitorSite.site_id, Site.code)
    .join(Site, Site.id == MonitorSite.site_id)
    .where(MonitorSite.user_id == bindparam("uid"))
)
_PATIENT = select(Patient).where(Patient.pseudonym == bindparam("pseudonym"))
_PATIENT_FOR_UPDATE = _PATIENT.with_for_update()
_TRIAL = select(Trial).order_by(Trial.id).limit(1)
#: ``transaction_cache`` key of the trial row whose ``locked_at`` :func:`begin` expired (so that it is read
#: under the writers' lock); the lock is held to the transaction's end, so once is enough.
_TRIAL_UNDER_LOCK = "trial_under_lock"


def actor_for(session: Session, user: User | int, session_sha256: str = "") -> Actor:
    """Build the :class:`Actor` of a stored user (home site, or assigned sites for a monitor).

    Read afresh with Core statements (one, two for a monitor): the web application calls this on every
    request, so a deactivated account or a changed role takes effect at once. The same statement reads
    the trial's protocol hash into the transaction's cache, for :func:`~immunosep.conduct.trial.protocol_of`.
    With ``session_sha256`` (a web request's) the same statement checks that this login session is live.
    """
    if not isinstance(user, int):
        session.flush()  # a user created in this session is read back (Core statements do not autoflush)
    uid = user if isinstance(user, int) else user.id
    actor, protocol_sha256 = read_actor(session.connection(), uid, session_sha256)
    if protocol_sha256 is not None:  # spares protocol_of() a read of the trial row (trial.py)
        transaction_cache(session)[PROTOCOL_SHA256] = protocol_sha256
    return actor


def read_actor(conn: Connection, uid: int, session_sha256: str = "") -> tuple[Actor, str | None]:
    """The :class:`Actor` of user ``uid`` and the trial's protocol hash, read on ``conn`` (see :func:`actor_for`).

    Core statements only, so it also runs on a bare connection (``store.db.single_reads``). With
    ``session_sha256``, a session that has ended (or is another user's) is refused like an inactive user.
    """
    row = conn.execute(_USER, {"uid": uid, "sid": session_sha256}).first()
    if row is None or not row.active:
        raise AccessDenied("unknown or inactive user; ask an administrator for an account")
    if session_sha256 and row.session_user != uid:
        raise AccessDenied("the session has ended; log in again")
    sites: list[tuple[int, str]]
    if site_scope(str(row.role)) == "assigned":
        sites = [(int(sid), str(code)) for sid, code in conn.execute(_MONITOR_SITES, {"uid": uid}).all()]
    elif row.site_id is not None:
        sites = [(int(row.site_id), str(row.code))]
    else:
        sites = []
    actor = Actor(
        user_id=int(row.id),
        role=str(row.role),
        site_ids=frozenset(sid for sid, _ in sites),
        username=str(row.username),
        site_codes=tuple(sorted(code for _, code in sites)),
    )
    return actor, row.protocol_sha256


def begin(session: Session, actor: Actor, reason: str = "") -> None:
    """Start a write: attribute what follows to ``actor`` and take the writers' lock.

    Taking the lock first (before any read that a write depends on, such as the next patient number)
    makes every write service serializable on both backends and free of lock-order deadlocks.
    """
    audit.set_context(session, actor.user_id, reason)
    audit.acquire_chain_lock(session)
    cache = transaction_cache(session)
    read_before = cache.get("trial")
    if read_before is not None and cache.get(_TRIAL_UNDER_LOCK) is not read_before:
        session.expire(read_before, ["locked_at"])  # may have changed before the lock was ours
        # read again under the lock, which this transaction holds to its end: the next writes need not
        cache[_TRIAL_UNDER_LOCK] = read_before


def in_scope(actor: Actor, site_id: int) -> bool:
    """True when the actor may see patient-level data of this site."""
    scope = site_scope(actor.role)
    if scope == "all":
        return True
    return scope != "none" and site_id in actor.site_ids


def scope_site_ids(actor: Actor) -> frozenset[int] | None:
    """The sites whose patients :func:`in_scope` lets the actor see; None for every site."""
    scope = site_scope(actor.role)
    if scope == "all":
        return None
    return frozenset() if scope == "none" else actor.site_ids


def scope_condition(actor: Actor) -> ColumnElement[bool]:
    """The SQL form of :func:`in_scope` on ``Patient.site_id``, for queries over many patients."""
    sites = scope_site_ids(actor)
    if sites is None:
        return true()
    return Patient.site_id.in_(sorted(sites)) if sites else false()


def site_by_code(session: Session, code: str) -> Site:
    site = session.execute(select(Site).where(Site.code == code)).scalar_one_or_none()
    if site is None:
        raise ImmunoSepError(f"no site {code!r}; `immunosep db init --sites N` creates S01..SNN")
    return site


def get_patient(session: Session, actor: Actor, pseudonym: str, *, for_update: bool = False) -> Patient:
    """The patient if it exists *and* is in the actor's scope; otherwise one uniform error."""
    locking = for_update and session.get_bind().dialect.name == "postgresql"
    stmt = _PATIENT_FOR_UPDATE if locking else _PATIENT
    patient = session.execute(stmt, {"pseudonym": pseudonym}).scalar_one_or_none()
    _deny_unless_in_scope(actor, pseudonym, None if patient is None else patient.site_id)
    assert patient is not None  # refused above
    return patient


def _deny_unless_in_scope(actor: Actor, pseudonym: str, site_id: int | None) -> None:
    """Refuse a patient not found (``site_id`` None) or outside the actor's scope, with one uniform error."""
    if site_id is None or not in_scope(actor, site_id):
        raise AccessDenied(f"no patient {pseudonym!r} among the patients you may access")


#: What :func:`writable_patient` reads with every patient for the flush hooks, after the caller's columns:
#: whether the patient (or the trial) holds a valid signature, the audit chain's head and the patient's key.
_FOR_HOOKS = (casebook.signed_column(Patient.id), *audit.head_and_key(Patient.id))


@dataclass(frozen=True, slots=True)
class WritablePatient:
    """What a write checks of its patient, as read under the writers' lock by :func:`writable_patient`."""

    id: int
    site_id: int
    status: str


def patient_select(*also: Any) -> Select[Any]:
    """The columns of the patient ``:pseudonym`` and of the trial that :func:`writable_patient` checks, then
    ``also``, to build once.

    Columns, not entities: loading a ``Patient`` and a ``Trial`` (already in the session, from the group's
    first write) cost the daily CRF write under the lock more than the rest of its statement. Outer-join
    what ``also`` names onto it (the row a write changes, say), so one statement reads all.
    """
    return (
        select(
            Patient.id,
            Patient.site_id,
            Patient.status,
            Patient.locked_at,
            Trial.locked_at,
            Trial.protocol_sha256,
            *also,
            *_FOR_HOOKS,
        )
        .join(Trial, Trial.id == Patient.trial_id)
        .where(Patient.pseudonym == bindparam("pseudonym"))
    )


_PATIENT_COLUMNS = 6


def writable_patient(
    session: Session, actor: Actor, stmt: Select[Any], params: Mapping[str, Any]
) -> tuple[Any, ...]:
    """``(patient, *also)`` of ``stmt`` (from :func:`patient_select`) for a patient the actor may change,
    after :func:`begin`.

    The checks of :func:`get_patient` and :func:`ensure_writable` (same errors) on one statement instead of
    one per table: on PostgreSQL each is a round trip, with the writers' lock held. The same statement reads
    what the flush hooks would read next, under the lock (whether a signature may need invalidating, the
    audit chain's head, the patient's key), so a write of an unsigned patient reads nothing more. Run on the
    session's connection as Core (no objects to load), after what the session had pending is flushed.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()  # as the session's own execute would, before it reads
    row = session.connection().execute(stmt, params).one_or_none()
    pseudonym = str(params["pseudonym"])
    _deny_unless_in_scope(actor, pseudonym, None if row is None else row[1])
    assert row is not None  # refused above
    patient_id, site_id, status, patient_locked_at, trial_locked_at, protocol_sha256 = row[:_PATIENT_COLUMNS]
    _refuse_after_lock(trial_locked_at, pseudonym, patient_locked_at)
    transaction_cache(session).setdefault(PROTOCOL_SHA256, protocol_sha256)  # as the actor's read keeps it
    n = len(_FOR_HOOKS)
    if holds_writers_lock(session):  # what was read cannot change but by this transaction's own writes
        signed, last_id, last_hash, key = row[-n:]
        casebook.note_signed(session, patient_id, bool(signed))
        audit.note_head(session, last_id, last_hash, patient_id, key)
    return (WritablePatient(patient_id, site_id, status), *row[_PATIENT_COLUMNS:-n])


def trial(session: Session) -> Trial:
    """The database's trial, read once per transaction (the protocol text only when it is needed).

    :func:`begin` expires ``locked_at`` once the writers' lock is held, so a write checks the trial lock
    as it is under that lock, even when the row was read earlier in the transaction.
    """
    cache = transaction_cache(session)
    if "trial" in cache:
        return cast(Trial, cache["trial"])
    t = session.execute(_TRIAL).scalar_one_or_none()
    if t is None:
        raise ImmunoSepError("the database holds no trial; run `immunosep db init --db URL` first")
    cache["trial"] = t
    return t


def ensure_writable(session: Session, patient: Patient | None = None) -> None:
    """Refuse any change after the trial lock or the patient's lock."""
    if patient is None:
        _refuse_after_lock(trial(session).locked_at)
    else:
        _refuse_after_lock(trial(session).locked_at, patient.pseudonym, patient.locked_at)


def _refuse_after_lock(
    trial_locked_at: datetime | None, pseudonym: str = "", patient_locked_at: datetime | None = None
) -> None:
    """The refusals of :func:`ensure_writable`, for locks read by the caller or by :func:`writable_patient`."""
    if trial_locked_at is not None:
        raise ImmunoSepError("the trial database is locked; no data can change after lock")
    if patient_locked_at is not None:
        raise ImmunoSepError(f"patient {pseudonym} is locked; no data can change after lock")
