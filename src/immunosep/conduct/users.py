"""User accounts: argon2 password hashes, one role each, a home site or assigned sites."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, site_by_code
from immunosep.conduct.permissions import require, site_scope
from immunosep.errors import ImmunoSepError
from immunosep.store.models import ROLES, MonitorSite, User

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 10


#: Stored instead of a hash for an account without a password: not an argon2 hash, so no password
#: verifies against it (:func:`authenticate` treats it as a failed login).
NO_PASSWORD = "!"  # noqa: S105 (a marker that no password matches, not a password)


def _new_user(
    session: Session, username: str, password: str | None, role: str, site_codes: list[str]
) -> User:
    if role not in ROLES:
        raise ImmunoSepError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}", field="role")
    if not username.strip():
        raise ImmunoSepError("username must not be empty", field="username")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ImmunoSepError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if session.execute(select(User.id).where(User.username == username)).first() is not None:
        raise ImmunoSepError(f"user {username!r} already exists", field="username")
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
        password_hash=NO_PASSWORD if password is None else _HASHER.hash(password),
        role=role,
        site_id=sites[0].id if scope == "home" else None,
    )
    if scope == "assigned":
        user.assigned_sites = [MonitorSite(site_id=s.id) for s in sites]
    session.add(user)
    session.flush()
    return user


def create_user(
    session: Session,
    actor: Actor | None,
    username: str,
    password: str | None,
    role: str,
    site_code: str | list[str] | None = None,
) -> User:
    """Create an account (admins only; ``actor=None`` is the bootstrap from the command line).

    ``password=None`` creates an account nobody can log in to (the staff of a virtual trial, whose
    actions are the runner's): it is stored as :data:`NO_PASSWORD`, which no password verifies against.

    ``site_code`` is the home site of an investigator or pharmacist, or the list of a monitor's sites.
    """
    if actor is not None:
        require(actor, "create_user")
        begin(session, actor, "user account created")
    codes = [site_code] if isinstance(site_code, str) else list(site_code or [])
    return _new_user(session, username, password, role, codes)


def authenticate(session: Session, username: str, password: str, *, rehash: bool = True) -> User | None:
    """The active user with this password, or None (argon2 verification).

    A hash made with parameters that have since aged is replaced, unless ``rehash=False`` (a read-only
    transaction; call :func:`rehash_password` in a writing one when :func:`needs_rehash` says so).
    """
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not user.active:
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if rehash and needs_rehash(user):
        rehash_password(session, user.id, password)
    return user


def needs_rehash(user: User) -> bool:
    """True when the user's hash was made with older argon2 parameters than the current ones."""
    return user.password_hash != NO_PASSWORD and _HASHER.check_needs_rehash(user.password_hash)


def rehash_password(session: Session, user_id: int, password: str) -> None:
    """Store a fresh hash of a password that was just verified (current argon2 parameters)."""
    user = session.get(User, user_id)
    if user is not None:
        user.password_hash = _HASHER.hash(password)
        session.flush()


def deactivate_user(session: Session, actor: Actor, username: str) -> None:
    """Disable an account (kept for the audit trail, never deleted)."""
    require(actor, "deactivate_user")
    begin(session, actor, "user deactivated")
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise ImmunoSepError(f"no user {username!r}")
    user.active = False
    session.flush()
