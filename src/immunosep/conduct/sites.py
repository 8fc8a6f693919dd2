"""Sites ``S01..SNN`` (created with the trial by :mod:`immunosep.conduct.trial`): codes, names, countries, counts."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, site_by_code
from immunosep.conduct.permissions import require
from immunosep.protocol.countries import alpha3_code
from immunosep.store.models import Patient, Site


@dataclass(frozen=True)
class SiteInfo:
    id: int
    code: str
    name: str
    active: bool
    patients: int
    country: str = ""  # ISO 3166-1 alpha-3 ("" on a site migrated from before countries were kept)


def list_sites(session: Session, actor: Actor) -> list[SiteInfo]:
    """Sites with their number of screened patients (admins, data managers, monitors, DSMB)."""
    require(actor, "list_sites")
    counts = dict(session.execute(select(Patient.site_id, func.count()).group_by(Patient.site_id)).all())
    rows = session.execute(select(Site).order_by(Site.code)).scalars().all()
    return [SiteInfo(s.id, s.code, s.name, s.active, int(counts.get(s.id, 0)), s.country) for s in rows]


def rename_site(session: Session, actor: Actor, code: str, name: str) -> SiteInfo:
    """Give a site its display name (admin)."""
    require(actor, "edit_sites")
    begin(session, actor, "site name")
    site = site_by_code(session, code)
    site.name = name
    session.flush()
    return SiteInfo(site.id, site.code, site.name, site.active, 0, site.country)


def set_site_country(session: Session, actor: Actor, code: str, country: str) -> SiteInfo:
    """Set the country a site is in, an ISO 3166-1 alpha-3 code such as GRC (admin); SDTM DM.COUNTRY."""
    require(actor, "edit_sites")
    begin(session, actor, "site country")
    value = alpha3_code(country)  # checked before anything changes
    site = site_by_code(session, code)
    site.country = value
    session.flush()
    return SiteInfo(site.id, site.code, site.name, site.active, 0, site.country)
