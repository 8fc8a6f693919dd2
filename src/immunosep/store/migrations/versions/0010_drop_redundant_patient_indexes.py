"""Drop four indexes on ``patient_id`` that a unique constraint already leads with.

``daily_crf``, ``biomarker_draws``, ``dose_log`` and ``eligibility_answers`` each have a unique constraint
whose first column is ``patient_id``; its index serves every lookup by patient (the foreign key's cascade
included), so the separate single-column index was one more B-tree to update at every insert and nothing
read it that the constraint's could not. Downgrade recreates them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 17:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_TABLES = ("daily_crf", "biomarker_draws", "dose_log", "eligibility_answers")


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_patient_id", table_name=table)


def downgrade() -> None:
    for table in _TABLES:
        op.create_index(f"ix_{table}_patient_id", table, ["patient_id"])
