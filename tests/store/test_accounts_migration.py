"""Revision 0004 normalises the usernames of existing accounts, and refuses to merge two into one."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from immunosep.store.db import alembic_config, make_engine


def _down_to_0002_with(url: str, *names: str) -> None:
    command.downgrade(alembic_config(url), "0002")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for name in names:
                conn.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, active, created_at) "
                        "VALUES (:n, '!', 'lab', true, CURRENT_TIMESTAMP)"
                    ),
                    {"n": name},
                )
    finally:
        engine.dispose()


def test_0004_normalises_existing_usernames(db_url) -> None:
    _down_to_0002_with(db_url, "  Dr.Nikolaou ", "\uff4c\uff41\uff42\uff12")  # spaces and case; full-width
    command.upgrade(alembic_config(db_url), "head")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT username FROM users")).scalars())
    finally:
        engine.dispose()
    assert {"dr.nikolaou", "lab2", "inv1", "admin"} <= names


@pytest.mark.parametrize(
    "names", [("LAB",), ("Zoe", "zoe"), ("lab\u200b2",)], ids=["vs-lab", "pair", "zero-width"]
)
def test_0004_stops_on_names_that_would_merge_or_hide_characters(db_url, names) -> None:
    _down_to_0002_with(db_url, *names)
    with pytest.raises(RuntimeError, match="rename"):
        command.upgrade(alembic_config(db_url), "head")
