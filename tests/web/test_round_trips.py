"""Statements per request on the hottest routes (daily CRF write, dashboard), on both backends.

Every statement is a round trip to the database, and on PostgreSQL an inline handler's event loop waits
for each one (a writer with the audit-chain lock held). The lists fix today's statements, so that an added
query is a visible, deliberate change. Not counted: PostgreSQL's BEGIN and COMMIT (a write's; reads run
each statement on its own, store.db.reader_of) and the ping of a connection idle in the pool.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event

from immunosep.store.db import reader_of


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """Both backends (tests/conftest.py), where the web package's own ``db_url`` has SQLite only."""
    return seeded_db_url


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The statements run on ``engine`` meanwhile, each cut to its verb and first table."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        words = statement.split()
        table = next(
            (w for w in words[1:] if w[0].isalpha() and "." in w), words[1] if len(words) > 1 else ""
        )
        seen.append(
            f"{words[0]} {table.split('.')[0]}" if words[0] in {"SELECT", "UPDATE"} else " ".join(words[:3])
        )

    engines = {engine, reader_of(engine)}  # PostgreSQL reads on a pool of their own
    for e in engines:
        event.listen(e, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", record)


ACTOR = ["SELECT users"]
#: The patient, trial and day in one statement, with what the hooks read next under the writers' lock
#: (conduct.access.writable_patient): whether a valid signature may need invalidating (conduct.casebook;
#: 21 CFR 11.70), the audit chain's last entry and the patient's key. Then the new row.
WRITE = ["SELECT patients", "INSERT INTO daily_crf"]
AUDIT = ["INSERT INTO audit_log"]


def test_a_daily_crf_write_and_a_dashboard_take_a_fixed_handful_of_statements(app, login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    url = f"/api/patients/{pseudonym}/crf"
    assert inv.post(f"{url}/1", json={"gcs": 12}).status_code == 200  # day 1; day 2 below is new
    sqlite = app.state.engine.dialect.name == "sqlite"
    # SQLite reads the user on a read-only connection, the statement on its own (store.db.single_reads),
    # then begins the write (the lock). PostgreSQL reads the user in the request's transaction, then tries
    # the advisory lock. SQLite's read-only sessions begin a snapshot on connections that cannot write.
    actor = ACTOR
    lock = ["BEGIN IMMEDIATE"] if sqlite else ["SELECT pg_try_advisory_xact_lock(%(k)s)"]
    # A correction loads the day's row as an object (its update is audited field by field by the flush
    # hook); a new day is inserted from the values (conduct.crf.record_day), so it reads no row.
    fix = ["SELECT patients", "SELECT daily_crf", "UPDATE daily_crf"]
    read = ["BEGIN"] if sqlite else []
    for call, expected in [
        (lambda: inv.post(f"{url}/2", json={"gcs": 12}), [*actor, *lock, *WRITE, *AUDIT]),
        (
            lambda: inv.post(f"{url}/2", json={"gcs": 11, "reason": "typo"}),
            [*actor, *lock, *fix, *AUDIT],
        ),
        (
            lambda: inv.get("/dashboard"),
            [*read, *ACTOR, "SELECT patients"],
        ),  # protocol hash read with the user
    ]:
        with statements(app.state.engine) as seen:
            assert call().status_code == 200
        assert seen == expected
