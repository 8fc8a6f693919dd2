"""PostgreSQL connections: the lazily described psycopg cursor, the session settings (JIT off), connect_args."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url, select, text
from sqlalchemy.orm import Session

from immunosep.store.db import make_engine, reader_of
from immunosep.store.models import Patient, Site
from immunosep.store.pg_cursor import DescribedOnDemandCursor, Description

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("seeded_db_url", ["postgres"], indirect=True),  # PostgreSQL's cursor only
]

QUERIES = [
    "SELECT 1 AS a, 'x'::text AS b, 2.5::numeric(6,2) AS c, now() AS d, ARRAY[1,2] AS e, NULL AS f, 'y'::varchar(7)",
    "SELECT",  # rows of no columns: an empty description, not None
    "SELECT 1 WHERE false",  # no rows, still described
    "CREATE TEMPORARY TABLE IF NOT EXISTS t (x int)",  # no result set: None
    "INSERT INTO t VALUES (1), (2)",
    "INSERT INTO t VALUES (3) RETURNING x, x * 2 AS y",
    "UPDATE t SET x = x + 1",
]


def _fields(description):  # type: ignore[no-untyped-def]
    if description is None:
        return None
    return [
        (c.name, c.type_code, c.display_size, c.internal_size, c.precision, c.scale, tuple(c))
        for c in description
    ]


@pytest.fixture
def seeded_pg_url(seeded_db_url: str) -> str:
    return seeded_db_url


@pytest.fixture
def raw(seeded_pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(
        make_url(seeded_pg_url).set(drivername="postgresql").render_as_string(False)
    ) as conn:
        yield conn


def test_the_description_is_psycopgs_for_every_kind_of_result(raw):
    plain, lazy = raw.cursor(), DescribedOnDemandCursor(raw)
    for query in QUERIES:
        expected = plain.execute(query).description
        got = lazy.execute(query).description
        assert _fields(got) == _fields(expected), query
        if expected is None:
            assert got is None
            continue
        assert isinstance(got, Description)
        assert len(got) == len(expected)
        assert bool(got) == bool(expected)
        assert _fields(got[-2:]) == _fields(expected[-2:])  # slices, as SQLAlchemy takes them
        assert repr(got) == repr(expected)


def test_a_description_kept_describes_its_own_result_after_the_cursor_ran_on(raw):
    """SQLAlchemy may keep a description while the cursor runs the next statement: it must not change."""
    cur = DescribedOnDemandCursor(raw)
    first = cur.execute("SELECT 1 AS first_one, 'a'::text AS second_one").description
    cur.execute("SELECT 2::bigint AS other")
    assert [(c.name, c.type_code) for c in first] == [("first_one", 23), ("second_one", 25)]
    assert [(c.name, c.type_code) for c in cur.description] == [("other", 20)]


def test_the_trial_engines_use_it_and_orm_and_core_results_read_as_before(seeded_pg_url):
    engine = make_engine(seeded_pg_url)
    try:
        with engine.connect() as conn:
            assert type(conn.connection.driver_connection.cursor()) is DescribedOnDemandCursor
            for _ in range(3):  # the first run builds SQLAlchemy's cached layout from the description
                result = conn.execute(text("SELECT 7 AS seven, 'x' AS ex"))
                assert list(result.keys()) == ["seven", "ex"]
                assert result.one()._mapping == {"seven": 7, "ex": "x"}
            with Session(bind=conn) as s:
                for _ in range(3):
                    assert s.execute(select(Patient)).scalars().all() == []
                    sites = s.execute(select(Site).order_by(Site.code)).scalars().all()
                    assert [site.code for site in sites][:2] == ["S01", "S02"]
                    assert s.execute(select(Site.code, Site.active).order_by(Site.code)).first() == (
                        "S01",
                        True,
                    )
    finally:
        engine.dispose()


def test_a_cursor_factory_chosen_by_the_user_is_kept(seeded_pg_url):
    engine = make_engine(seeded_pg_url, connect_args={"cursor_factory": psycopg.ClientCursor})
    try:
        with engine.connect() as conn:
            assert type(conn.connection.driver_connection.cursor()) is psycopg.ClientCursor
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_connect_args_reach_both_pools_and_the_readers_stay_read_only(seeded_pg_url):
    engine = make_engine(seeded_pg_url, connect_args={"options": "-c statement_timeout=12345"})
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
        with reader_of(engine).connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "12345ms"
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
    finally:
        engine.dispose()


def test_the_jit_is_off_on_both_pools_unless_the_url_asks_for_it(seeded_pg_url):
    """The JIT compiled the site dashboard's statement at every request (190 ms) once the tables were analyzed."""
    engine = make_engine(seeded_pg_url)
    try:
        for e in (engine, reader_of(engine)):
            with e.connect() as conn:
                assert conn.execute(text("SHOW jit")).scalar() == "off"
    finally:
        engine.dispose()
    url = make_url(seeded_pg_url).update_query_dict({"options": "-c jit=on"}).render_as_string(False)
    engine = make_engine(url)
    try:
        for e in (engine, reader_of(engine)):
            with e.connect() as conn:
                assert conn.execute(text("SHOW jit")).scalar() == "on"
        with reader_of(engine).connect() as conn:
            assert conn.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
    finally:
        engine.dispose()
