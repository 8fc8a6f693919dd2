"""Login and logout shared by the JSON API and the pages: throttled, constant-looking, fixation-proof."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import Request
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, actor_for
from immunosep.conduct.users import (
    authenticate,
    needs_rehash,
    normalize_username,
    rehash_password,
)
from immunosep.conduct.users import end_session as end_user_session
from immunosep.conduct.users import start_session as start_user_session
from immunosep.errors import ImmunoSepError
from immunosep.store.db import session_scope
from immunosep.store.models import Site
from immunosep.web.security import LoginThrottle, TooManyAttempts, session_token, start_session

LOGIN_FAILED = "wrong username or password"


class LoginFailed(Exception):
    """Wrong username or password (the message never says which)."""


@lru_cache(maxsize=1)
def _reference_verify_s() -> float:
    """Seconds one argon2 verification takes here; failed logins last at least this long.

    ``authenticate`` returns at once for an unknown username but runs argon2 for a known one; padding
    every failure to one verification's time keeps response times from revealing which usernames exist.
    """
    hasher = PasswordHasher()
    digest = hasher.hash("reference password")
    start = time.perf_counter()
    with contextlib.suppress(VerificationError):
        hasher.verify(digest, "another password")
    return time.perf_counter() - start


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def log_in(request: Request, db: Session, username: str, password: str) -> tuple[Actor, str]:
    """Check the password, start a fresh session and return the actor and its CSRF token.

    Blocking (argon2, padding of failures): call it in a worker thread, with a read-only ``db``. The
    session row (and a renewed hash) is written in a short transaction of its own.

    Raises :class:`TooManyAttempts` while the throttle delays this username or address, and
    :class:`LoginFailed` for a wrong username or password.
    """
    throttle: LoginThrottle = request.app.state.throttle
    client = client_address(request)
    attempt = throttle.admit(login_key(username), client)
    start = time.perf_counter()
    try:
        user = authenticate(db, username, password, rehash=False)  # db is read-only (web.deps.read_only_db)
    except BaseException:
        throttle.abandoned(attempt)
        raise
    if user is None:
        throttle.failed(attempt)
        remaining = _reference_verify_s() - (time.perf_counter() - start)
        if remaining > 0:
            time.sleep(remaining)
        raise LoginFailed(LOGIN_FAILED)
    throttle.succeeded(attempt)
    with session_scope(request.app.state.engine) as writer:
        if needs_rehash(user):
            rehash_password(writer, user.id, password)
        sid = start_user_session(writer, user.id, client)
    token = start_session(request.session, user.id, sid)
    return actor_for(db, user), token


def login_key(username: str) -> str:
    """The name the throttle counts a typed username under: the account's stored (normalised) form."""
    try:
        return normalize_username(username)
    except ImmunoSepError:
        return username.strip().casefold()


def log_out(request: Request) -> None:
    """End the session on the server (its row) and clear the cookie; a replayed cookie then gets 401."""
    sid = session_token(request.session)
    request.session.clear()
    if sid is not None:
        with session_scope(request.app.state.engine) as writer:
            end_user_session(writer, sid, "logout")


@dataclass(frozen=True)
class Me:
    """Who is logged in: what ``GET /api/me`` returns and the page header shows."""

    username: str
    role: str
    site: str | None
    sites: list[str]
    blinded: bool


def describe(db: Session, actor: Actor) -> Me:
    """The actor's username, role and site code(s) (``site`` is the one home site, if any)."""
    codes = list(actor.site_codes)
    if len(codes) != len(actor.site_ids):  # an Actor built by hand, without its codes
        codes = sorted(site.code for sid in actor.site_ids if (site := db.get(Site, sid)) is not None)
    return Me(
        username=actor.username,
        role=actor.role,
        site=codes[0] if len(codes) == 1 else None,
        sites=codes,
        blinded=actor.blinded,
    )


__all__ = ["LOGIN_FAILED", "LoginFailed", "Me", "TooManyAttempts", "describe", "log_in", "log_out"]
