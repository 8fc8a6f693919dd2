"""Request dependencies: one database transaction per request and the authenticated :class:`Actor`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any
from weakref import WeakKeyDictionary

import anyio
from anyio.lowlevel import RunVar
from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, actor_for
from immunosep.errors import AccessDenied
from immunosep.store.db import end_session, new_session, session_scope
from immunosep.web.security import SecuritySettings, session_user_id


class NotAuthenticated(Exception):
    """No live session: the API answers 401, pages redirect to the login form."""


#: Per event loop: each application's semaphore of writing turns (see :func:`db_turn`).
_TURNS: RunVar[WeakKeyDictionary[Any, anyio.Semaphore]] = RunVar("immunosep_db_turns")
#: Methods whose requests run read-only transactions (enforced by the database, see ``store.db.new_session``).
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def reads_only(request: Request) -> bool:
    """True when the request's transaction is read-only: a GET or HEAD, or a route marked read-only."""
    return request.method in READ_ONLY_METHODS or bool(getattr(request.state, "read_only_db", False))


async def db_turn(request: Request) -> AsyncIterator[None]:
    """A writing request waits here, on the event loop and in arrival order, for a writing turn.

    ``app.state.db_write_concurrency`` writers run at once (one: every writer serializes on the audit
    chain anyway, so the others queue here instead of waiting for its lock in a worker thread). Waiting
    holds no thread. Read-only requests pass straight through: they take no lock a writer waits for, and
    the worker threads (``app.state.worker_threads``) bound them.
    """
    limit = getattr(request.app.state, "db_write_concurrency", None)
    if limit is None or reads_only(request):
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


async def get_db(request: Request, _turn: None = Depends(db_turn)) -> AsyncIterator[Session]:
    """One transaction per request; read-only for GET and HEAD (the database refuses any write).

    The session connects at its first statement, in the handler's worker thread, and
    :class:`TransactionRoute` commits and closes it there, before the response leaves, so a client never
    gets a success for a write whose commit failed. A transaction still open here is rolled back.
    """
    session = new_session(request.app.state.engine, read_only=reads_only(request))
    request.state.db_session = session
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(functools.partial(end_session, session, commit=False))


async def read_only_db(request: Request) -> None:
    """Mark a route read-only whatever its method (login: the password check must not hold the write lock).

    List it before ``get_db`` in the route's dependencies.
    """
    request.state.read_only_db = True


def _ending_transaction(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync handler so that its session commits (or rolls back) and closes in its own worker thread.

    A writing transaction then lives for one thread hop: SQLite's write lock and PostgreSQL's audit-chain
    lock are not held while the request waits for the event loop between hops.
    """

    @functools.wraps(endpoint)  # FastAPI reads the signature (and its annotations) through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        sessions = [v for v in kwargs.values() if isinstance(v, Session)]
        try:
            result = endpoint(*args, **kwargs)
        except BaseException:
            for session in sessions:
                end_session(session, commit=False)
            raise
        for session in sessions:
            end_session(session, commit=True)
        return result

    return run


class TransactionRoute(APIRoute):
    """A route that commits the request's transaction after its handler and before its response is sent.

    A sync handler commits at its end, in its worker thread (:func:`_ending_transaction`); for an async
    handler the commit follows it. A failing commit raises (500, the transaction rolled back) instead of
    following a 200 already on the wire. Every router of the application uses this class.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _ending_transaction(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            response = await handler(request)
            session: Session | None = getattr(request.state, "db_session", None)
            if session is not None and session.in_transaction():
                await run_in_threadpool(functools.partial(end_session, session, commit=True))
            return response

        return commit_then_respond


async def current_actor(request: Request) -> Actor:
    """The logged-in user as an :class:`Actor` (role and sites re-read from the database every request).

    Read in a short read-only transaction of its own, in a worker thread, so that the request's own
    transaction (a writer's locks) starts only in its handler.
    """
    settings: SecuritySettings = request.app.state.settings
    uid = session_user_id(request.session, settings)
    if uid is None:
        raise NotAuthenticated()
    try:
        return await run_in_threadpool(_read_actor, request.app.state.engine, uid)
    except AccessDenied:
        request.session.clear()
        raise NotAuthenticated() from None


def _read_actor(engine: Engine, uid: int) -> Actor:
    with session_scope(engine, read_only=True) as session:
        return actor_for(session, uid)


async def optional_actor(request: Request) -> Actor | None:
    """The logged-in actor, or None for an anonymous visitor."""
    try:
        return await current_actor(request)
    except NotAuthenticated:
        return None
