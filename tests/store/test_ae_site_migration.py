"""Revision 0005 on a database with rows: site countries from the stored protocol, AE columns left NULL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text

from immunosep.conduct import adverse_events
from immunosep.store.db import alembic_config, make_engine, session_scope

BUNDLED = None  # keep the stored protocol as seeded (it has trial.sites_per_country)


def _rewrite_countries(url: str, line: str) -> None:
    """Replace the stored protocol's countries (and drop sites_per_country), as a protocol before 0005."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            old = conn.execute(text("SELECT protocol_text FROM trials")).scalar_one()
            kept = [x for x in old.splitlines() if not x.startswith(("countries =", "sites_per_country ="))]
            at = kept.index("[trial]") + 1
            conn.execute(
                text("UPDATE trials SET protocol_text = :t"), {"t": "\n".join([*kept[:at], line, *kept[at:]])}
            )
    finally:
        engine.dispose()


def _sites(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text("SELECT code, country FROM sites ORDER BY code"))]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("countries", "expected"),
    [
        (BUNDLED, "GRC"),  # placed by sites_per_country (S01..S20 in Greece)
        ('countries = ["Italy"]', "ITA"),  # one country, by name
        ('countries = ["GRC"]', "GRC"),  # one country, by code
        ('countries = ["Greece", "Germany"]', ""),  # several and no placement: left for the administrator
        ("countries = []", ""),
    ],
)
def test_0005_gives_existing_sites_the_protocols_country_and_keeps_existing_events(
    trial, enroll, countries, expected
):
    p = enroll()
    with session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(
            s,
            trial.actors["inv1"],
            p,
            onset_day=2,
            term="Anaemia",
            serious=True,
            criteria=("hospitalization",),
            relatedness="probably related",
            expected=False,
            action="DRUG WITHDRAWN",
            outcome="RECOVERING/RESOLVING",
        )
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0004")
    if countries is not BUNDLED:
        _rewrite_countries(trial.url, countries)
    command.upgrade(alembic_config(trial.url), "head")
    assert _sites(trial.url) == [("S01", expected), ("S02", expected), ("S03", expected)]
    with session_scope(trial.engine) as s:
        (ae,) = adverse_events.adverse_events(s, trial.actors["inv1"], p)
    # the event as recorded before the revision: what 0004 stored is kept, what it did not collect is None
    assert (ae.pt_name, ae.serious, ae.relatedness, ae.susar) == ("Anaemia", True, "probably related", True)
    assert (ae.criteria, ae.action, ae.outcome, ae.end_day) == (None, None, None, None)


def test_0005_records_the_site_countries_in_the_audit_chain(trial):
    """``audit verify`` replays the trail to the live rows: the countries set by the upgrade are in it."""
    from immunosep.store import audit

    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0004")
    command.upgrade(alembic_config(trial.url), "head")
    with session_scope(trial.engine) as s:
        result = audit.verify(s)
        reasons = s.execute(text("SELECT reason FROM audit_log WHERE field = 'country'")).scalars().all()
    assert result.ok, [str(f) for f in result.findings]
    assert len(reasons) == 3 and all("revision 0005" in r for r in reasons)
