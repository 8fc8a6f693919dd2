"""Request dependencies: one database transaction per request and the authenticated :class:`Actor`."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, actor_for
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.web.security import SecuritySettings, session_user_id


class NotAuthenticated(Exception):
    """No live session: the API answers 401, pages redirect to the login form."""


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises."""
    with session_scope(request.app.state.engine) as session:
        yield session


def current_actor(request: Request, db: Session = Depends(get_db)) -> Actor:
    """The logged-in user as an :class:`Actor` (role and sites re-read from the database every request)."""
    settings: SecuritySettings = request.app.state.settings
    uid = session_user_id(request.session, settings)
    if uid is None:
        raise NotAuthenticated()
    try:
        return actor_for(db, uid)
    except AccessDenied:
        request.session.clear()
        raise NotAuthenticated() from None


def optional_actor(request: Request, db: Session = Depends(get_db)) -> Actor | None:
    """The logged-in actor, or None for an anonymous visitor."""
    try:
        return current_actor(request, db)
    except NotAuthenticated:
        return None
