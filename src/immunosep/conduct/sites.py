"""Sites ``S01..SNN`` (created with the trial by :mod:`immunosep.conduct.trial`): their codes, names and counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin
from immunosep.conduct.permissions import require
from immunosep.store.models import Site


@dataclass(frozen=True)
class SiteInfo:
    id: int
    code: str
    name: str
    active: bool
    patients: int


def list_sites(session: Session, actor: Actor) -> list[SiteInfo]:
    """Sites with their number of screened patients (admins, data managers, monitors, DSMB)."""
    require(actor, "list_sites")
    from immunosep.store.models import Patient

    counts = dict(session.execute(select(Patient.site_id, func.count()).group_by(Patient.site_id)).all())
    rows = session.execute(select(Site).order_by(Site.code)).scalars().all()
    return [SiteInfo(s.id, s.code, s.name, s.active, int(counts.get(s.id, 0))) for s in rows]


def rename_site(session: Session, actor: Actor, code: str, name: str) -> SiteInfo:
    """Give a site its display name (admin)."""
    require(actor, "edit_sites")
    begin(session, actor, "site name")
    from immunosep.conduct.access import site_by_code

    site = site_by_code(session, code)
    site.name = name
    session.flush()
    return SiteInfo(site.id, site.code, site.name, site.active, 0)
