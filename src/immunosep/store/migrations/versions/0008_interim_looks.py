"""The history of group-sequential interim looks (``interim_looks``, ``conduct.interim_looks``).

One row per look: its number, the information fraction observed, the z statistic, the efficacy and futility
boundaries at that information, the decision, the data cut's SHA-256 (unique: one look per data cut), the
whole look as JSON, when (UTC) and who ran it. A new table: no stored row changes.

Revision ID: 0008
Revises: 0007 (the integrator re-chains it)
Create Date: 2026-12-07 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interim_looks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("look", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=20), nullable=False),
        sa.Column("information_rate", sa.Float(), nullable=False),
        sa.Column("planned_information_rate", sa.Float(), nullable=True),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("efficacy_bound", sa.Float(), nullable=False),
        sa.Column("futility_bound", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(length=200), nullable=False),
        sa.Column("data_cut_sha256", sa.String(length=64), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_by_user_id", sa.Integer(), nullable=True),
        sa.Column("run_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name=op.f("fk_interim_looks_trial_id_trials")),
        sa.ForeignKeyConstraint(
            ["run_by_user_id"], ["users.id"], name=op.f("fk_interim_looks_run_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interim_looks")),
        sa.UniqueConstraint("look", name=op.f("uq_interim_looks_look")),
        sa.UniqueConstraint("data_cut_sha256", name=op.f("uq_interim_looks_data_cut_sha256")),
    )


def downgrade() -> None:
    op.drop_table("interim_looks")
