"""accounts: server-side sessions, four-eyes approvals, normalised usernames.

``user_sessions`` makes a session revocable (logout, deactivation and a password change end it on the
server; a replayed cookie then gets 401). ``account_approvals`` holds what waits for a second
administrator: an account of an unblinded role, or a new password for one.

Existing usernames are normalised the way ``conduct.users.normalize_username`` does it (NFKC, case fold,
whitespace trimmed), so that the unique constraint also refuses look-alikes and the login form, which
normalises what is typed, still finds every account. Two existing accounts that become the same name, or
a name holding an invisible (zero-width, format) or control character, stop the upgrade with a message
naming them: an administrator renames one (``UPDATE users SET username = ...``) and upgrades again. The
rule is frozen here, not imported: a migration must not change when the service does.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 21:30:00.000000
"""

from __future__ import annotations

import json
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _normalised(name: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
        raise RuntimeError(
            f"username {name!r} holds an invisible or control character; rename it, then upgrade again"
        )
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_user_sessions_token_sha256")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
    op.create_table(
        "account_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_account_approvals_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_account_approvals_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_account_approvals_decided_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_approvals")),
    )
    with op.batch_alter_table("account_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_approvals_user_id"), ["user_id"], unique=False)

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all()
    seen: dict[str, str] = {}
    renames: list[tuple[int, str]] = []
    for uid, name in rows:
        new = _normalised(name)
        if new in seen:
            raise RuntimeError(
                f"usernames {seen[new]!r} and {name!r} are the same name once normalised; rename one, "
                "then upgrade again"
            )
        seen[new] = name
        if new != name:
            renames.append((uid, new))
    for uid, new in renames:
        conn.execute(sa.text("UPDATE users SET username = :n WHERE id = :i"), {"n": new, "i": uid})
    if renames:
        # Every change of an audited row is in the chain (``audit verify`` replays it against live rows).
        from sqlalchemy.orm import Session

        from immunosep.store import audit

        old_names: dict[int, str] = {int(uid): str(name) for uid, name in rows}
        session = Session(bind=conn)
        audit.set_context(session, None, "revision 0004: usernames normalised (NFKC, case fold, trimmed)")
        audit.append(
            session,
            [
                ("users", str(uid), None, "update", "username", json.dumps(old_names[uid]), json.dumps(new))
                for uid, new in renames
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("account_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_approvals_user_id"))
    op.drop_table("account_approvals")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
    op.drop_table("user_sessions")
