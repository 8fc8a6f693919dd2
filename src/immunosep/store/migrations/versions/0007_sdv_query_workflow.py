"""Source data verification marks, and the query workflow of an EDC (types, edit checks, re-opening).

``sdv_marks`` holds one row per field (or whole record, ``field=""``) a monitor verified against source,
with the digest of the values verified. ``queries`` gains ``type`` (manual or automatic), ``check_id``
(the edit check of ``conduct.edit_checks`` that opened it), ``study_day`` (a query on a record not yet
entered, such as a missed visit), ``close_reason`` and the re-opening (``reopened_by``, ``reopened_at``,
``reopen_reason``). Existing queries become manual queries without a check; no stored value changes, so
the audit trail needs no entry (a new column is compared once the trail records it).

Revision ID: 0007
Revises: 0006 (the integrator re-chains it after 0005 and 0006)
Create Date: 2026-12-06 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sdv_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("value_digest", sa.String(length=64), nullable=False),
        sa.Column("verified_by", sa.Integer(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invalidated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalidated_reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_sdv_marks_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["verified_by"], ["users.id"], name=op.f("fk_sdv_marks_verified_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sdv_marks")),
        sa.UniqueConstraint("table_name", "row_id", "field", name=op.f("uq_sdv_marks_table_name")),
    )
    with op.batch_alter_table("sdv_marks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sdv_marks_patient_id"), ["patient_id"], unique=False)
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("type", sa.String(length=10), nullable=False, server_default="manual"))
        batch_op.add_column(sa.Column("check_id", sa.String(length=20), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("study_day", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("close_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reopened_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reopen_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_queries_check_id"), ["check_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("queries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queries_check_id"))
        for column in (
            "reopen_reason",
            "reopened_at",
            "reopened_by",
            "close_reason",
            "study_day",
            "check_id",
            "type",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("sdv_marks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sdv_marks_patient_id"))
    op.drop_table("sdv_marks")
