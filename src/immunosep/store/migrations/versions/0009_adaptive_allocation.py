"""Response-adaptive allocation: slots without a pre-set arm, and the sealed record of each adaptive draw.

``randomization_slots`` gains ``stratum`` (the stratum the slot was allocated in), and the sealed ``uniform`` (drawn at ``db init``
from the trial's keyed stream; the slot's ``arm`` stays empty until the allocation draws it), ``probability`` (the allocation probability to treatment at the data cut),
``data_cut`` (the outcomes known, canonical JSON) and ``data_cut_sha256``. A block trial's slots keep
their values and leave the new columns NULL.

Downgrade keeps every block slot; it refuses a database whose slots were made for an adaptive design
(a slot without an arm, or with a uniform), since the older schema cannot hold their draws.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from immunosep.errors import ImmunoSepError

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_NEW = ("data_cut_sha256", "data_cut", "probability", "uniform", "stratum")


def upgrade() -> None:
    # plain ALTER TABLE ... ADD COLUMN on both backends: no table rebuild on SQLite (a rebuild would drop
    # randomization_slots, which withdrawals reference)
    op.add_column("randomization_slots", sa.Column("stratum", sa.String(length=32), nullable=True))
    op.add_column("randomization_slots", sa.Column("uniform", sa.Float(), nullable=True))
    op.add_column("randomization_slots", sa.Column("probability", sa.Float(), nullable=True))
    op.add_column("randomization_slots", sa.Column("data_cut", sa.Text(), nullable=True))
    op.add_column("randomization_slots", sa.Column("data_cut_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    adaptive = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM randomization_slots WHERE uniform IS NOT NULL OR arm = ''"))
        .scalar_one()
    )
    if adaptive:
        raise ImmunoSepError(
            f"cannot downgrade below revision 0009: {adaptive} randomization slots belong to a "
            "response-adaptive design, which the older schema cannot hold (export the database first)"
        )
    for column in _NEW:  # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): no rebuild either
        op.drop_column("randomization_slots", column)
