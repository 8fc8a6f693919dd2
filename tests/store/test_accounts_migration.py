"""Revision 0004 normalises the usernames of existing accounts, and refuses to merge two into one."""

from __future__ import annotations

import json

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


def test_0004_renames_are_in_the_audit_chain_so_verify_still_holds(db_url) -> None:
    """An account renamed by the audited services before 0004 ("  INV1 "): the upgrade normalises it and
    records the change in the chain, so ``audit verify`` replays the trail to the live row without a finding."""
    from sqlalchemy.orm import Session

    from immunosep.store import audit
    from immunosep.store.db import session_scope

    command.downgrade(alembic_config(db_url), "0003")
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            uid, old = conn.execute(text("SELECT id, username FROM users WHERE username = 'inv1'")).one()
            conn.execute(text("UPDATE users SET username = '  INV1 ' WHERE id = :i"), {"i": uid})
            session = Session(bind=conn)
            audit.set_context(session, None, "renamed before revision 0004")
            change = ("users", str(uid), None, "update", "username", json.dumps(old), json.dumps("  INV1 "))
            audit.append(session, [change])
    finally:
        engine.dispose()
    command.upgrade(alembic_config(db_url), "head")
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            assert s.execute(text("SELECT username FROM users WHERE id = :i"), {"i": uid}).scalar() == "inv1"
            result = audit.verify(s)
        assert result.ok, [str(f) for f in result.findings]
    finally:
        engine.dispose()
