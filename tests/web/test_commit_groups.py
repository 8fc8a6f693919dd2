"""Group commit (web.deps.CommitGroups): queued writes share one transaction, each in its own savepoint.

The unit tests drive a :class:`CommitGroups` directly with members that insert into a probe table; the
HTTP test queues daily CRF writes behind another writer's lock and checks what is stored and audited. Both
run on both backends (the savepoints and the writers' lock differ: SQLite's write lock, PostgreSQL's
advisory lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session

from immunosep.errors import ImmunoSepError
from immunosep.store import audit
from immunosep.store.audit import verify
from immunosep.store.db import TrialSession, make_engine, session_scope
from immunosep.store.models import AuditEntry, DailyCrf
from immunosep.web.deps import _GROUPS, GROUP_MAX, CommitGroups


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """Both backends (tests/conftest.py), where the web package's own ``db_url`` has SQLite only."""
    return seeded_db_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE group_probe (n INTEGER NOT NULL)"))
    yield engine
    engine.dispose()


def insert(n: int, *, fail: bool = False) -> Callable[[Session], int]:
    """A member that inserts ``n`` and then, with ``fail``, raises (its insert must not be stored)."""

    def member(session: Session) -> int:
        session.execute(text("INSERT INTO group_probe (n) VALUES (:n)"), {"n": n})
        if fail:
            raise ImmunoSepError(f"member {n} refused after its write")
        return n

    return member


def stored(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT n FROM group_probe")).scalars())


def run_members(
    groups: CommitGroups, members: list[Callable[[Session], Any]], cancel: set[int] = frozenset()
) -> list[Any]:
    """Queue every member in one turn of the loop (so they form one group); outcome or exception of each."""

    async def scenario() -> list[Any]:
        tasks = [asyncio.ensure_future(groups.run(m)) for m in members]
        await asyncio.sleep(0)  # every member is queued; the group has not run yet
        for i in cancel:
            tasks[i].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(scenario())


def test_members_queued_together_commit_in_one_group(engine: Engine) -> None:
    groups = CommitGroups(engine, None)
    assert run_members(groups, [insert(n) for n in range(5)]) == [0, 1, 2, 3, 4]
    assert stored(engine) == [0, 1, 2, 3, 4]
    assert (groups.stats.groups, groups.stats.members, groups.stats.largest) == (1, 5, 5)


def test_a_failing_member_undoes_only_its_own_writes(engine: Engine) -> None:
    groups = CommitGroups(engine, None)
    out = run_members(groups, [insert(0, fail=True), insert(1), insert(2, fail=True), insert(3)])
    assert isinstance(out[0], ImmunoSepError) and isinstance(out[2], ImmunoSepError)
    assert out[1::2] == [1, 3]
    assert stored(engine) == [1, 3]  # the first member's rollback left the transaction empty for the next


def refuse_before_writing(n: int) -> Callable[[Session], int]:
    """A member that reads, then refuses before any write (as most refused CRF writes do)."""

    def member(session: Session) -> int:
        session.execute(text("SELECT count(*) FROM group_probe")).scalar()
        raise ImmunoSepError(f"member {n} refused before writing")

    return member


@pytest.fixture
def savepoints(engine: Engine) -> Iterator[list[str]]:
    """The SAVEPOINT statements the engine runs."""
    seen: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    yield seen
    event.remove(engine, "before_cursor_execute", watch)


def test_members_run_without_savepoints_and_a_refusal_before_writing_undoes_nothing(
    engine: Engine, savepoints: list[str]
) -> None:
    groups = CommitGroups(engine, None)
    out = run_members(groups, [insert(0), refuse_before_writing(1), insert(2), refuse_before_writing(3)])
    assert out[0::2] == [0, 2] and all(isinstance(o, ImmunoSepError) for o in out[1::2])
    assert stored(engine) == [0, 2]
    assert savepoints == [] and groups.stats.replays == 0  # two round trips fewer per member


def test_a_failure_after_a_write_undoes_all_and_runs_the_members_before_it_again(
    engine: Engine, savepoints: list[str]
) -> None:
    calls: list[int] = []

    def counted(n: int) -> Callable[[Session], int]:
        def member(session: Session) -> int:
            calls.append(n)
            return insert(n)(session)

        return member

    groups = CommitGroups(engine, None)
    out = run_members(groups, [counted(0), counted(1), insert(2, fail=True), counted(3)])
    assert out[0:2] == [0, 1] and isinstance(out[2], ImmunoSepError) and out[3] == 3
    assert stored(engine) == [0, 1, 3]  # each once: the first run of 0 and 1 was rolled back
    assert calls == [0, 1, 0, 1, 3]
    assert groups.stats.replays == 1 and len(savepoints) == 2  # 1 and 3, after 0 ran as the transaction


def bad_read(session: Session) -> None:
    """A statement that fails aborts a PostgreSQL transaction, read or not."""
    session.execute(text("SELECT n FROM no_such_table"))


def leaves_a_bad_row(session: Session) -> int:
    """Leaves a row unflushed that its flush refuses (no such patient): flushed in its own turn, its failure
    is not the next member's."""
    session.add(DailyCrf(patient_id=-1, study_day=1, recorded_by=-1))
    return -1


@pytest.mark.parametrize("failing", [bad_read, leaves_a_bad_row], ids=["failed read", "pending bad row"])
def test_a_member_failing_in_the_database_is_undone_alone_by_starting_again(
    engine: Engine, failing: Callable[[Session], Any]
) -> None:
    groups = CommitGroups(engine, None)
    out = run_members(groups, [insert(0), failing, insert(2)])
    assert out[0] == 0 and out[2] == 2 and isinstance(out[1], Exception)
    assert stored(engine) == [0, 2]
    assert groups.stats.replays == 1


def test_a_member_that_failed_after_an_audit_entry_is_undone_by_starting_again(engine: Engine) -> None:
    """An entry appended (an access logged, say) is kept back to the group's commit: the member that failed
    after it is no refusal before writing, and the entry must not be stored."""

    def logs_then_fails(session: Session) -> None:
        audit.append(session, [("group_probe", "0", None, "access", "*", None, None)])
        raise ImmunoSepError("refused after logging")

    groups = CommitGroups(engine, None)
    out = run_members(groups, [insert(0), logs_then_fails, insert(2)])
    assert out[0] == 0 and out[2] == 2 and isinstance(out[1], ImmunoSepError)
    assert stored(engine) == [0, 2] and groups.stats.replays == 1
    with session_scope(engine) as s:
        assert s.execute(select(AuditEntry).where(AuditEntry.table_name == "group_probe")).first() is None
        assert verify(s).ok


def test_a_cancelled_request_is_skipped_before_it_runs(engine: Engine) -> None:
    groups = CommitGroups(engine, None)
    out = run_members(groups, [insert(0), insert(1), insert(2)], cancel={1})
    assert isinstance(out[1], asyncio.CancelledError)
    assert stored(engine) == [0, 2]


def test_a_failed_commit_fails_every_member_and_stores_nothing(engine: Engine) -> None:
    def refuse(_session: Session) -> None:
        raise RuntimeError("disk full")

    groups = CommitGroups(engine, None)
    event.listen(TrialSession, "before_commit", refuse)
    try:
        out = run_members(groups, [insert(0), insert(1), insert(2)])
    finally:
        event.remove(TrialSession, "before_commit", refuse)
    assert [type(o) for o in out] == [RuntimeError] * 3
    assert stored(engine) == []
    assert groups.stats.failed_commits == 3
    assert run_members(groups, [insert(7)]) == [7]  # the next group starts afresh
    assert stored(engine) == [7]


def test_a_group_commits_at_most_group_max_members(engine: Engine) -> None:
    groups = CommitGroups(engine, None)
    n = GROUP_MAX + 3
    assert run_members(groups, [insert(i) for i in range(n)]) == list(range(n))
    assert (groups.stats.groups, groups.stats.largest) == (2, GROUP_MAX)


def test_crf_writes_queued_behind_another_writer_commit_together_and_audit(
    app, api_enroll, password, another_writer
) -> None:  # type: ignore[no-untyped-def]
    """Daily CRF writes that arrive while another process's writer holds the lock run as one group when it
    lets go: every valid one is stored and audited, the refused one is not, and the trail verifies."""
    pseudonym = api_enroll()

    async def scenario() -> tuple[list[int], Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            r = await c.post("/api/login", json={"username": "inv1", "password": password})
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            assert (await c.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 15})).status_code == 200
            with another_writer(app.state.engine):
                writes = [
                    asyncio.create_task(c.post(f"/api/patients/{pseudonym}/crf/{day}", json={"gcs": 12}))
                    for day in (2, 3, 4)
                ]
                # a correction without its reason, queued third: refused under the lock, in its savepoint
                writes.insert(
                    2, asyncio.create_task(c.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 9}))
                )
                await asyncio.sleep(0.3)
                assert not any(w.done() for w in writes)  # all wait for the other writer
            codes = [(await asyncio.wait_for(w, 10)).status_code for w in writes]
            return codes, _GROUPS.get()[app].stats

    audit_inserts: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO audit_log"):
            audit_inserts.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", watch)
    try:
        codes, stats = asyncio.run(scenario())
    finally:
        event.remove(app.state.engine, "before_cursor_execute", watch)
    assert len(audit_inserts) == 3  # the login, day 1, then the group's three days with one statement
    assert codes == [200, 200, 422, 200]
    assert stats.largest == 4 and stats.failed_commits == 0
    with session_scope(app.state.engine) as s:
        days = dict(s.execute(select(DailyCrf.study_day, DailyCrf.gcs)).all())
        assert days == {1: 15, 2: 12, 3: 12, 4: 12}  # day 1 keeps its value: the correction was refused
        assert verify(s).ok


def test_the_server_logs_how_its_groups_went_at_shutdown(app, api_enroll, password, caplog) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    with caplog.at_level(logging.INFO, logger="immunosep.web.app"):
        with TestClient(app, base_url="https://testserver") as c:
            r = c.post("/api/login", json={"username": "inv1", "password": password})
            csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
            for day in (1, 2):
                assert c.post(
                    f"/api/patients/{pseudonym}/crf/{day}", json={"gcs": 14}, headers=csrf
                ).is_success
        assert "commit groups: 2 writes in 2 groups (1.00 a group, largest 1); 0 failed" in caplog.text
