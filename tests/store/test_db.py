"""The trial database: migrations, SQLite settings, transactions that are all or nothing (seeding: conduct/test_trial.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from immunosep.conduct import screening
from immunosep.errors import ImmunoSepError
from immunosep.store.db import make_engine, session_scope, upgrade_db
from immunosep.store.models import Patient, ScreeningEntry, Site


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
    engine.dispose()


def test_a_throwaway_database_is_not_synced_at_each_commit_and_a_trial_database_is(tmp_path):
    """``durable=False`` (the demo's virtual trial) sets ``synchronous=NORMAL``; the default stays FULL."""
    for durable, level in ((True, 2), (False, 1)):
        engine = make_engine(f"sqlite:///{tmp_path / f'{durable}.db'}", durable=durable)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == level
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        engine.dispose()


def test_unsupported_url_is_a_user_error():
    with pytest.raises(ImmunoSepError, match="unsupported database URL"):
        make_engine("mysql://x")


class Crash(RuntimeError):
    pass


def test_crash_in_the_middle_of_a_transaction_keeps_committed_data_and_drops_the_half_written(
    trial, screening_answers
):
    screening_input = screening_answers
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        first = screening.screen(s, inv, screening_input()).pseudonym
    # The crash must come inside the transaction's block, after the writes: hence several statements.
    with pytest.raises(Crash), session_scope(trial.engine) as s:  # noqa: PT012
        screening.screen(s, inv, screening_input(age_years=70))
        s.flush()  # the patient row, its answers and log entry and audit entries are written ...
        raise Crash("power cut")  # ... and the transaction dies before commit
    with session_scope(trial.engine) as s:
        assert s.execute(select(Patient.pseudonym)).scalars().all() == [first]
        assert s.execute(select(func.count()).select_from(ScreeningEntry)).scalar() == 1
        site = s.execute(select(Site).where(Site.code == "S01")).scalar_one()
        assert site.next_patient_number == 2  # the number taken by the crashed transaction is not lost
        from immunosep.store.audit import verify

        assert verify(s).ok
    with session_scope(trial.engine) as s:
        assert screening.screen(s, inv, screening_input()).pseudonym == "S01-0002"


def test_the_migrated_schema_is_the_models_schema(empty_db_url):
    """``alembic upgrade head`` on an empty database gives exactly the tables and columns of the models
    (a column added to a model without its migration fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from immunosep.store.models import Base

    upgrade_db(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_revision_0002_fills_the_clearance_day_of_earlier_doses_with_their_own_day(trial, enroll):
    """Before 0002 a dose's clearance was always its own day's: downgrading to 0001 and upgrading again
    gives every dose with a stored clearance its own study day, and none to one without."""
    from alembic import command

    from immunosep.conduct import crf, dosing
    from immunosep.store.db import alembic_config

    p = enroll()
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 2, crf.DailyInputs(creatinine=1.0))
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)  # no clearance known on day 1
        dosing.record_dose(s, pharm, p, 2, "iv", 8, given=True)
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0001")
    command.upgrade(alembic_config(trial.url), "head")
    with trial.engine.connect() as conn:
        rows = conn.execute(text("SELECT study_day, crcl_study_day FROM dose_log ORDER BY study_day")).all()
    assert [tuple(r) for r in rows] == [(1, None), (2, 2)]


@pytest.mark.requirement("SDV-06")
def test_revision_0007_keeps_existing_queries_as_manual_ones_and_adds_the_sdv_marks(trial, enroll):
    """Downgrading below 0007 and upgrading again on a trial with a query answered and a verified record:
    the query comes back as a manual query without a check, its text and status kept; the new table is
    there (empty: a downgrade drops the marks) and the audit trail still verifies."""
    from alembic import command

    from immunosep.conduct import crf, queries, sdv
    from immunosep.store import audit
    from immunosep.store.db import alembic_config

    p = enroll()
    inv, mon = trial.actors["inv1"], trial.actors["mon1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12))
        q = queries.raise_query(s, mon, p, table_name="daily_crf", field="gcs", text="GCS under sedation?")
        queries.answer_query(s, inv, q.id, "no sedation")
        sdv.verify_record(s, mon, p, "daily_crf/1")
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0004")
    with trial.engine.connect() as conn:
        columns = (
            [r[1] for r in conn.execute(text("PRAGMA table_info(queries)"))]
            if "sqlite" in trial.url
            else None
        )
    assert columns is None or "check_id" not in columns
    command.upgrade(alembic_config(trial.url), "head")
    with trial.engine.connect() as conn:
        row = conn.execute(
            text("SELECT type, check_id, status, text, reopen_reason, close_reason, study_day FROM queries")
        ).one()
        assert tuple(row) == ("manual", "", "answered", "GCS under sedation?", "", "", None)
        assert conn.execute(text("SELECT count(*) FROM sdv_marks")).scalar_one() == 0
    with session_scope(trial.engine) as s:
        assert [x.type for x in queries.list_queries(s, mon)] == ["manual"]
        findings = audit.verify(s).findings
    # the one finding: the mark the downgrade dropped (outside the trail), named as such
    assert [(f.table, f.kind) for f in findings] == [("sdv_marks", "deleted outside the audit trail")]


@pytest.mark.requirement("GSD-09")
def test_revision_0008_adds_the_interim_looks_and_keeps_the_trial(trial, enroll):
    """Down to 0007 and up again: the patients stay, the history of looks comes back empty (a downgrade drops
    it: the audit trail names the row deleted outside it), and a look records again."""
    from alembic import command

    from immunosep.conduct.interim_looks import list_looks, record_look
    from immunosep.store import audit
    from immunosep.store.db import alembic_config

    p = enroll()
    look = {
        "data_cut_sha256": "cd" * 32,
        "endpoint": "binary",
        "planned_information_rate": 0.5,
        "look": {
            "look": 1,
            "information_rate": 0.5,
            "z": 2.5,
            "efficacy_z": 2.96,
            "futility_z": None,
            "decision": "continue to the next look",
        },
    }
    with session_scope(trial.engine) as s:
        record_look(s, trial.actors["dsmb"], look)
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0007")
    with trial.engine.connect() as conn:
        names = set(conn.dialect.get_table_names(conn))
    assert "interim_looks" not in names
    command.upgrade(alembic_config(trial.url), "head")
    with session_scope(trial.engine) as s:
        assert s.execute(select(Patient.pseudonym)).scalars().all() == [p]
        assert list_looks(s, trial.actors["dsmb"]) == []
        findings = audit.verify(s).findings
        assert [(f.table, f.kind) for f in findings] == [("interim_looks", "deleted outside the audit trail")]
        view, new = record_look(s, trial.actors["dsmb"], {**look, "data_cut_sha256": "ef" * 32})
        assert new and view.look == 1 and view.run_by == "dsmb"


@pytest.mark.requirement("RND-ADP-04")
def test_revision_0009_keeps_a_block_trials_slots(trial, enroll):
    """Downgrading below 0009 and upgrading again keeps every block slot (arm, kit, patient) and the audit
    trail verifies."""
    from alembic import command

    from immunosep.store import audit
    from immunosep.store.db import alembic_config
    from immunosep.store.models import RandomizationSlot

    p = enroll()
    query = select(
        RandomizationSlot.sequence,
        RandomizationSlot.arm,
        RandomizationSlot.kit_number,
        RandomizationSlot.used,
    ).order_by(RandomizationSlot.id)
    with session_scope(trial.engine) as s:
        before = s.execute(query).all()
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0009-1")
    with trial.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT sequence, arm, kit_number, used FROM randomization_slots ORDER BY id")
        )
        assert [tuple(r) for r in rows] == [tuple(r) for r in before]
    command.upgrade(alembic_config(trial.url), "head")
    with session_scope(trial.engine) as s:
        assert s.execute(query).all() == before
        assert s.execute(select(func.count()).where(RandomizationSlot.uniform.is_not(None))).scalar_one() == 0
        assert audit.verify(s).ok
    assert p.startswith("S01-")


@pytest.mark.requirement("RND-ADP-04")
def test_revision_0009_refuses_to_drop_an_adaptive_trials_draws(adaptive_db_url):
    """A database of an adaptive trial is not downgraded below 0009: a clear error, nothing changed."""
    from alembic import command

    from immunosep.store.db import alembic_config

    engine = make_engine(adaptive_db_url)
    try:
        with pytest.raises(ImmunoSepError, match="response-adaptive design"):
            command.downgrade(alembic_config(adaptive_db_url), "0009-1")
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT count(*) FROM randomization_slots WHERE uniform IS NOT NULL")
            ).scalar()
    finally:
        engine.dispose()
