"""Electronic signatures (21 CFR Part 11 §11.50, §11.70, §11.100, §11.200; EU GMP Annex 11 §14).

- **Who may sign what** is one action of ``conduct.permissions`` per meaning (:data:`MEANINGS`, a
  controlled list): the investigator approves a patient's casebook ("approved as investigator"), the data
  manager reviews it ("reviewed as data manager") and approves the database lock ("database lock
  approved", ``conduct.lock.lock_trial``).
- **Components (§11.200(a)(1)).** The first signing of a login session (``user_sessions``) takes both the
  username and the password; later signings in the same live session take at least the password. A signing
  without a session (the command line) always takes both. Passwords are checked with argon2
  (``conduct.users.verify_password``).
- **Refusals.** A wrong username or password raises :class:`SignatureRefused` (nothing is signed); the
  face then records it with :func:`record_refusal` in a transaction of its own (an audit entry of table
  ``signatures``, action ``refused``), and the web throttles repeated failures like failed logins.
- **Manifestation (§11.50).** Every signature shows the signer's printed name (the account's full name,
  copied at signing time), the date and time (UTC, ISO 8601) and the meaning (:class:`SignatureView`).
- **Linking (§11.70).** A signature stores the SHA-256 of the canonical serialisation of the records it
  covers (``conduct.casebook``) and cannot be changed, copied or deleted through the application; a change
  to a covered record invalidates it in the same transaction (the flush hook of ``conduct.casebook``), and
  every read recomputes the digest, so a change made around the application shows as well.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, actor_for, begin, get_patient, trial
from immunosep.conduct.casebook import (
    LOCK_SCHEME,
    SCHEME,
    Casebook,
    casebook_of,
    changes,
    trial_digest,
    trial_manifest,
)
from immunosep.conduct.permissions import can, require
from immunosep.conduct.users import normalize_username, session_id_of, verify_password
from immunosep.errors import AccessDenied, Conflict, ImmunoSepError
from immunosep.store import audit
from immunosep.store.models import Patient, Signature, User, UserSession, utcnow


@dataclass(frozen=True)
class Meaning:
    """What a signature means, what it signs (``casebook`` or ``lock``) and the action that allows it."""

    kind: str
    action: str


#: The controlled list of meanings (the text is what the signature shows).
MEANINGS: Mapping[str, Meaning] = {
    "approved as investigator": Meaning("casebook", "sign_casebook"),
    "reviewed as data manager": Meaning("casebook", "review_casebook"),
    "database lock approved": Meaning("lock", "sign_lock"),
}
BOTH_COMPONENTS = "username+password"
PASSWORD_ONLY = "password"  # noqa: S105 (the name of a signature component, not a password)
REFUSED = "wrong username or password"


@dataclass(frozen=True)
class Credentials:
    """The signature's components as typed: the password, and the username (first signing of a session)."""

    password: str
    username: str = ""


@dataclass(frozen=True)
class RefusedSigning:
    """What :func:`record_refusal` writes to the audit trail about a refused signing (never the password)."""

    kind: str
    meaning: str
    reason: str
    patient_id: int | None = None
    pseudonym: str | None = None
    signer_id: int | None = None


class SignatureRefused(ImmunoSepError):
    """The username or password was wrong: nothing was signed. Record it with :func:`record_refusal`."""

    def __init__(self, refused: RefusedSigning) -> None:
        super().__init__(f"signature refused: {refused.reason}", field="password")
        self.refused = refused


@dataclass(frozen=True)
class SignatureView:
    """A signature as every view shows it (§11.50): printed name, date and time, meaning, status."""

    id: int
    kind: str
    pseudonym: str | None
    printed_name: str
    username: str
    role: str
    meaning: str
    signed_at: str  # ISO 8601, UTC
    components: str
    digest: str
    valid: bool
    status: str  # "valid" or "invalidated: record changed after signing"
    invalidated_at: str | None
    changes: tuple[str, ...]

    @property
    def manifestation(self) -> str:
        """One line: "Irene Ivanova (inv1), approved as investigator, 2026-12-06T23:10:00Z"."""
        return f"{self.printed_name} ({self.username}), {self.meaning}, {self.signed_at}"


def iso_utc(at: datetime) -> str:
    """A UTC time as ISO 8601 with a ``Z``, to the second."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def meanings_for(actor: Actor, kind: str) -> list[str]:
    """The meanings of the controlled list that ``actor`` may sign with, for ``kind``."""
    return [text for text, m in MEANINGS.items() if m.kind == kind and can(actor, m.action)]


def require_casebook_signer(actor: Actor) -> None:
    """Refuse an actor that may sign a casebook with none of the meanings (the sign form asks first)."""
    if not meanings_for(actor, "casebook"):
        require(actor, "sign_casebook")


def _meaning(actor: Actor, meaning: str, kind: str) -> None:
    m = MEANINGS.get(meaning)
    if m is None or m.kind != kind:
        allowed = "; ".join(t for t, x in MEANINGS.items() if x.kind == kind)
        raise ImmunoSepError(f"unknown meaning {meaning!r}; choose one of: {allowed}", field="meaning")
    require(actor, m.action)


def _live_session(session: Session, user_id: int, token: str | None) -> int | None:
    """The id of the caller's live login session (None without one); an ended session is refused."""
    if token is None:
        return None
    row = session.execute(
        select(UserSession.id, UserSession.user_id, UserSession.ended_at).where(
            UserSession.token_sha256 == session_id_of(token)
        )
    ).first()
    if row is None or row.user_id != user_id or row.ended_at is not None:
        raise AccessDenied("the session has ended; log in again")
    return int(row.id)


def first_signing(session: Session, actor: Actor, session_token: str | None) -> bool:
    """True when the next signing of ``actor`` needs both components (none yet in this login session)."""
    sid = _live_session(session, actor.user_id, session_token)
    if sid is None:
        return True
    done = session.execute(
        select(Signature.id).where(Signature.session_id == sid, Signature.user_id == actor.user_id).limit(1)
    ).first()
    return done is None


def _check_signer(
    session: Session,
    user: User,
    credentials: Credentials,
    session_token: str | None,
    refused: RefusedSigning,
) -> tuple[str, int | None]:
    """Check the components (§11.200(a)(1)); returns (components used, login session id)."""
    sid = _live_session(session, user.id, session_token)
    first = first_signing(session, _bare_actor(user), session_token) if sid is not None else True
    typed = credentials.username.strip()
    if first and not typed:
        why = "the first signing of a session takes your username and password"
        raise SignatureRefused(RefusedSigning(**{**refused.__dict__, "reason": why}))
    name_ok = True
    if typed:
        try:
            name_ok = normalize_username(typed) == user.username
        except ImmunoSepError:
            name_ok = False
    if not (verify_password(user, credentials.password) and name_ok):
        raise SignatureRefused(refused)
    if not user.full_name.strip():
        raise ImmunoSepError(
            f"the account {user.username} has no full name to print with a signature; an administrator "
            "sets it (`immunosep user set-name`)"
        )
    return (BOTH_COMPONENTS if typed else PASSWORD_ONLY), sid


def _bare_actor(user: User) -> Actor:
    return Actor(user_id=user.id, role=user.role, username=user.username)


def _user(session: Session, actor: Actor) -> User:
    user = session.get(User, actor.user_id)
    if user is None or not user.active:
        raise AccessDenied("unknown or inactive user; ask an administrator for an account")
    return user


def _view(
    sig: Signature, pseudonym: str | None, now: Mapping[str, str], digest: str, labels: Mapping[str, str]
) -> SignatureView:
    signed = json.loads(sig.manifest)
    what: list[str] = []
    if sig.invalidated_at is not None:
        stored = sig.invalidated_reason.removeprefix("record changed after signing: ")
        what = [w for w in stored.split("; ") if w]
    if digest != sig.digest:
        what = what or changes(signed, now, labels) or ["content changed"]
    valid = sig.invalidated_at is None and digest == sig.digest
    return SignatureView(
        id=sig.id,
        kind=sig.kind,
        pseudonym=pseudonym,
        printed_name=sig.printed_name,
        username=sig.username,
        role=sig.role,
        meaning=sig.meaning,
        signed_at=iso_utc(sig.signed_at),
        components=sig.components,
        digest=sig.digest,
        valid=valid,
        status="valid" if valid else "invalidated: record changed after signing",
        invalidated_at=iso_utc(sig.invalidated_at) if sig.invalidated_at is not None else None,
        changes=tuple(what),
    )


def _book_view(sig: Signature, book: Casebook) -> SignatureView:
    return _view(sig, book.pseudonym, book.manifest, book.digest, {r.key: r.label for r in book.records})


# --- signing --------------------------------------------------------------------------------------------


def sign_casebook(
    session: Session,
    actor: Actor,
    pseudonym: str,
    meaning: str,
    credentials: Credentials,
    *,
    session_token: str | None = None,
) -> SignatureView:
    """Sign a patient's casebook as it stands (its digest), with the meaning chosen from :data:`MEANINGS`.

    ``session_token`` is the caller's login session (the web's); without one both components are needed.
    A wrong username or password raises :class:`SignatureRefused`; a valid signature of the same signer
    and meaning already in place raises :class:`~immunosep.errors.Conflict`.
    """
    _meaning(actor, meaning, "casebook")
    begin(session, actor, f"electronic signature: {meaning}")
    patient = get_patient(session, actor, pseudonym)
    if trial(session).locked_at is not None:
        raise ImmunoSepError("the trial database is locked; casebooks are signed before the lock")
    user = _user(session, actor)
    refused = RefusedSigning("casebook", meaning, REFUSED, patient.id, patient.pseudonym, user.id)
    components, sid = _check_signer(session, user, credentials, session_token, refused)
    book = casebook_of(session, patient.id)
    for sig in _signatures(session, patient.id):
        if sig.user_id == user.id and sig.meaning == meaning and _book_view(sig, book).valid:
            raise Conflict(f"you have already signed {pseudonym}'s casebook as it stands ({meaning})")
    sig = _store_signature(
        session,
        user,
        meaning,
        components,
        sid,
        trial_id=patient.trial_id,
        kind="casebook",
        patient_id=patient.id,
        scheme=SCHEME,
        digest=book.digest,
        manifest=book.manifest,
    )
    return _book_view(sig, book)


def _store_signature(
    session: Session,
    user: User,
    meaning: str,
    components: str,
    session_id: int | None,
    *,
    manifest: Mapping[str, Any],
    **what: Any,
) -> Signature:
    """Store a signature: the signer's printed name, role and meaning (Part 11 11.50) and the signing's
    components, beside ``what`` was signed (kind, patient, scheme, digest) and its manifest as canonical JSON."""
    sig = Signature(
        user_id=user.id,
        username=user.username,
        printed_name=user.full_name,
        role=user.role,
        meaning=meaning,
        signed_at=utcnow(),
        components=components,
        session_id=session_id,
        manifest=json.dumps(manifest, sort_keys=True),
        invalidated_reason="",
        **what,
    )
    session.add(sig)
    session.flush()
    return sig


def sign_lock(
    session: Session,
    actor: Actor | None,
    credentials: Credentials,
    *,
    session_token: str | None = None,
) -> SignatureView:
    """Sign the trial's lock ("database lock approved"), inside the lock's transaction (``conduct.lock``).

    ``actor=None`` is the command line: the signer is the account of ``credentials.username``, whose
    password must match (both components always).
    """
    meaning = "database lock approved"
    if actor is None:
        user = _signer_named(session, credentials.username)
        signer = actor_for(session, user)
        refused = RefusedSigning("lock", meaning, REFUSED, signer_id=user.id)
        session_token = None
    else:
        signer, user = actor, _user(session, actor)
        refused = RefusedSigning("lock", meaning, REFUSED, signer_id=user.id)
    require(signer, "sign_lock")
    _meaning(signer, meaning, "lock")
    begin(session, signer, f"electronic signature: {meaning}")
    components, sid = _check_signer(session, user, credentials, session_token, refused)
    manifest = trial_manifest(session)
    sig = _store_signature(
        session,
        user,
        meaning,
        components,
        sid,
        trial_id=trial(session).id,
        kind="lock",
        patient_id=None,
        scheme=LOCK_SCHEME,
        digest=trial_digest(session, manifest),
        manifest=manifest,
    )
    return _view(sig, None, manifest, sig.digest, {})


def _signer_named(session: Session, username: str) -> User:
    """The account a command-line signing names; an unknown one is refused like a wrong password."""
    try:
        name = normalize_username(username)
    except ImmunoSepError:
        name = None
    user = None if name is None else session.execute(select(User).where(User.username == name)).scalar()
    if user is None or not user.active:
        raise SignatureRefused(RefusedSigning("lock", "database lock approved", REFUSED))
    return user


def record_refusal(session: Session, actor: Actor | None, refused: RefusedSigning) -> None:
    """Audit a refused signing (call in a transaction of its own: the refused one was rolled back).

    One entry of table ``signatures``, action ``refused``: who tried (the session's user; for the command
    line, the account named, if any), what and why, never the password.
    """
    user_id = actor.user_id if actor is not None else refused.signer_id
    audit.set_context(session, user_id, f"electronic signature refused: {refused.reason}")
    detail = {
        "kind": refused.kind,
        "meaning": refused.meaning,
        "patient": refused.pseudonym,
        "reason": refused.reason,
    }
    audit.append(
        session,
        [("signatures", "", refused.patient_id, "refused", "*", None, json.dumps(detail, sort_keys=True))],
    )


# --- reading --------------------------------------------------------------------------------------------


def _signatures(session: Session, patient_id: int | None) -> list[Signature]:
    cond = Signature.patient_id == patient_id if patient_id is not None else Signature.kind == "lock"
    return list(session.execute(select(Signature).where(cond).order_by(Signature.id)).scalars())


def casebook_signatures(
    session: Session, actor: Actor, pseudonym: str
) -> tuple[Casebook, list[SignatureView]]:
    """The patient's casebook as it stands and its signatures, each checked against it now."""
    require(actor, "read_signatures")
    patient: Patient = get_patient(session, actor, pseudonym)
    book = casebook_of(session, patient.id)
    return book, [_book_view(sig, book) for sig in _signatures(session, patient.id)]


def lock_signatures(session: Session, actor: Actor | None) -> list[SignatureView]:
    """The signatures of the trial lock, each checked against every casebook now."""
    if actor is not None:
        require(actor, "read_signatures")
    sigs = _signatures(session, None)
    if not sigs:
        return []
    manifest = trial_manifest(session)
    digest = trial_digest(session, manifest)
    return [_view(sig, None, manifest, digest, {}) for sig in sigs]


__all__ = [
    "MEANINGS",
    "Credentials",
    "RefusedSigning",
    "SignatureRefused",
    "SignatureView",
    "casebook_signatures",
    "first_signing",
    "lock_signatures",
    "meanings_for",
    "record_refusal",
    "require_casebook_signer",
    "sign_casebook",
    "sign_lock",
]
