"""sites.country and the adverse event's seriousness criteria, action taken, outcome and end day.

``sites.country`` (ISO 3166-1 alpha-3) is what SDTM DM.COUNTRY reports. Existing sites get the country of
the stored protocol when it names exactly one country (its name or code looked up in ISO 3166-1), or the
one its ``sites_per_country`` places them in; else "" for an administrator to set: with several
countries and no such list nothing says where a site is. The change is recorded in the audit chain, like
every change of an audited row.

``adverse_events`` gains the six ICH E2A seriousness criteria, the action taken with the study treatment
(CDISC ACN), the outcome (CDISC OUT) and the end day, all NULL on existing events (not collected then).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 23:30:00.000000
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pycountry
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CRITERIA = (
    "crit_death",
    "crit_life_threatening",
    "crit_hospitalization",
    "crit_disability",
    "crit_congenital_anomaly",
    "crit_medically_important",
)


def _alpha3(name: str) -> str:
    try:
        return str(pycountry.countries.lookup(str(name).strip()).alpha_3)
    except LookupError:
        return ""


def _site_countries(protocol_text: str | None, n_sites: int) -> list[str]:
    """Alpha-3 country of sites S01.. in code order, from the stored protocol ("" where it does not say).

    One country: every site is there. ``sites_per_country`` (a protocol written for this revision): the
    sites numbered country by country. Otherwise (several countries, none, or one ISO 3166-1 does not
    know) every site is left "". The rule is frozen here, not imported from the protocol schema.
    """
    try:
        trial = tomllib.loads(protocol_text or "").get("trial", {})
    except tomllib.TOMLDecodeError:
        return [""] * n_sites
    countries = trial.get("countries", [])
    per_country = trial.get("sites_per_country", [])
    placed: list[str] = []
    if isinstance(countries, list) and len(countries) == 1:
        placed = [_alpha3(countries[0])] * n_sites
    elif isinstance(countries, list) and isinstance(per_country, list) and len(per_country) == len(countries):
        placed = [_alpha3(c) for c, n in zip(countries, per_country, strict=True) for _ in range(int(n))]
    return (placed + [""] * n_sites)[:n_sites]


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("country", sa.String(length=3), nullable=False, server_default=""))
    with op.batch_alter_table("adverse_events", schema=None) as batch_op:
        for name in CRITERIA:
            batch_op.add_column(sa.Column(name, sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("action", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("end_day", sa.Integer(), nullable=True))

    conn = op.get_bind()
    changes = []
    for trial_id, text in conn.execute(sa.text("SELECT id, protocol_text FROM trials")).all():
        ids = conn.execute(sa.text("SELECT id FROM sites WHERE trial_id = :t ORDER BY code"), {"t": trial_id})
        site_ids = [int(i) for (i,) in ids.all()]
        for site_id, country in zip(site_ids, _site_countries(text, len(site_ids)), strict=True):
            if not country:
                continue
            conn.execute(sa.text("UPDATE sites SET country = :c WHERE id = :i"), {"c": country, "i": site_id})
            changes.append(
                ("sites", str(site_id), None, "update", "country", json.dumps(""), json.dumps(country))
            )
    if changes:
        from sqlalchemy.orm import Session

        from immunosep.store import audit

        session = Session(bind=conn)
        audit.set_context(session, None, "revision 0005: site country from the protocol's one country")
        audit.append(session, changes)


def _record_dropped_values(conn: sa.Connection) -> None:
    """Append to the audit chain that every value of the columns about to be dropped becomes NULL: the
    trail's replay must end where the rows end (``audit verify`` compares them), as for any other change."""
    typed: list[sa.ColumnClause[Any]] = [sa.column(name, sa.Boolean()) for name in CRITERIA] + [
        sa.column("action", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("end_day", sa.Integer()),
    ]
    ae = sa.table(
        "adverse_events", sa.column("id", sa.Integer()), sa.column("patient_id", sa.Integer()), *typed
    )
    from immunosep.store import audit

    changes = []
    for row in conn.execute(sa.select(ae).order_by(ae.c.id)).mappings():
        for col in typed:
            if row[col.name] is not None:
                old = audit.trail_text(row[col.name])
                changes.append(
                    ("adverse_events", str(row["id"]), row["patient_id"], "update", col.name, old, None)
                )
    if changes:
        from sqlalchemy.orm import Session

        session = Session(bind=conn)
        audit.set_context(
            session,
            None,
            "revision 0005 downgraded: site country, AE criteria, action, outcome, end day dropped",
        )
        audit.append(session, changes)


def downgrade() -> None:
    _record_dropped_values(op.get_bind())
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch copy of ``sites`` would have to drop a table
    # that other tables' foreign keys point to, which SQLite refuses while it enforces them.
    for name in ("end_day", "outcome", "action", *reversed(CRITERIA)):
        op.drop_column("adverse_events", name)
    op.drop_column("sites", "country")
