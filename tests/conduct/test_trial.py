"""Creating the trial: the protocol stored with its hash, the sites and their sealed lists, once per database."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from immunosep.conduct.trial import init_trial
from immunosep.errors import ImmunoSepError
from immunosep.protocol.loader import bundled_protocol_path
from immunosep.store.db import make_engine, session_scope, upgrade_db
from immunosep.store.models import RandomizationSlot, Site, Trial


def test_seeded_trial_stores_protocol_text_hash_sites_and_lists(trial):
    with session_scope(trial.engine) as s:
        t = s.execute(select(Trial)).scalar_one()
        assert t.protocol_sha256 == hashlib.sha256(t.protocol_text.encode()).hexdigest()
        assert t.protocol_text == bundled_protocol_path().read_text(encoding="utf-8")
        assert [x.code for x in s.execute(select(Site).order_by(Site.code)).scalars()] == [
            "S01",
            "S02",
            "S03",
        ]
        per_site = dict(
            s.execute(
                select(RandomizationSlot.site_id, func.count()).group_by(RandomizationSlot.site_id)
            ).all()
        )
        assert len(per_site) == 3 and min(per_site.values()) >= 210


def test_init_refuses_a_database_that_holds_a_trial_and_upgrade_is_idempotent(db_url):
    upgrade_db(db_url)
    with pytest.raises(ImmunoSepError, match="already holds a trial"):
        init_trial(db_url, sites=2)


def test_init_stores_the_resolved_protocol_of_a_file_that_extends_another(empty_db_url):
    """The group-sequential example extends the bundled protocol: the trial stores it resolved (no base
    needed to read it back) and the hash is of that text, so the stored trial stays verifiable."""
    from immunosep.conduct.trial import protocol_of
    from immunosep.protocol import load_protocol

    example = bundled_protocol_path().parent / "examples" / "immunosep_gsd.toml"
    init_trial(empty_db_url, example, sites=1, slots_per_site=2)
    engine = make_engine(empty_db_url)
    try:
        with session_scope(engine) as s:
            t = s.execute(select(Trial)).scalar_one()
            assert "extends" not in t.protocol_text
            assert t.protocol_sha256 == hashlib.sha256(t.protocol_text.encode()).hexdigest()
            assert protocol_of(s) == load_protocol(example)
    finally:
        engine.dispose()
