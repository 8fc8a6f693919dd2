"""User accounts: argon2 password hashes, one role each, a home site or assigned sites; login sessions.

The account rules of 21 CFR Part 11 §11.300 and EU GMP Annex 11 live here, so the web, the API and the
CLI apply the same ones:

- **Usernames** are stored normalised (:func:`normalize_username`: NFKC, case-folded, trimmed; invisible,
  control and inner whitespace characters and mixed scripts refused), so look-alike accounts cannot exist.
- **Passwords** (:func:`check_password`): at least 10 characters, not only whitespace, no control or
  invisible characters, at least 4 different characters, not a common password (the shipped list
  ``data/common_passwords.txt``, also after dropping digits and symbols around a word), not the username.
- **Four eyes.** The administrator is a blinded role: an account of an unblinded role (``conduct.blinding``)
  or of an administrator, made by an administrator, and a new password for one, wait for a second,
  different administrator's approval (:func:`approve`); request and decision are both audited. The command line, run by the system
  owner with database access, is the bootstrap and is not subject to it.
- **Sessions** (:func:`start_session`, :func:`session_is_live`) are rows, so that logout, deactivation and
  a password change end them on the server at once.
- The last active administrator cannot be deactivated.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, site_by_code
from immunosep.conduct.blinding import UNBLINDED_ROLES
from immunosep.conduct.permissions import allowed_roles, require, site_scope
from immunosep.conduct.reasons import require_meaningful
from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.models import ROLES, AccountApproval, MonitorSite, User, UserSession, utcnow

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000
MIN_DISTINCT_PASSWORD_CHARS = 4
MAX_USERNAME_LENGTH = 100
#: Punctuation a username may hold besides letters and digits.
USERNAME_PUNCTUATION = frozenset("._-@")

#: Stored instead of a hash for an account without a password: not an argon2 hash, so no password
#: verifies against it (:func:`authenticate` treats it as a failed login).
NO_PASSWORD = "!"  # noqa: S105 (a marker that no password matches, not a password)


# --- usernames ------------------------------------------------------------------------------------------


def _script(ch: str) -> str:
    """The Unicode script of a letter, from its name (LATIN, GREEK, CYRILLIC, ...)."""
    return unicodedata.name(ch, "UNKNOWN").split(" ")[0]


def normalize_username(raw: str) -> str:
    """The stored form of a username: NFKC, case-folded, trimmed; look-alike tricks refused.

    Refused (:class:`ImmunoSepError`): an empty name, invisible (zero-width, format) or control characters,
    whitespace inside the name, characters other than letters, digits and ``. _ - @``, and letters of more
    than one script (``аdmin`` with a Cyrillic ``а``). ``Inv1``, `` inv1 `` and ``ｉｎｖ１`` are all ``inv1``.
    """
    for ch in raw:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ImmunoSepError(
                f"username holds an invisible or control character (U+{ord(ch):04X}); type it plainly",
                field="username",
            )
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).strip().casefold())
    if not name:
        raise ImmunoSepError("username must not be empty", field="username")
    if len(name) > MAX_USERNAME_LENGTH:
        raise ImmunoSepError(f"username must have at most {MAX_USERNAME_LENGTH} characters", field="username")
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in USERNAME_PUNCTUATION)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad)
        raise ImmunoSepError(
            f"username may hold letters, digits and . _ - @ only, not {shown}", field="username"
        )
    scripts = {_script(ch) for ch in name if ch.isalpha()}
    if len(scripts) > 1:
        raise ImmunoSepError(
            f"username mixes alphabets ({', '.join(sorted(scripts))}); use one alphabet", field="username"
        )
    return name


def _login_name(raw: str) -> str | None:
    """The normalised form of a typed username, or None when it cannot be any account's name."""
    try:
        return normalize_username(raw)
    except ImmunoSepError:
        return None


# --- passwords ------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (case-folded), ``data/common_passwords.txt``."""
    text = resources.files("immunosep.data").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _core_word(password: str) -> str:
    """The password without the digits, symbols and spaces around it ("Summer2024!" -> "summer")."""
    return password.strip("0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").casefold()


def check_password(password: str, username: str = "") -> None:
    """Refuse a weak password with a message that says what to change (nothing else is checked here)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise ImmunoSepError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ImmunoSepError(f"password must have at most {MAX_PASSWORD_LENGTH} characters", field="password")
    if not password.strip():
        raise ImmunoSepError("password must not be only spaces", field="password")
    for ch in password:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ImmunoSepError(
                f"password holds a control or invisible character (U+{ord(ch):04X})", field="password"
            )
    if len(set(password)) < MIN_DISTINCT_PASSWORD_CHARS:
        raise ImmunoSepError(
            f"password must use at least {MIN_DISTINCT_PASSWORD_CHARS} different characters "
            "(not one character repeated)",
            field="password",
        )
    folded = unicodedata.normalize("NFKC", password).casefold()
    listed = common_passwords()
    if folded in listed or folded.strip() in listed or _core_word(folded) in listed:
        raise ImmunoSepError("password is a commonly used one; choose another", field="password")
    name = _login_name(username) if username else None
    if name and (folded == name or (len(name) >= 4 and name in folded)):
        raise ImmunoSepError("password must not contain the username", field="password")


def _hash(password: str) -> str:
    return _HASHER.hash(password)


# --- accounts -------------------------------------------------------------------------------------------


def _new_user(
    session: Session,
    username: str,
    password: str | None,
    role: str,
    site_codes: list[str],
    full_name: str = "",
) -> User:
    if role not in ROLES:
        raise ImmunoSepError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", field="role")
    username = normalize_username(username)
    if password is not None:
        check_password(password, username)
    if session.execute(select(User.id).where(User.username == username)).first() is not None:
        raise ImmunoSepError(f"user {username!r} already exists", field="username")
    if len(set(site_codes)) != len(site_codes):
        raise ImmunoSepError("each site may be named once", field="site")
    sites = [site_by_code(session, c) for c in site_codes]
    scope = site_scope(role)
    if scope == "home" and len(sites) != 1:
        raise ImmunoSepError(f"a {role} needs exactly one site (--site S01)", field="site")
    if scope == "assigned" and not sites:
        raise ImmunoSepError(f"a {role} needs at least one assigned site", field="site")
    if scope not in ("home", "assigned") and sites:
        raise ImmunoSepError(f"a {role} works across sites; give no site", field="site")
    user = User(
        username=username,
        full_name=check_full_name(full_name) if full_name else "",
        password_hash=NO_PASSWORD if password is None else _hash(password),
        role=role,
        site_id=sites[0].id if scope == "home" else None,
    )
    if scope == "assigned":
        user.assigned_sites = [MonitorSite(site_id=s.id) for s in sites]
    session.add(user)
    session.flush()
    return user


def needs_approval(role: str) -> bool:
    """True when an administrator's account of ``role`` (or new password for one) waits for a second one.

    The unblinded roles, and the approvers themselves: otherwise an administrator could make (or take
    over, by a reset) a second administrator account and approve its own request with it.
    """
    return role in UNBLINDED_ROLES or role in allowed_roles("approve_account")


def create_user(
    session: Session,
    actor: Actor | None,
    username: str,
    password: str | None,
    role: str,
    site_code: str | list[str] | None = None,
    reason: str = "",
    full_name: str = "",
) -> User:
    """Create an account (admins only; ``actor=None`` is the bootstrap from the command line).

    ``password=None`` creates an account nobody can log in to (the staff of a virtual trial, whose
    actions are the runner's): it is stored as :data:`NO_PASSWORD`, which no password verifies against.

    ``site_code`` is the home site of an investigator or pharmacist, or the list of a monitor's sites.
    An administrator's account of an unblinded role is created inactive, with a pending
    :class:`AccountApproval` that a second administrator decides (:func:`approve`).
    """
    if actor is not None:
        require(actor, "create_user")
        begin(session, actor, reason.strip() or "user account created")
    codes = [site_code] if isinstance(site_code, str) else list(site_code or [])
    user = _new_user(session, username, password, role, codes, full_name)
    if actor is not None and needs_approval(role):
        user.active = False
        session.add(
            AccountApproval(
                user_id=user.id, action="create", role=role, reason=reason.strip(), requested_by=actor.user_id
            )
        )
        session.flush()
    return user


def _user_named(session: Session, username: str) -> User:
    name = _login_name(username)
    user = None if name is None else session.execute(select(User).where(User.username == name)).scalar()
    if user is None:
        raise ImmunoSepError(f"no user {username!r}", field="username")
    return user


def deactivate_user(session: Session, actor: Actor, username: str) -> None:
    """Disable an account (kept for the audit trail, never deleted) and end its sessions at once.

    The last active administrator cannot be deactivated (nobody could manage accounts any more).
    """
    require(actor, "deactivate_user")
    begin(session, actor, "user deactivated")
    user = _user_named(session, username)
    managers = sorted(allowed_roles("manage_users"))  # the administrators
    if user.role in managers and user.active:
        admins = session.scalar(
            select(func.count()).select_from(User).where(User.role.in_(managers), User.active.is_(True))
        )
        if (admins or 0) <= 1:
            raise ImmunoSepError(
                f"{user.username} is the last active administrator and cannot be deactivated; "
                "create another administrator first",
                field="username",
            )
    user.active = False
    for approval in _pending(session, user.id):
        approval.status, approval.decided_by, approval.decided_at = "withdrawn", actor.user_id, utcnow()
    end_sessions(session, user.id, "user deactivated")
    session.flush()


MAX_FULL_NAME_LENGTH = 200


def check_full_name(full_name: str) -> str:
    """The printed name of a signature (21 CFR 11.50), trimmed; control characters and empty refused."""
    name = " ".join(unicodedata.normalize("NFC", full_name).split())
    if not name:
        raise ImmunoSepError("the full name must not be empty", field="full_name")
    if len(name) > MAX_FULL_NAME_LENGTH:
        raise ImmunoSepError(
            f"the full name must have at most {MAX_FULL_NAME_LENGTH} characters", field="full_name"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise ImmunoSepError("the full name holds a control or invisible character", field="full_name")
    return name


def set_full_name(session: Session, actor: Actor | None, username: str, full_name: str) -> User:
    """Set an account's full name, the printed name of its signatures (admins; ``None``: command line)."""
    if actor is None:
        audit.set_context(session, None, "full name set (command line)")
        audit.acquire_chain_lock(session)
    else:
        require(actor, "create_user")  # who creates accounts names them
        begin(session, actor, "full name set")
    user = _user_named(session, username)
    user.full_name = check_full_name(full_name)
    session.flush()
    return user


# --- passwords: change, reset ---------------------------------------------------------------------------


def authenticate(session: Session, username: str, password: str, *, rehash: bool = True) -> User | None:
    """The active user with this password, or None (argon2 verification; the username is normalised).

    A hash made with parameters that have since aged is replaced, unless ``rehash=False`` (a read-only
    transaction; call :func:`rehash_password` in a writing one when :func:`needs_rehash` says so).
    """
    name = _login_name(username)
    if name is None:
        return None
    user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    if user is None or not user.active:
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if rehash and needs_rehash(user):
        rehash_password(session, user.id, password)
    return user


def verify_password(user: User, password: str) -> bool:
    """True when ``password`` is the active ``user``'s (argon2; an account without a password never is)."""
    if not user.active:
        return False
    try:
        return bool(_HASHER.verify(user.password_hash, password))
    except (VerificationError, InvalidHashError, UnicodeError):  # UnicodeError: a lone surrogate typed
        return False


def needs_rehash(user: User) -> bool:
    """True when the user's hash was made with older argon2 parameters than the current ones."""
    return user.password_hash != NO_PASSWORD and _HASHER.check_needs_rehash(user.password_hash)


def rehash_password(session: Session, user_id: int, password: str) -> None:
    """Store a fresh hash of a password that was just verified (current argon2 parameters)."""
    user = session.get(User, user_id)
    if user is not None:
        audit.set_context(session, user_id, "password hash renewed (current argon2 parameters)")
        user.password_hash = _hash(password)
        session.flush()


def change_password(
    session: Session, actor: Actor, old_password: str, new_password: str, *, keep_session: str | None = None
) -> None:
    """The user changes its own password (the old one proves it); its other sessions end.

    ``keep_session`` is the token of the session that made the change (it stays live).
    """
    begin(session, actor, "password changed by the user")
    user = session.get(User, actor.user_id)
    if user is None or not user.active:
        raise ImmunoSepError("unknown or inactive user")
    try:
        _HASHER.verify(user.password_hash, old_password)
    except (VerificationError, InvalidHashError):
        raise ImmunoSepError("the current password is wrong", field="old_password") from None
    if old_password == new_password:
        raise ImmunoSepError("the new password must differ from the current one", field="password")
    check_password(new_password, user.username)
    user.password_hash = _hash(new_password)
    end_sessions(session, user.id, "password changed", keep=keep_session)
    session.flush()


@dataclass(frozen=True)
class ResetResult:
    """What a password reset did: applied at once, or waiting for a second administrator."""

    username: str
    pending_approval: bool


def reset_password(
    session: Session, actor: Actor | None, username: str, new_password: str, reason: str
) -> ResetResult:
    """An administrator (or, ``actor=None``, the system owner on the command line) sets a new password.

    The reason is required and audited. The account's sessions end. For an account of an unblinded role
    an administrator's reset waits for a second administrator (:func:`approve`): otherwise an administrator
    could set a pharmacist's password and log in as one.
    """
    if actor is not None:
        require(actor, "reset_password")
    why = require_meaningful(reason, "a password reset")
    if actor is None:
        audit.set_context(session, None, f"password reset (command line): {why}")
        audit.acquire_chain_lock(session)
    else:
        begin(session, actor, f"password reset: {why}")
    user = _user_named(session, username)
    check_password(new_password, user.username)
    if actor is not None and needs_approval(user.role):
        session.add(
            AccountApproval(
                user_id=user.id,
                action="reset_password",
                role=user.role,
                reason=why,
                password_hash=_hash(new_password),
                requested_by=actor.user_id,
            )
        )
        session.flush()
        return ResetResult(user.username, pending_approval=True)
    user.password_hash = _hash(new_password)
    end_sessions(session, user.id, "password reset")
    session.flush()
    return ResetResult(user.username, pending_approval=False)


# --- four eyes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingApproval:
    """A change waiting for a second administrator, as the administrators' page lists it."""

    id: int
    action: str
    username: str
    role: str
    reason: str
    requested_by: str
    requested_at: datetime


def _pending(session: Session, user_id: int) -> list[AccountApproval]:
    return list(
        session.execute(
            select(AccountApproval).where(
                AccountApproval.user_id == user_id, AccountApproval.status == "pending"
            )
        ).scalars()
    )


def pending_approvals(session: Session, actor: Actor) -> list[PendingApproval]:
    """Every change waiting for a second administrator, oldest first."""
    require(actor, "approve_account")
    requester = User.__table__.alias("requester")
    rows = session.execute(
        select(AccountApproval, User.username, requester.c.username)
        .join(User, User.id == AccountApproval.user_id)
        .outerjoin(requester, requester.c.id == AccountApproval.requested_by)
        .where(AccountApproval.status == "pending")
        .order_by(AccountApproval.id)
    ).all()
    return [
        PendingApproval(a.id, a.action, name, a.role, a.reason, by or "(command line)", a.requested_at)
        for a, name, by in rows
    ]


def decide(session: Session, actor: Actor, approval_id: int, *, approve: bool) -> AccountApproval:
    """A second administrator approves (or refuses) a pending change; the requester cannot decide it."""
    require(actor, "approve_account")
    begin(session, actor, "account change approved (four eyes)" if approve else "account change refused")
    approval = session.get(AccountApproval, approval_id)
    if approval is None or approval.status != "pending":
        raise ImmunoSepError(f"no pending account change {approval_id}", field="approval")
    if approval.requested_by == actor.user_id:
        raise ImmunoSepError(
            "a change you requested needs another administrator's approval (four eyes)", field="approval"
        )
    user = session.get(User, approval.user_id)
    assert user is not None  # ON DELETE CASCADE
    if approve:
        if approval.action == "create":
            user.active = True
        elif approval.action == "reset_password" and approval.password_hash is not None:
            user.password_hash = approval.password_hash
            end_sessions(session, user.id, "password reset")
    approval.password_hash = None  # the waiting hash is not kept once decided
    approval.status = "approved" if approve else "refused"
    approval.decided_by = actor.user_id
    approval.decided_at = utcnow()
    session.flush()
    return approval


def approve(session: Session, actor: Actor, approval_id: int) -> AccountApproval:
    """Approve a pending change as the second administrator (see :func:`decide`)."""
    return decide(session, actor, approval_id, approve=True)


# --- sessions -------------------------------------------------------------------------------------------


def session_id_of(token: str) -> str:
    """The stored id of a session token: its SHA-256, hex (the token itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, user_id: int, client: str = "") -> str:
    """Record a new login of ``user_id`` and return its token (for the signed cookie), 256 random bits."""
    token = secrets.token_urlsafe(32)
    audit.set_context(session, user_id, "login")
    session.add(UserSession(token_sha256=session_id_of(token), user_id=user_id, client=client[:64]))
    session.flush()
    return token


def end_session(session: Session, token: str, reason: str = "logout") -> None:
    """End the session of ``token`` (logout); an unknown or ended one is left as it is."""
    row = session.execute(
        select(UserSession).where(UserSession.token_sha256 == session_id_of(token))
    ).scalar_one_or_none()
    if row is not None and row.ended_at is None:
        audit.set_context(session, row.user_id, reason)
        row.ended_at, row.end_reason = utcnow(), reason[:40]
        session.flush()


def end_sessions(session: Session, user_id: int, reason: str, *, keep: str | None = None) -> int:
    """End every live session of ``user_id`` (but ``keep``'s token); returns how many ended."""
    rows = session.execute(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
    ).scalars()
    kept = None if keep is None else session_id_of(keep)
    n = 0
    now = utcnow()
    for row in rows:
        if row.token_sha256 != kept:
            row.ended_at, row.end_reason = now, reason[:40]
            n += 1
    session.flush()
    return n


_LIVE = select(UserSession.user_id).where(
    UserSession.token_sha256 == bindparam("sid"), UserSession.ended_at.is_(None)
)


def session_is_live(conn: Connection | Session, token: str, user_id: int) -> bool:
    """True when ``token`` is a session of ``user_id`` that has not ended (one indexed read)."""
    found = conn.execute(_LIVE, {"sid": session_id_of(token)}).scalar()
    return found == user_id


__all__ = [
    "NO_PASSWORD",
    "PendingApproval",
    "ResetResult",
    "approve",
    "authenticate",
    "change_password",
    "check_password",
    "create_user",
    "deactivate_user",
    "decide",
    "end_session",
    "end_sessions",
    "normalize_username",
    "pending_approvals",
    "reset_password",
    "session_is_live",
    "set_full_name",
    "start_session",
    "verify_password",
]
