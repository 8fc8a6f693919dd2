"""Engines, sessions and migrations for the trial database.

SQLite (a file, the default) runs in WAL mode with foreign keys and ``secure_delete`` on, and every
transaction begins with ``BEGIN IMMEDIATE`` so writers queue instead of failing on a lock upgrade.
PostgreSQL is used through ``postgresql+psycopg://`` URLs. The schema is created and upgraded by Alembic
(revisions in ``immunosep/store/migrations/versions``), never by ``create_all``. Creating a trial in the
schema (protocol, sites, sealed lists) is a conduct operation: ``immunosep.conduct.trial.init_trial``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from sqlalchemy.util.concurrency import await_, in_greenlet

from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.pg_cursor import describe_on_demand

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 60.0
#: A pooled PostgreSQL connection idle at least this long (s) is pinged before it is handed out.
PG_PING_AFTER_IDLE_S = 5.0


class TrialSession(Session):
    """A session whose flushes write the audit trail (hooks installed below)."""

    def begin_nested(self) -> SessionTransaction:
        """A savepoint, after the audit entries the transaction kept back (``audit.defer_entries``) are
        inserted: rolling it back must take its own entries only."""
        audit.insert_deferred(self)
        return super().begin_nested()


audit.install(TrialSession)

#: ``session.info`` key of a dict that lives for one transaction: dropped when the transaction ends.
_TRANSACTION_CACHE = "immunosep_transaction_cache"


def transaction_cache(session: Session) -> dict[str, Any]:
    """A dict for values read once per transaction (such as the trial row), emptied when it ends."""
    cache: dict[str, Any] = session.info.setdefault(_TRANSACTION_CACHE, {})
    return cache


@event.listens_for(TrialSession, "after_transaction_end")
def _drop_transaction_cache(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the session's outermost transaction, not a savepoint
        session.info.pop(_TRANSACTION_CACHE, None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _sqlite_not_durable(dbapi_connection: Any, _record: Any) -> None:
    """``synchronous=NORMAL`` (see :func:`make_engine`'s ``durable``): in WAL mode a commit is not synced
    to disk; a power cut may lose the last transactions, never the database's consistency."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


#: Execution option of the engines behind read-only sessions (see :func:`new_session`).
READ_ONLY = "immunosep_read_only"


def _sqlite_begin(conn: Any) -> None:
    """Writers begin IMMEDIATE (they queue for the write lock); read-only sessions a deferred snapshot.

    A read-only transaction runs with ``PRAGMA query_only`` on, so a write attempted in it fails at once
    instead of waiting for (or upgrading to) the write lock.
    """
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("PRAGMA query_only=1")
        conn.connection.info["query_only"] = True  # reset when the connection returns to the pool
        conn.exec_driver_sql("BEGIN")
    else:
        _begin_immediate(conn)


def lock_poll_delays(timeout_s: float) -> Iterator[float]:
    """Sleeps (s) between tries for the writers' lock: 0.2 ms doubling to 2 ms, until ``timeout_s`` is up.

    Short steps hand the lock over within 2 ms of its release (SQLite's own busy handler sleeps 1 to
    100 ms). The iterator ends when the time is up: the caller gives up.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.0002
    while time.monotonic() <= deadline:
        yield delay
        delay = min(delay * 2, 0.002)


def _begin_immediate(conn: Any) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's writer by polling (:func:`lock_poll_delays`).

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, so a writer in a second
    process (``serve --workers 2``) waits far longer than the other writer holds the lock; polling here
    hands the lock over within 2 ms. Gives up after :data:`SQLITE_BUSY_TIMEOUT_S` as before. Between tries
    it waits in :func:`pause`: on the event loop for a web handler run there, else in this thread.
    """
    raw = conn.connection.dbapi_connection
    delays = lock_poll_delays(SQLITE_BUSY_TIMEOUT_S)
    raw.execute("PRAGMA busy_timeout=0")  # fail at once instead of sleeping in SQLite's handler
    try:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the first try through SQLAlchemy (its events see it)
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig):
                raise
            error: Exception = exc
        while (delay := next(delays, None)) is not None:
            pause(delay)
            try:  # the retries on the driver's connection: 0.01 ms a try against 0.14 through SQLAlchemy
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.Error as exc:
                if "locked" not in str(exc):
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # once more through SQLAlchemy: its error
                    return
        raise error
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")


def pause(delay_s: float) -> None:
    """Wait ``delay_s`` seconds between tries for the writers' lock, without ever blocking an event loop.

    A handler that runs on the event loop (``web.deps.inline``) runs in a greenlet and gives the loop back
    while it waits (SQLAlchemy's ``greenlet_spawn``/``await_``); anywhere else this thread sleeps.
    """
    if in_greenlet():
        await_(asyncio.sleep(delay_s))
    else:
        time.sleep(delay_s)


_IDLE_SINCE = "immunosep_idle_since"


def _pg_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _pg_pinger(dialect: Any) -> Any:
    """A checkout hook that pings a connection idle in the pool for :data:`PG_PING_AFTER_IDLE_S` or more.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one more round trip per request (one in six to
    eight on the hot routes). Here a connection used moments ago is handed out as is; a dead idle one is
    replaced (the pool tries again). If the server went away under load, one request fails and
    SQLAlchemy invalidates the whole pool on that disconnect error, so the next ones connect afresh.
    """

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PG_PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(f"pooled connection lost: {exc}") from exc
            raise

    return ping_if_idle


def _sqlite_checkin(dbapi_connection: Any, record: Any) -> None:
    """A connection goes back to the pool writable, whoever takes it next (and however: raw VACUUM too)."""
    if record.info.pop("query_only", False) and dbapi_connection is not None:
        dbapi_connection.execute("PRAGMA query_only=0")


#: Server settings of every PostgreSQL connection (libpq ``options``; the URL's and the caller's come after,
#: so they win). ``jit=off``: the JIT compiles a statement's expressions at every execution once the
#: planner's estimate passes ``jit_above_cost``; the site dashboard's statement (15 patients, 40 days each)
#: was estimated at 1.2 million once autovacuum had analyzed the tables, and took 190 ms of JIT
#: compilation a request for 0.5 ms of work. The trial's statements are short: the JIT never pays here.
PG_SESSION_OPTIONS = "-c jit=off"
#: Pool of the connections of PostgreSQL's read-only sessions, beside the engine's own (see _READERS).
PG_READER_POOL = {"pool_size": 5, "max_overflow": 20}
#: Each engine's engine of read-only sessions, a pool of connections that cannot write. PostgreSQL: the
#: server keeps them read-only (``default_transaction_read_only``) and runs each statement as its own
#: transaction (AUTOCOMMIT), so a read costs no BEGIN and COMMIT round trips; under READ COMMITTED,
#: PostgreSQL's default, each statement of a transaction sees what was committed when it started, so the
#: reads see what they saw in one transaction. A SQLite file: connections with ``query_only`` on for good
#: (no PRAGMA switched on and off around every read) whose sessions read one snapshot (deferred BEGIN).
_READERS: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()
#: Execution option of a reader connection whose statements each run on their own (see single_reads).
_EACH_STATEMENT = "immunosep_each_statement"


def _add_reader(engine: Engine, reader: Engine) -> None:
    _READERS[engine] = reader
    event.listen(engine, "engine_disposed", lambda _engine: reader.dispose())


def _is_sqlite_file(url: str) -> bool:
    u = make_url(url)
    return bool(u.database) and u.database != ":memory:" and u.query.get("mode") != "memory"


def _sqlite_reader_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.execute("PRAGMA query_only=1")


def _sqlite_reader_begin(conn: Any) -> None:
    if not conn.get_execution_options().get(_EACH_STATEMENT):
        conn.exec_driver_sql("BEGIN")  # one snapshot for the read-only session's statements


def _sqlite_engine(url: str, on_connect: Any, on_begin: Any, **kwargs: Any) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
    )
    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def _pg_engine(url: str, **kwargs: Any) -> Engine:
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", describe_on_demand)
    event.listen(engine, "checkin", _pg_checkin)
    event.listen(engine, "checkout", _pg_pinger(engine.dialect))
    return engine


def _pg_options(url: str) -> str:
    """The URL's libpq ``options`` (server settings), "" without."""
    given = make_url(url).query.get("options", "")
    return " ".join(o for o in ((given,) if isinstance(given, str) else given) if o)


def make_engine(url: str, *, durable: bool = True, **kwargs: Any) -> Engine:
    """An engine for a SQLite file or a PostgreSQL URL with the trial's connection settings.

    ``durable=False`` is for throwaway databases (the virtual trial of ``immunosep demo``): on SQLite a
    commit is then not synced to disk (``synchronous=NORMAL``, WAL mode; about 5 ms saved per commit); a
    power cut may lose the last transactions, never the database's consistency. What is stored and
    audited is the same. PostgreSQL ignores it. A real trial's database keeps the default.
    """
    try:
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url, _sqlite_pragmas, _sqlite_begin, **kwargs)
            if not durable:
                event.listen(engine, "connect", _sqlite_not_durable)
            event.listen(engine, "checkin", _sqlite_checkin)
            if _is_sqlite_file(url):  # an in-memory database is one per connection: it keeps one engine
                _add_reader(
                    engine, _sqlite_engine(url, _sqlite_reader_pragmas, _sqlite_reader_begin, **kwargs)
                )
            return engine
        if url.startswith("postgresql"):
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 40)
            kwargs.setdefault("pool_timeout", 120)
            given = dict(kwargs.pop("connect_args", {}))
            options = " ".join(o for o in (PG_SESSION_OPTIONS, _pg_options(url), given.get("options")) if o)
            engine = _pg_engine(url, connect_args={**given, "options": options}, **kwargs)
            reader = _pg_engine(
                url,
                isolation_level="AUTOCOMMIT",
                connect_args={**given, "options": f"{options} -c default_transaction_read_only=on"},
                **{**kwargs, **PG_READER_POOL},
            )
            _add_reader(engine, reader)
            return engine
    except ArgumentError as exc:
        raise ImmunoSepError(f"cannot use database URL {url!r}: {exc}") from None
    raise ImmunoSepError(
        f"unsupported database URL {url!r}: use sqlite:///path/to/trial.db or postgresql+psycopg://..."
    )


@lru_cache(maxsize=64)
def _factory(engine: Engine) -> sessionmaker[TrialSession]:
    return sessionmaker(engine, class_=TrialSession, expire_on_commit=False)


@lru_cache(maxsize=64)
def _read_only_engine(engine: Engine) -> Engine:
    reader = _READERS.get(engine)
    if reader is not None:
        return reader.execution_options(**{READ_ONLY: True})
    options: dict[str, Any] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":  # an engine not made by make_engine
        options["postgresql_readonly"] = True  # BEGIN READ ONLY: a write raises
    return engine.execution_options(**options)


def reader_of(engine: Engine) -> Engine:
    """The engine that runs ``engine``'s read-only sessions: its read-only pool (:data:`_READERS`), else itself."""
    return _READERS.get(engine, engine)


@contextmanager
def single_reads(engine: Engine) -> Iterator[Connection]:
    """A read-only connection whose statements each run on their own, for reads of one statement.

    No BEGIN and COMMIT (on SQLite, no PRAGMAs either), and no snapshot shared between statements: for
    reads such as who the user is, where that costs more than the read itself (SQLite: 0.85 -> 0.18 ms).
    An engine without a read-only pool gives a read-only transaction instead.
    """
    reader = _READERS.get(engine)
    if reader is None:
        with _read_only_engine(engine).connect() as conn:
            yield conn
        return
    with reader.connect() as conn:
        yield conn.execution_options(**{_EACH_STATEMENT: True})


def new_session(engine: Engine, *, read_only: bool = False) -> TrialSession:
    """A session on ``engine`` (it connects at its first statement).

    ``read_only`` sessions run read-only transactions that the database enforces (PostgreSQL: a
    connection of the engine's read-only pool, :data:`_READERS`; SQLite ``query_only``); on SQLite
    they also read a snapshot without queueing for the write lock, so they run beside a writer.
    """
    factory = _factory(engine)
    return factory(bind=_read_only_engine(engine)) if read_only else factory()


def is_read_only(session: Session) -> bool:
    """True for a session made with ``new_session(..., read_only=True)``."""
    return bool(session.get_bind().get_execution_options().get(READ_ONLY, False))


def locks_at_first_statement(session: Session) -> bool:
    """True when the session's transaction holds the write lock from its first statement (a SQLite writer).

    Reads that a write does not depend on (who the user is) are then better done before it, in a read-only
    transaction, so that the lock every writer queues for is held only for the write itself.
    """
    return session.get_bind().dialect.name == "sqlite" and not is_read_only(session)


def holds_writers_lock(session: Session) -> bool:
    """True when the session's transaction holds the writers' lock until it ends, so that nothing it reads
    changes but by its own writes: a SQLite writer (``BEGIN IMMEDIATE`` at its first statement), or a
    PostgreSQL transaction once it took the audit chain's lock (``audit.acquire_chain_lock``)."""
    return locks_at_first_statement(session) or audit.holds_chain_lock(session)


def end_session(session: Session, *, commit: bool) -> None:
    """End the session's transaction, committed when ``commit`` (else rolled back), and close it."""
    try:
        if commit and session.in_transaction():
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[TrialSession]:
    """One transaction: commit when the block ends normally, roll everything back on any exception."""
    session = new_session(engine, read_only=read_only)
    try:
        yield session
    except BaseException:
        end_session(session, commit=False)
        raise
    end_session(session, commit=True)


def alembic_config(url: str) -> Config:
    """Alembic configuration pointing at the package's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_db(url: str) -> None:
    """Bring the schema to the newest revision (``alembic upgrade head``)."""
    try:
        command.upgrade(alembic_config(url), "head")
    except OperationalError as exc:
        raise ImmunoSepError(f"cannot reach or migrate database {url!r}: {exc.orig}") from None
