"""Request dependencies: one database transaction per request and the authenticated :class:`Actor`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

import anyio
from anyio.lowlevel import RunVar
from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import greenlet_spawn

from immunosep.conduct.access import Actor, actor_for, read_actor
from immunosep.conduct.users import session_id_of
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store import audit
from immunosep.store.db import (
    TrialSession,
    end_session,
    is_read_only,
    locks_at_first_statement,
    new_session,
    single_reads,
)
from immunosep.web.security import SecuritySettings, session_token, session_user_id

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Kept = TypeVar("Kept")
log = logging.getLogger(__name__)


class NotAuthenticated(Exception):
    """No live session: the API answers 401, pages redirect to the login form."""


#: Per event loop: each application's semaphore of writing turns (see :func:`get_db`).
_TURNS: RunVar[WeakKeyDictionary[Any, anyio.Semaphore]] = RunVar("immunosep_db_turns")
#: Methods whose requests run read-only transactions (enforced by the database, see ``store.db.new_session``).
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def reads_only(request: Request) -> bool:
    """True when the request's transaction is read-only: a GET or HEAD, or a route marked read-only.

    A GET of a route marked :func:`logs_access` writes (its access entry).
    """
    if getattr(request.state, "logs_access", False):
        return False
    return request.method in READ_ONLY_METHODS or bool(getattr(request.state, "read_only_db", False))


class WritingTurn:
    """One of the application's writing turns, given back exactly once.

    The handler's worker thread gives it back right after its commit (:func:`_ending_transaction`), so the
    next writer starts while this response is still on its way; otherwise :func:`get_db` gives it back
    when the request ends.
    """

    __slots__ = ("_held", "_lock", "_loop", "_loop_thread", "_semaphore")

    def __init__(self, semaphore: anyio.Semaphore) -> None:
        self._semaphore = semaphore
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._held = True

    def give_back(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        if threading.get_ident() == self._loop_thread:
            self._semaphore.release()
        else:
            self._loop.call_soon_threadsafe(self._semaphore.release)


def _of_app(var: RunVar[WeakKeyDictionary[Any, Kept]], app: Any, make: Callable[[], Kept]) -> Kept:
    """What ``var`` keeps for ``app`` on this event loop, made by ``make`` the first time it is asked for."""
    by_app = var.get(None)
    if by_app is None:
        by_app = WeakKeyDictionary()
        var.set(by_app)
    found = by_app.get(app)
    if found is None:
        found = by_app[app] = make()
    return found


def _turns_of(app: Any, limit: int) -> anyio.Semaphore:
    """The application's semaphore of writing turns on this event loop."""
    return _of_app(_TURNS, app, lambda: anyio.Semaphore(limit))


#: ``Session.info`` key of the request's writing turn (given back after the commit).
_TURN_KEY = "immunosep_writing_turn"
#: ``Session.info`` key of the application's :class:`CommitGroups`, for a grouped route's request.
_GROUPS_KEY = "immunosep_commit_groups"


async def get_db(request: Request) -> Session:
    """One transaction per request; read-only for GET and HEAD (the database refuses any write).

    A writing request first waits here, on the event loop and in arrival order, for a writing turn:
    ``app.state.db_write_concurrency`` writers run at once (one: every writer serializes on the audit
    chain anyway, so the others queue here instead of waiting for its lock in a worker thread). Waiting
    holds no thread. Read-only requests pass straight through: they take no lock a writer waits for, and
    the worker threads (``app.state.worker_threads``) bound them.

    The session connects at its first statement, where the handler runs, and :class:`TransactionRoute`
    commits and closes it there, before the response leaves, so a client never gets a success for a write
    whose commit failed (and gives the turn back right after the commit); it also rolls back a transaction
    still open when the request ends and gives the turn back. Only for routes of that class (a plain
    function, not a generator: FastAPI's exit stack for one costs every request more than the rest of
    this dependency).
    """
    if not isinstance(request.scope.get("route"), TransactionRoute):
        raise RuntimeError(
            f"{request.url.path}: get_db needs a TransactionRoute (route_class=TransactionRoute)"
        )
    read_only = reads_only(request)
    limit = getattr(request.app.state, "db_write_concurrency", None)
    turn = None
    in_group = not read_only and is_grouped(request.scope["route"].endpoint)
    if limit is not None and not read_only and not in_group:
        semaphore = _turns_of(request.app, limit)
        await semaphore.acquire()
        turn = WritingTurn(semaphore)
    try:
        session = new_session(request.app.state.engine, read_only=read_only)
    except BaseException:
        if turn is not None:
            turn.give_back()
        raise
    if turn is not None:
        session.info[_TURN_KEY] = turn
    elif in_group:
        session.info[_GROUPS_KEY] = _groups_of(request.app)
    request.state.db_session = session
    return session


async def _end_request_transaction(session: Session) -> None:
    """After a request: roll back a transaction its handler left open, then give back its writing turn."""
    try:
        if session.in_transaction():
            await run_in_threadpool(functools.partial(end_session, session, commit=False))
    finally:
        turn = session.info.pop(_TURN_KEY, None)
        if turn is not None:
            turn.give_back()


async def read_only_db(request: Request) -> None:
    """Mark a route read-only whatever its method (login: the password check must not hold the write lock).

    List it before ``get_db`` in the route's dependencies.
    """
    request.state.read_only_db = True


async def logs_access(request: Request) -> None:
    """Mark a GET route writable: it shows unblinded or sensitive data, and the service logs the read in the
    audit chain (``conduct.access_log``), which a read-only transaction would refuse.

    List it before ``get_db`` in the route's dependencies.
    """
    request.state.logs_access = True


_INLINE = "__immunosep_inline__"


def inline(endpoint: Endpoint) -> Endpoint:
    """Run this sync handler on the event loop instead of in a worker thread (for the hottest short routes).

    Only for handlers that do milliseconds of work in one small transaction on the trial database and
    nothing else that blocks (on PostgreSQL the loop waits for each statement's round trip to the server,
    a fraction of a millisecond on the same machine or network). They skip the thread hop and the threads'
    contention for the interpreter lock, under which a writer held the writers' lock while it waited for
    the interpreter (bench_web at 200 req/s, p99: SQLite 57-81 ms in most runs against 130-540 ms,
    PostgreSQL 169-367 ms against 852-934 ms). A writing inline handler runs in a greenlet: it takes the
    writers' lock where its service does (``conduct.access.begin``, after checking and scoring the input)
    and, while another process's writer has it, gives the loop back instead of blocking it.
    """
    setattr(endpoint, _INLINE, True)
    return endpoint


def is_inline(endpoint: object) -> bool:
    """True for a handler marked with :func:`inline` (or its wrapper)."""
    return bool(getattr(endpoint, _INLINE, False))


_GROUPED = "__immunosep_grouped__"
#: Most writes one group commits; its members wait for the last one's handler (about 2-3 ms each).
GROUP_MAX = 8


def grouped(endpoint: Endpoint) -> Endpoint:
    """Run this writing handler in the process's commit groups (:class:`CommitGroups`), on the event loop.

    For short writes that end in one commit and never commit or roll back themselves: under load the
    writes that queue while the writers' lock is busy run one after another in one transaction and
    commit together, so the lock changes hands and the commit reaches the disk once per group instead of
    once per write. A handler's failure undoes its own writes only; a failed commit fails every member of
    the group and stores nothing. Implies :func:`inline`.
    """
    setattr(endpoint, _GROUPED, True)
    return inline(endpoint)


def is_grouped(endpoint: object) -> bool:
    """True for a handler marked with :func:`grouped` (or its wrapper)."""
    return bool(getattr(endpoint, _GROUPED, False))


#: Per event loop: each application's :class:`CommitGroups`.
_GROUPS: RunVar[WeakKeyDictionary[Any, CommitGroups]] = RunVar("immunosep_commit_groups")


@dataclass
class GroupStats:
    """How the groups went: groups committed, members run, the largest group, members whose commit failed."""

    groups: int = 0
    members: int = 0
    largest: int = 0
    failed_commits: int = 0
    replays: int = 0  # groups that rolled back and ran their members again in savepoints


class CommitGroups:
    """One application's queue of grouped writes on one event loop, and the task that runs it (group commit).

    A request puts its handler in the queue and waits for the outcome. One task takes the process's
    writing turn (:func:`get_db`), opens a transaction and runs the queued handlers one after another in
    it, until the queue is empty or :data:`GROUP_MAX` ran (a group of one costs what a lone write does);
    then it commits once and only then answers every member. No savepoint per member: a handler that
    fails before it wrote leaves nothing to undo (:meth:`_run_plain`); one that fails after it wrote makes
    the group roll back and run the members before it again, each later one in a savepoint, and the rest
    of the group too (``GroupStats.replays``). Handlers run in a greenlet (as :func:`inline` writers do),
    so waiting for another process's writer gives the loop back, and the requests that arrive meanwhile
    join the next group: the busier the lock, the larger the groups. Each transaction holds the writers'
    lock from its first write to its commit, as a lone write does; the audit chain links the members in
    commit order, and the group's entries are inserted with one statement as it commits
    (``audit.defer_entries``).
    """

    def __init__(self, engine: Engine, turns: anyio.Semaphore | None) -> None:
        self._engine = engine
        _count_writes_on(engine)
        self._turns = turns
        self._queue: deque[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.stats = GroupStats()

    async def run(self, member: Callable[[Session], Any]) -> Any:
        """Run ``member(session)`` in a group; its result once the group's commit is on disk (or its error)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((member, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future  # cancelled with its request: the member is skipped if it has not run

    async def _drain(self) -> None:
        try:
            while self._queue:
                if self._turns is not None:
                    await self._turns.acquire()
                try:
                    await greenlet_spawn(self._one_group)
                finally:
                    if self._turns is not None:
                        self._turns.release()
        finally:
            self._task = None

    def _one_group(self) -> None:
        session = new_session(self._engine)
        session.info[_COUNTS_WRITES] = True  # see _run_plain
        audit.defer_entries(session)  # the group's audit entries in one statement, before its commit
        runs: list[_Run] = []
        savepoints = False  # from a member's failure that left something to undo (see _run_plain)
        stored = 0  # members whose writes are in the open transaction
        future = None
        try:
            while self._queue and len(runs) < GROUP_MAX:
                member, future = self._queue.popleft()
                if future.done():
                    continue  # its request is gone (cancelled) before it ran
                run = _Run(future, member)
                if savepoints:
                    run.result, run.failure = self._run_member(session, member, first=stored == 0)
                else:
                    run.result, run.failure, clean = self._run_plain(session, member)
                    if not clean:  # undo all, then the members before it again, each in a savepoint
                        session.rollback()
                        savepoints, stored = True, 0
                        for earlier in runs:
                            if earlier.failure is None:
                                earlier.result, earlier.failure = self._run_member(
                                    session, earlier.member, first=stored == 0
                                )
                                stored += earlier.failure is None
                runs.append(run)
                stored += run.failure is None
            future = None
            end_session(session, commit=True)  # with the group's audit entries, kept back until now
        except BaseException as exc:  # a savepoint or the commit failed: nothing of the group is stored
            try:
                end_session(session, commit=False)
            except Exception:  # the connection is gone too: the members still get their answer
                log.exception("commit group: the rollback after a failure failed")
            futures = [r.future for r in runs] + ([future] if future is not None else [])
            self.stats.failed_commits += len(futures)
            _settle([(f, None, exc) for f in futures])
            if not isinstance(exc, Exception):
                raise  # cancelled (the server is stopping): the members were cancelled with it
            return
        if runs:  # not a queue of requests all cancelled before their turn
            self.stats.groups += 1
            self.stats.members += len(runs)
            self.stats.largest = max(self.stats.largest, len(runs))
            self.stats.replays += savepoints
        _settle([(r.future, r.result, r.failure) for r in runs])

    @staticmethod
    def _run_plain(
        session: Session, member: Callable[[Session], Any]
    ) -> tuple[Any, BaseException | None, bool]:
        """One member's (result, error, clean) in the open transaction, without a savepoint (two round trips
        fewer under the writers' lock). Its changes are flushed before it counts as done, so that a write
        it left pending fails as its own, not the next member's. ``clean`` is False when it failed after a
        write statement, an audit entry (kept back to the commit), a statement that failed, or ORM changes
        left unflushed: then only a rollback undoes it (the caller's). Most refusals (a value out of range,
        no right, a day already entered) come before any write, and leave the transaction as it was."""
        audit.set_context(session, None, "")  # who and why are the member's own (its service sets them)
        before = _writes_in(session), audit.deferred_count(session)
        try:
            result = member(session)
            session.flush()
        except Exception as exc:
            clean = (
                (_writes_in(session), audit.deferred_count(session)) == before
                and not _from_the_database(exc)
                and not (session.new or session.dirty or session.deleted)
            )
            return None, exc, clean
        return result, None, True

    @staticmethod
    def _run_member(
        session: Session, member: Callable[[Session], Any], *, first: bool
    ) -> tuple[Any, BaseException | None]:
        """One member's (result, error) once a group uses savepoints: the first of a transaction runs as
        the transaction itself (rolled back whole if it fails: nothing else is in it), a later one in a
        savepoint (rolled back alone)."""
        audit.set_context(session, None, "")  # who and why are the member's own (its service sets them)
        if first:
            try:
                return member(session), None
            except Exception as exc:
                session.rollback()
                return None, exc
        savepoint = session.begin_nested()
        try:
            result = member(session)
        except Exception as exc:
            if savepoint.is_active:
                savepoint.rollback()
            return None, exc
        if savepoint.is_active:
            savepoint.commit()
        return result, None


@dataclass
class _Run:
    """A member of the open group: its request's future, the member, and its outcome so far."""

    future: asyncio.Future[Any]
    member: Callable[[Session], Any]
    result: Any = None
    failure: BaseException | None = None


#: ``Connection.info`` key: statements other than reads run on the connection in its current transaction
#: (a failed one is seen by its exception, :func:`_from_the_database`: SQLAlchemy's ``handle_error`` cannot be
#: listened to on one connection).
_WRITES = "immunosep_writes_in_transaction"
#: ``Session.info`` keys: the session counts its writes (a commit group's), and the connection it counts on.
_COUNTS_WRITES = "immunosep_counts_writes"
_WRITES_CONNECTION = "immunosep_counted_connection"


def _writes_in(session: Session) -> int:
    """Statements other than SELECT run (or failed) in a commit group's transaction so far (0 before it has a
    connection)."""
    conn = session.info.get(_WRITES_CONNECTION)
    return int(conn.info.get(_WRITES, 0)) if conn is not None else 0


def _count_writes_on(engine: Engine) -> None:
    """Count the writes of ``engine``'s connections (once per engine). The engine of the commit groups
    runs writes only: the reads of the pages and dashboards go to its read-only pool (``store.db``), whose
    statements stay on SQLAlchemy's path for executions without events (a listener on every engine cost a
    PostgreSQL dashboard 1.4 % more instructions; one on each group's connection, 3 % more per lone write)."""
    if not event.contains(engine, "before_cursor_execute", _count_writes):
        event.listen(engine, "before_cursor_execute", _count_writes)


@event.listens_for(TrialSession, "after_begin")
def _count_from_zero(session: Session, _transaction: Any, connection: Connection) -> None:
    if session.info.get(_COUNTS_WRITES):
        connection.info[_WRITES] = 0
        session.info[_WRITES_CONNECTION] = connection


@event.listens_for(TrialSession, "after_transaction_end")
def _stop_counting(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_WRITES_CONNECTION, None)


def _count_writes(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
    if statement.lstrip()[:6].upper() != "SELECT" and _WRITES in conn.info:
        conn.info[_WRITES] += 1


def _from_the_database(exc: BaseException) -> bool:
    """True when ``exc``, or an exception it was raised from or while handling, came from SQLAlchemy: a
    statement or a flush that failed (on PostgreSQL it aborts the transaction)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        if isinstance(e, SQLAlchemyError):
            return True
        seen.add(id(e))
        todo += [e.__cause__, e.__context__]
    return False


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Answer each member that still waits: its result, its error, or cancelled with the group's task."""
    for future, result, error in outcomes:
        if future.done():
            continue  # the request was cancelled while its group ran
        if error is None:
            future.set_result(result)
        elif isinstance(error, Exception):
            future.set_exception(error)
        else:
            future.cancel()


def group_stats(app: Any) -> GroupStats | None:
    """How the application's commit groups on this event loop went (None before its first grouped write)."""
    groups = _GROUPS.get(None)
    found = groups.get(app) if groups is not None else None
    return found.stats if found is not None else None


def _groups_of(app: Any) -> CommitGroups:
    """The application's :class:`CommitGroups` on this event loop."""

    def make() -> CommitGroups:
        limit = getattr(app.state, "db_write_concurrency", None)
        return CommitGroups(app.state.engine, _turns_of(app, limit) if limit is not None else None)

    return _of_app(_GROUPS, app, make)


def _ending_transaction(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync handler to run in one worker thread (or, :func:`inline`, on the loop) with its transaction.

    The handler's :class:`ActorClaim` arguments become :class:`Actor` objects read in the request's own
    transaction, then the handler runs, then its session commits (or rolls back) and closes. A request
    then costs one thread hop and one transaction, and a writing transaction lives for that one hop:
    SQLite's write lock and PostgreSQL's audit-chain lock are not held while the request waits for the
    event loop.
    """

    @functools.wraps(endpoint)  # FastAPI reads the signature (and its annotations) through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        sessions = [v for v in kwargs.values() if isinstance(v, Session)]
        try:
            _resolve_claims(kwargs, sessions[0] if sessions else None)
            result = endpoint(*args, **kwargs)
        except BaseException:
            for session in sessions:
                end_session(session, commit=False)
            raise
        for session in sessions:
            end_session(session, commit=True)
            turn = session.info.pop(_TURN_KEY, None)
            if turn is not None:
                turn.give_back()  # the next writer may start; this response still has to be sent
        return result

    if is_grouped(endpoint):

        @functools.wraps(endpoint)
        async def in_a_group(*args: Any, **kwargs: Any) -> Any:
            own = [v for v in kwargs.values() if isinstance(v, Session)]
            _resolve_claims(kwargs, None)  # the user is read before the group, not under the writers' lock
            groups: CommitGroups = own[0].info[_GROUPS_KEY]
            for session in own:
                session.close()  # never connected: the member runs in the group's session

            def member(session: Session) -> Any:
                return endpoint(
                    *args, **{k: session if isinstance(v, Session) else v for k, v in kwargs.items()}
                )

            return await groups.run(member)

        return in_a_group
    if is_inline(endpoint):

        @functools.wraps(endpoint)
        async def on_the_loop(*args: Any, **kwargs: Any) -> Any:
            if any(isinstance(v, Session) and not is_read_only(v) for v in kwargs.values()):
                # A writer may have to wait for another process's writer: in a greenlet, it gives the loop
                # back while it waits (store.db.pause, audit.acquire_chain_lock).
                return await greenlet_spawn(run, *args, **kwargs)
            return run(*args, **kwargs)

        return on_the_loop
    return run


def _resolving_claims(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an async handler so that its :class:`ActorClaim` arguments are read (in a worker thread) first."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(v, ActorClaim) for v in kwargs.values()):
            await run_in_threadpool(_resolve_claims, kwargs, None)
        return await endpoint(*args, **kwargs)

    return run


class TransactionRoute(APIRoute):
    """A route that commits the request's transaction after its handler and before its response is sent.

    A sync handler commits at its end, in its worker thread (:func:`_ending_transaction`); for an async
    handler the commit follows it. A failing commit raises (500, the transaction rolled back) instead of
    following a 200 already on the wire. Every router of the application uses this class.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if inspect.iscoroutinefunction(endpoint):
            endpoint = _resolving_claims(endpoint)
        else:
            endpoint = _ending_transaction(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            try:
                response = await handler(request)
                session: Session | None = getattr(request.state, "db_session", None)
                if session is not None and session.in_transaction():
                    await run_in_threadpool(functools.partial(end_session, session, commit=True))
                return response
            finally:
                session = getattr(request.state, "db_session", None)
                if session is not None:
                    await _end_request_transaction(session)

        return commit_then_respond


class ActorClaim:
    """A live session's user id, read into an :class:`Actor` where the handler runs (see :func:`current_actor`).

    Deliberately not an :class:`Actor`: a handler that got one unresolved fails at its first use instead of
    acting with made-up rights.
    """

    __slots__ = ("cookie", "engine", "optional", "sid", "user_id")

    def __init__(
        self, user_id: int, sid: str | None, cookie: MutableMapping[str, Any], engine: Engine, optional: bool
    ) -> None:
        self.user_id = user_id
        self.sid = sid  # the server-side session's token (conduct.users.start_session)
        self.cookie = cookie  # the request's session (signed cookie) data, cleared for a deactivated account
        self.engine = engine
        self.optional = optional

    def resolve(self, session: Session | None) -> Actor | None:
        """The user's :class:`Actor`, read in ``session`` (else on a read-only connection, no transaction).

        An account deactivated since login, or a session ended on the server (logout, deactivation, a
        password change) ends the cookie's session: :class:`NotAuthenticated`, or None for an optional actor.
        """
        try:
            if self.sid is None:  # a cookie without a server-side session (from before revision 0004)
                raise AccessDenied("the session has ended; log in again")
            digest = session_id_of(self.sid)
            if session is not None:
                return actor_for(session, self.user_id, digest)
            with single_reads(self.engine) as conn:  # no transaction of its own for one statement
                return read_actor(conn, self.user_id, digest)[0]
        except AccessDenied:
            self.cookie.clear()
            if self.optional:
                return None
            raise NotAuthenticated() from None


def _resolve_claims(kwargs: dict[str, Any], session: Session | None) -> None:
    if session is not None and locks_at_first_statement(session) and not session.in_transaction():
        session = None  # a SQLite writer: read the user before taking the write lock, not under it
    for name, value in kwargs.items():
        if isinstance(value, ActorClaim):
            kwargs[name] = value.resolve(session)


def _claim(request: Request, optional: bool) -> ActorClaim | None:
    settings: SecuritySettings = request.app.state.settings
    uid = session_user_id(request.session, settings)
    if uid is None:
        if optional:
            return None
        raise NotAuthenticated()
    return ActorClaim(
        uid, session_token(request.session), request.session, request.app.state.engine, optional
    )


async def current_actor(request: Request) -> Actor:
    """The logged-in user as an :class:`Actor` (role and sites re-read from the database every request).

    The cookie is checked here (no live session: :class:`NotAuthenticated`); the user row is read where
    the handler runs (:class:`TransactionRoute` resolves the returned :class:`ActorClaim`), in the request's
    own transaction (a SQLite writer's: just before it, outside the write lock), so a request takes one
    thread hop, and a deactivated account or a changed role takes effect at once.
    """
    return cast(Actor, _claim(request, optional=False))


async def optional_actor(request: Request) -> Actor | None:
    """The logged-in actor, or None for an anonymous visitor (or an account deactivated since login)."""
    return cast(Actor | None, _claim(request, optional=True))


def _nul_field(value: Any, path: str) -> str | None:
    """The dotted path of the first string in a decoded JSON value that contains a NUL, or ``None``."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return f"{path}.{key}".strip(".")
        found = _nul_field(item, f"{path}.{key}".strip("."))
        if found is not None:
            return found
    return None


async def refuse_nul(request: Request) -> None:
    """Refuse text with a NUL character anywhere in the request (path, query, JSON or form body): PostgreSQL
    cannot store one and SQLite would, so it is refused on both, with the field named (422)."""
    found = next((k for k, v in request.path_params.items() if "\x00" in str(v)), None)
    found = found or next((k for k, v in request.query_params.multi_items() if "\x00" in k + v), None)
    if found is None and request.method not in ("GET", "HEAD", "OPTIONS"):
        body = await request.body()
        kind = request.headers.get("content-type", "")
        if b"\\u0000" in body and kind.startswith("application/json"):
            try:
                found = _nul_field(json.loads(body), "")
            except ValueError:
                found = None  # not JSON: the request's own validation answers
        elif b"%00" in body or b"\x00" in body:
            found = next((k for k, v in (await request.form()).multi_items() if "\x00" in k + str(v)), "body")
    if found is not None:
        raise ImmunoSepError(f"{found or 'the request'}: text must not contain a NUL character", field=found)
