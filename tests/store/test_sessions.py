"""Read-only sessions refuse writes on both backends; SQLite writers hand the write lock over quickly."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from immunosep.store import db as store_db
from immunosep.store.db import (
    make_engine,
    new_session,
    reader_of,
    session_scope,
    single_reads,
    transaction_cache,
)
from immunosep.store.models import Site


def test_a_read_only_session_refuses_every_write_and_stores_nothing(engine):
    with session_scope(engine) as s:
        before = s.execute(select(Site.name).where(Site.code == "S01")).scalar_one()
    with pytest.raises(DBAPIError), session_scope(engine, read_only=True) as s:
        s.execute(update(Site).where(Site.code == "S01").values(name="changed"))
    with session_scope(engine) as s:  # the pooled connection is writable again
        s.execute(update(Site).where(Site.code == "S01").values(name="written"))
    with session_scope(engine, read_only=True) as s:
        assert s.execute(select(Site.name).where(Site.code == "S01")).scalar_one() == "written"
    assert before != "written"


def test_a_read_only_session_leaves_raw_connections_writable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with session_scope(engine, read_only=True) as s:
        s.execute(text("SELECT count(*) FROM t")).scalar_one()
    raw = engine.raw_connection()  # the same pooled connection, as withdrawal.compact takes it
    try:
        raw.execute("INSERT INTO t VALUES (1)")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()


def test_sqlite_file_reads_run_on_a_pool_of_connections_that_cannot_write(tmp_path):
    """query_only for good (no PRAGMA switched around each read); sessions read a snapshot, single_reads
    runs each statement outside any transaction; the pool goes with the engine."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    reader = reader_of(engine)
    try:
        assert reader is not engine
        with session_scope(engine, read_only=True) as s:
            raw = s.connection().connection.dbapi_connection
            assert raw.in_transaction and raw.execute("PRAGMA query_only").fetchone()[0] == 1
        with single_reads(engine) as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
            assert not conn.connection.dbapi_connection.in_transaction
            with pytest.raises(DBAPIError, match="readonly"):
                conn.execute(text("INSERT INTO t VALUES (2)"))
        with session_scope(engine) as s:
            assert s.execute(text("PRAGMA query_only")).scalar_one() == 0
            s.execute(text("INSERT INTO t VALUES (3)"))
        with single_reads(engine) as conn:
            assert conn.execute(text("SELECT sum(x) FROM t")).scalar_one() == 4
        assert reader.pool.checkedin() >= 1
    finally:
        engine.dispose()
    assert reader.pool.checkedin() == 0
    memory = make_engine("sqlite://")  # one database per connection: no second pool
    assert reader_of(memory) is memory
    with single_reads(memory) as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_sqlite_reader_runs_beside_a_writer(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    writer = new_session(engine)
    writer.execute(text("INSERT INTO t VALUES (2)"))  # holds the write lock, not committed
    try:
        start = time.monotonic()
        with session_scope(engine, read_only=True) as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 1  # its snapshot
        assert time.monotonic() - start < 1.0  # did not queue for the write lock
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()


def _hold_write_lock(path: str, ready: object, seconds: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (99)")
    ready.set()  # type: ignore[attr-defined]
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


def _other_process_holds_the_lock(path: Path, seconds: float) -> multiprocessing.Process:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_write_lock, args=(str(path), ready, seconds))
    proc.start()
    assert ready.wait(30), "the lock-holding process did not start"
    return proc


class _RecordedSleeps:
    """Stands in for the ``time`` module of ``store.db``: records every sleep, sleeps it, passes the rest."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


def test_sqlite_writer_polls_for_another_process_lock_in_short_steps(tmp_path, monkeypatch):
    # SQLite's own busy handler would wait inside SQLite in steps of up to 100 ms (no sleeps seen here)
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    recorder = _RecordedSleeps()
    monkeypatch.setattr(store_db, "time", recorder)
    proc = _other_process_holds_the_lock(path, 0.3)
    try:
        with session_scope(engine) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
        proc.join(10)
        assert proc.exitcode == 0
        assert recorder.sleeps and max(recorder.sleeps) <= 0.002
        assert sum(recorder.sleeps) >= 0.15  # it waited by polling, not in SQLite's handler
        with session_scope(engine, read_only=True) as r:
            assert sorted(r.execute(text("SELECT x FROM t")).scalars()) == [1, 99]
    finally:
        proc.join(10)
        engine.dispose()


def test_sqlite_writer_gives_up_after_the_busy_timeout_and_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "x.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    proc = _other_process_holds_the_lock(path, 2.0)
    try:
        start = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), session_scope(engine) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
        assert 0.2 <= time.monotonic() - start < 1.5
    finally:
        proc.join(10)
    with session_scope(engine, read_only=True) as s:
        assert list(s.execute(text("SELECT x FROM t")).scalars()) == [99]
        # the busy timeout (patched to 0.2 s) is back for everything else on this connection
        assert s.execute(text("PRAGMA busy_timeout")).scalar_one() == 200
    engine.dispose()


def test_the_transaction_cache_lives_for_one_transaction(engine):
    s = new_session(engine)
    try:
        s.execute(select(Site.id)).first()
        transaction_cache(s)["x"] = 1
        assert transaction_cache(s) == {"x": 1}
        s.commit()
        assert transaction_cache(s) == {}
        s.execute(select(Site.id)).first()
        transaction_cache(s)["y"] = 2
        s.rollback()
        assert transaction_cache(s) == {}
    finally:
        s.close()


def test_locks_at_first_statement_only_for_a_sqlite_writer(engine):
    """The predicate the web layer uses to read the user before a write: true exactly when the lock is real."""
    reader, writer = new_session(engine, read_only=True), new_session(engine)
    try:
        assert not store_db.locks_at_first_statement(reader)
        assert store_db.locks_at_first_statement(writer) == (engine.dialect.name == "sqlite")
        writer.execute(select(Site.id)).first()  # a plain read: a SQLite writer now holds the write lock
        if engine.dialect.name == "sqlite":
            other = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            finally:
                other.close()
    finally:
        store_db.end_session(reader, commit=False)
        store_db.end_session(writer, commit=False)


def test_a_writer_on_the_event_loop_gives_the_loop_back_while_it_waits_for_the_lock(engine):
    """Inline handlers run in a greenlet (web.deps): waiting for another writer must not block the loop."""
    from sqlalchemy.util.concurrency import greenlet_spawn

    from immunosep.store.audit import CHAIN_LOCK_KEY, acquire_chain_lock

    holder = engine.connect()
    if engine.dialect.name == "sqlite":
        holder.exec_driver_sql("SELECT 1")  # a writer's connection begins IMMEDIATE (store.db's begin hook)
    else:
        holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    session = new_session(engine)
    held_s = 0.3

    def write() -> None:
        acquire_chain_lock(session)
        session.execute(update(Site).where(Site.code == "S01").values(name="after the lock"))
        store_db.end_session(session, commit=True)

    async def main() -> tuple[float, list[float]]:
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(held_s, holder.rollback)
        t0 = time.monotonic()
        await greenlet_spawn(write)
        waited = time.monotonic() - t0
        ticker.cancel()
        return waited, [t - t0 for t in ticks]

    try:
        waited, ticks = asyncio.run(main())
    finally:
        holder.close()
        session.close()
    assert held_s - 0.02 <= waited < held_s + 1.0
    assert sum(1 for t in ticks if 0 < t < held_s) >= 20  # the loop ran every 5 ms while the writer waited
    with session_scope(engine, read_only=True) as s:
        assert s.execute(select(Site.name).where(Site.code == "S01")).scalar_one() == "after the lock"


def _lock_requests(engine, *others):  # type: ignore[no-untyped-def]
    """The chain lock statements that connections other than ``others`` send: 'try' or 'wait' (queue)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(conn, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        if all(conn is not o for o in others) and "advisory_xact_lock" in statement:
            seen.append("try" if "pg_try_" in statement else "wait")

    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_writer_on_the_loop_takes_a_lock_freed_meanwhile_when_it_tries_again_not_from_the_queue(engine):
    """A lock granted in PostgreSQL's queue waits for the waiter's busy loop, held and idle: a writer on the
    loop tries again while the other writer is short, and takes the lock itself when it can use it."""
    from sqlalchemy.util.concurrency import greenlet_spawn

    from immunosep.store.audit import CHAIN_LOCK_KEY, RETRY_PAUSES_S, acquire_chain_lock

    holder = engine.connect()
    holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    seen, stop = _lock_requests(engine, holder)
    session = new_session(engine)
    released_after_s = 0.005  # while it retries (the loop's timers are as fine as a millisecond)

    def write() -> None:
        acquire_chain_lock(session)
        session.execute(update(Site).where(Site.code == "S01").values(name="taken on a retry"))
        store_db.end_session(session, commit=True)

    async def main() -> None:
        asyncio.get_running_loop().call_later(released_after_s, holder.rollback)
        await greenlet_spawn(write)

    try:
        asyncio.run(main())
    finally:
        stop()
        holder.close()
        session.close()
    assert seen[0] == "try" and "wait" not in seen, seen
    assert 2 <= len(seen) <= len(RETRY_PAUSES_S) + 1
    with session_scope(engine, read_only=True) as s:
        assert s.execute(select(Site.name).where(Site.code == "S01")).scalar_one() == "taken on a retry"


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_writer_on_the_loop_that_keeps_finding_the_lock_taken_queues_and_nobody_overtakes_it(engine):
    """After its retries the writer waits in PostgreSQL's queue: the lock goes to it when it is freed, and a
    writer that only tries (as another process's writers on the loop do) cannot take it first."""
    from sqlalchemy.util.concurrency import greenlet_spawn

    from immunosep.store.audit import CHAIN_LOCK_KEY, RETRY_PAUSES_S, acquire_chain_lock

    holder, other = engine.connect(), engine.connect()
    holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
    seen, stop = _lock_requests(engine, holder, other)
    session = new_session(engine)
    waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    try_lock = text("SELECT pg_try_advisory_xact_lock(:k)")

    def write() -> None:
        acquire_chain_lock(session)
        session.execute(update(Site).where(Site.code == "S01").values(name="after the queue"))
        store_db.end_session(session, commit=True)

    async def main() -> tuple[int, bool]:
        writer = asyncio.ensure_future(greenlet_spawn(write))
        await asyncio.sleep(sum(RETRY_PAUSES_S))
        for _ in range(200):  # its retries done, it queues (within 10 s even on a loaded machine)
            queued = other.execute(waiting).scalar_one()
            other.rollback()
            if queued:
                break
            await asyncio.sleep(0.05)
        holder.rollback()  # PostgreSQL grants the lock to the queue's head as it is freed
        overtaken = other.execute(try_lock, {"k": CHAIN_LOCK_KEY}).scalar_one()
        other.rollback()
        await writer
        return queued, overtaken

    try:
        queued, overtaken = asyncio.run(main())
    finally:
        stop()
        holder.close()
        other.close()
        session.close()
    assert queued == 1
    assert overtaken is False
    assert seen == ["try"] * (len(RETRY_PAUSES_S) + 1) + ["wait"]
    with session_scope(engine, read_only=True) as s:
        assert s.execute(select(Site.name).where(Site.code == "S01")).scalar_one() == "after the queue"


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)  # PostgreSQL's pool only: SQLite opens a file
def test_postgres_pings_only_a_connection_idle_in_the_pool_and_replaces_a_dead_one(engine, monkeypatch):
    """One round trip less per request than pool_pre_ping; a connection killed while idle is not handed out."""
    assert engine.dialect.name == "postgresql"
    pings: list[int] = []
    real_ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or real_ping(c))
    pid = text("SELECT pg_backend_pid()")
    with session_scope(engine) as s:
        first = s.execute(pid).scalar_one()
    with session_scope(engine) as s:  # used moments ago: no ping
        assert s.execute(pid).scalar_one() == first
    assert pings == []
    killer = create_engine(engine.url, poolclass=NullPool)
    with killer.connect() as other:  # the server drops the idle connection (a restart, a proxy timeout)
        other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
    killer.dispose()
    monkeypatch.setattr(store_db, "PG_PING_AFTER_IDLE_S", 0.0)
    with session_scope(engine) as s:  # pinged, found dead, replaced: the request works
        assert s.execute(pid).scalar_one() != first
    assert pings


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)  # SQLite reads a snapshot in a transaction (test_sqlite_reader_runs_beside_a_writer)
def test_postgres_reads_run_each_statement_on_a_connection_the_server_keeps_read_only(seeded_db_url):
    """No BEGIN and COMMIT round trips for a read; the URL's own server options hold on both pools."""
    url = make_url(seeded_db_url).update_query_dict({"options": "-c lock_timeout=1234"})
    engine = make_engine(url.render_as_string(hide_password=False))
    settings = text("SELECT current_setting('transaction_read_only'), current_setting('lock_timeout')")
    try:
        with session_scope(engine, read_only=True) as s:
            assert s.connection().connection.dbapi_connection.autocommit
            assert tuple(s.execute(settings).one()) == ("on", "1234ms")
        with session_scope(engine) as s:
            assert not s.connection().connection.dbapi_connection.autocommit
            assert tuple(s.execute(settings).one()) == ("off", "1234ms")
        assert reader_of(engine) is not engine and reader_of(engine).pool.checkedin() == 1
    finally:
        engine.dispose()
    assert reader_of(engine).pool.checkedin() == 0  # the read-only pool is disposed with the engine
