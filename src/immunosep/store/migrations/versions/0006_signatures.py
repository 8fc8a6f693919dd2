"""electronic signatures: the ``signatures`` table and the printed name of each account.

21 CFR Part 11 §11.50 asks every signature to show the signer's printed name: ``users.full_name``
(empty for the accounts made before; such an account cannot sign until its name is set). A signature
row records who signed, when, what it means, how (which components) and the SHA-256 of the records it
covers (``conduct.casebook``).

(Written as revision 0006 over 0004; the integrator chains it after 0005.)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE in place on both backends: a batch copy of ``users`` would be refused on SQLite, whose
    # foreign keys (on) from every table that names a user forbid dropping the old table.
    op.add_column("users", sa.Column("full_name", sa.String(length=200), nullable=False, server_default=""))
    conn = op.get_bind()
    uids = [int(uid) for (uid,) in conn.execute(sa.text("SELECT id FROM users ORDER BY id"))]
    if uids:
        # Every change of an audited row is in the chain (``audit verify`` replays it against live rows):
        # each existing account now has an empty full name (a downgrade dropped any it had).
        from sqlalchemy.orm import Session

        from immunosep.store import audit

        session = Session(bind=conn)
        audit.set_context(session, None, "revision 0006: accounts get a full name, empty until set")
        audit.append(session, [("users", str(uid), None, "update", "full_name", None, '""') for uid in uids])
    op.create_table(
        "signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("printed_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("meaning", sa.String(length=80), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("components", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("scheme", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("invalidated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidated_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_signatures_trial_id_trials")),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_signatures_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_signatures_user_id_users")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["user_sessions.id"],
            name=op.f("fk_signatures_session_id_user_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signatures")),
    )
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signatures_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signatures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signatures_patient_id"))
    op.drop_table("signatures")
    op.execute("ALTER TABLE users DROP COLUMN full_name")  # SQLite >= 3.35 drops a column in place
