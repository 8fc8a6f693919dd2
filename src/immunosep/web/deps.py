"""Request dependencies: one database transaction per request and the authenticated :class:`Actor`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, actor_for
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.web.security import SecuritySettings, session_user_id


class NotAuthenticated(Exception):
    """No live session: the API answers 401, pages redirect to the login form."""


#: Per event loop: each application's semaphore of database turns (see :func:`db_turn`).
_TURNS: RunVar[WeakKeyDictionary[Any, anyio.Semaphore]] = RunVar("immunosep_db_turns")


async def db_turn(request: Request) -> AsyncIterator[None]:
    """Wait, on the event loop and in arrival order, for one of ``app.state.db_concurrency`` database turns.

    A request's transaction spans several worker-thread hops (actor lookup, handler, response validation,
    commit), and holds its locks (SQLite's write lock from the first statement, the audit chain's advisory
    lock on PostgreSQL) in between. Without a bound, once every worker thread is taken by requests blocked
    on such a lock, the holder never gets a thread back and the server hangs (for the SQLite busy timeout,
    or for good on PostgreSQL). Waiting here holds no thread; the turn is released after the commit.
    """
    limit = getattr(request.app.state, "db_concurrency", None)
    if limit is None:
        yield
        return
    turns = _TURNS.get(None)
    if turns is None:
        turns = WeakKeyDictionary()
        _TURNS.set(turns)
    turn = turns.get(request.app)
    if turn is None:
        turn = turns[request.app] = anyio.Semaphore(limit)
    async with turn:
        yield


def get_db(request: Request, _turn: None = Depends(db_turn)) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    The commit itself is made by :class:`TransactionRoute` before the response leaves, so a client never
    gets a success for a write whose commit failed (FastAPI closes yield dependencies only after the
    response is sent).
    """
    with session_scope(request.app.state.engine) as session:
        request.state.db_session = session
        yield session


class TransactionRoute(APIRoute):
    """A route that commits the request's transaction after its handler and before its response is sent.

    A failing commit raises (500, the transaction rolled back) instead of following a 200 already on the
    wire. Every router of the application uses this class.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            response = await handler(request)
            session: Session | None = getattr(request.state, "db_session", None)
            if session is not None and session.in_transaction():
                await run_in_threadpool(session.commit)
            return response

        return commit_then_respond


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
