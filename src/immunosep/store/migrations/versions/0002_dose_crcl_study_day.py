"""dose_log.crcl_study_day: the study day of the CRF creatinine a dose's clearance came from.

The clearance a dose uses is the last known one (carried forward from an earlier day when the day has
no creatinine); the day it came from is stored with each dose for the audit. Doses logged before this
revision used only the same day's clearance, so their day is filled in as the dose's own study day where
a clearance was stored (NULL where none was).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 20:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dose_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crcl_study_day", sa.Integer(), nullable=True))
    op.execute("UPDATE dose_log SET crcl_study_day = study_day WHERE crcl_ml_min IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("dose_log", schema=None) as batch_op:
        batch_op.drop_column("crcl_study_day")
