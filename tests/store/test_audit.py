"""The audit trail records who changed what (old and new value, reason) and detects tampering."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import event, func, select, text

from fixtures.plans import grow_audit_log, plans_of
from immunosep.conduct import crf, screening
from immunosep.store import audit
from immunosep.store.audit import trail_text, verify
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry, Site


def _entries(s, table):
    return (
        s.execute(select(AuditEntry).where(AuditEntry.table_name == table).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


@pytest.mark.requirement("AUD-01")
def test_insert_and_correction_are_recorded_with_user_old_new_and_reason(trial, enroll):
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=120.0, gcs=15))
    with session_scope(trial.engine) as s:
        crf.record_day(
            s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=90.0, gcs=15), reason="transcription error"
        )
    with session_scope(trial.engine) as s:
        rows = _entries(s, "daily_crf")
        assert rows[0].action == "insert" and json.loads(rows[0].new_value)["platelets_1e3_ul"] == "120.0"
        change = next(e for e in rows if e.field == "platelets_1e3_ul")
        assert (change.old_value, change.new_value) == ("120.0", "90.0")
        assert change.reason == "transcription error" and change.user_id == inv.user_id
        assert verify(s).ok


@pytest.mark.requirement("AUD-01")
def test_a_savepoint_rolled_back_takes_its_entries_and_the_chain_goes_on_from_before_it(trial, enroll):
    """A transaction links each append to the head it appended last (``audit._HEAD``), without reading it
    back; a savepoint rolled back takes its entries, and the next append links to the entry before it."""
    p = enroll()
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=15))
        savepoint = s.begin_nested()
        crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=14))
        savepoint.rollback()
        crf.record_day(s, inv, p, 3, crf.DailyInputs(gcs=13))
        crf.record_day(s, inv, p, 4, crf.DailyInputs(gcs=12))
    with session_scope(trial.engine) as s:
        assert [r.study_day for r in crf.daily_records(s, inv, p)] == [1, 3, 4]
        assert verify(s).ok


@pytest.mark.requirement("AUD-01")
def test_entries_kept_back_to_the_commit_link_as_any_and_a_savepoint_rolled_back_takes_only_its_own(
    trial, enroll
):
    """A transaction that defers its entries (a commit group's) inserts them with one statement at its
    commit, linked as if inserted one by one; entries kept from before a savepoint rolled back stay."""
    p = enroll()
    inv = trial.actors["inv1"]
    inserts: list[int] = []

    def count(_conn, _cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO audit_log"):
            inserts.append(len(parameters) if isinstance(parameters, list) else 1)

    with session_scope(trial.engine) as s:
        before = s.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    event.listen(trial.engine, "before_cursor_execute", count)
    try:
        with session_scope(trial.engine) as s:
            audit.defer_entries(s)
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=15))
            assert audit.deferred_count(s) == 1 and inserts == []  # kept back
            savepoint = s.begin_nested()
            crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=14))  # day 1's entry went in before it
            savepoint.rollback()
            crf.record_day(s, inv, p, 3, crf.DailyInputs(gcs=13))
            crf.record_day(s, inv, p, 4, crf.DailyInputs(gcs=12))
            assert audit.deferred_count(s) == 2
            with s.begin_nested():  # days 3 and 4 go in before it, day 5 in it; it is released
                crf.record_day(s, inv, p, 5, crf.DailyInputs(gcs=11))
            crf.record_day(s, inv, p, 6, crf.DailyInputs(gcs=10))
            assert audit.deferred_count(s) == 1  # kept back again after the release
    finally:
        event.remove(trial.engine, "before_cursor_execute", count)
    # day 1 as the first savepoint began, day 2 in it (rolled back), days 3 and 4 as the second began, day 5
    # in it, day 6 at the commit
    assert len(inserts) == 5
    with session_scope(trial.engine) as s:
        assert [r.study_day for r in crf.daily_records(s, inv, p)] == [1, 3, 4, 5, 6]
        assert s.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == before + 5
        assert verify(s).ok


@pytest.mark.requirement("AUD-01")
def test_a_change_left_to_the_commits_own_flush_is_audited_in_a_transaction_that_keeps_entries_back(trial):
    """The commit flushes after its hooks ran: what that flush appends is inserted, not kept and lost."""
    with session_scope(trial.engine) as s:
        audit.defer_entries(s)
        s.execute(select(Site).where(Site.code == "S01")).scalar_one().name = "renamed at the commit"
    with session_scope(trial.engine) as s:
        change = s.execute(select(AuditEntry).where(AuditEntry.table_name == "sites")).scalars().all()[-1]
        assert (change.field, change.new_value) == ("name", '"renamed at the commit"')
        assert verify(s).ok


@pytest.mark.requirement("AUD-01")
def test_a_patient_key_made_in_a_savepoint_rolled_back_is_not_used_after_it(trial, screening_answers):
    """A patient screened in a savepoint that is rolled back takes its key with it; the next patient (on
    SQLite the same row id) gets a key of its own, stored, and the trail verifies (group commit's case)."""
    inv = trial.actors["inv1"]
    with session_scope(trial.engine) as s:
        savepoint = s.begin_nested()
        screening.screen(s, inv, screening_answers())
        savepoint.rollback()
        screening.screen(s, inv, screening_answers(age_years=70))
    with session_scope(trial.engine) as s:
        assert verify(s).ok


@pytest.mark.requirement("AUD-04")
def test_allocation_never_copies_the_arm_into_the_trail(trial, enroll):
    enroll()
    with session_scope(trial.engine) as s:
        entries = s.execute(select(AuditEntry).where(AuditEntry.table_name != "trials")).scalars()
        blob = " ".join(f"{e.old_value} {e.new_value}" for e in entries)
    assert "precision" not in blob and "placebo" not in blob


@pytest.mark.requirement("AUD-02")
def test_a_changed_value_a_changed_reason_and_a_deleted_entry_are_detected(trial, enroll):
    enroll()
    with session_scope(trial.engine) as s:
        assert verify(s).ok
        n = s.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc())).scalars().first()
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET new_value = '\"S01-9999\"' WHERE id = :i"), {"i": n})
    with session_scope(trial.engine) as s:
        assert any("new value was changed" in p for p in verify(s).problems)
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 3"))
        conn.execute(text("DELETE FROM audit_log WHERE id = 5"))
    with session_scope(trial.engine) as s:
        problems = verify(s).problems
    assert any("audit_log entry 3: reason was changed" in p for p in problems)
    assert any("audit_log entry 5: missing" in p for p in problems)


def test_stored_values_are_the_text_json_gives_them():
    """The audit's fast paths for numbers and plain strings must give exactly json.dumps's text: the
    digests of every entry already in the chain depend on it."""
    rng = random.Random(5)
    values: list[object] = [0, -1, 7, 10**30, -(10**19), 1.5, -0.0, 0.1, 1e-7, 1e16, 1e22, 123456789.125]
    values += [float("nan"), float("inf"), float("-inf"), True, False, [1, 2], {"a": 1}]
    values += ["", "ok", "O'Brien", 'say "hi"', "back\\slash", "tab\there", "line\nbreak", "del\x7f"]
    values += ["Müller", "日本", "emoji \U0001f600", "nul\x00", "ICU-03/A,B;C"]
    values += [rng.uniform(-1e6, 1e6) for _ in range(500)] + [
        rng.randrange(-(10**12), 10**12) for _ in range(500)
    ]
    values += ["".join(chr(rng.randrange(0, 300)) for _ in range(rng.randrange(0, 12))) for _ in range(2000)]
    for value in values:
        assert trail_text(value) == json.dumps(value, default=str), repr(value)


# --- tampering done directly in the database (issue 17): each must be found and named -----------------

KEY = "a data manager's checkpoint key, at least 32 bytes long"


def run_cli(argv, capsys):
    import pytest

    from immunosep.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _with_data(trial, enroll):
    """Two patients with a daily CRF (one corrected) and an adverse event each; returns the pseudonyms."""
    from immunosep.conduct import adverse_events

    inv = trial.actors["inv1"]
    patients = [enroll(), enroll(ferritin=1000.0, hla_dr=3000.0)]
    for p in patients:
        with session_scope(trial.engine) as s:
            crf.record_day(s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=120.0, gcs=15, creatinine=1.0))
            adverse_events.record_adverse_event(
                s,
                inv,
                p,
                onset_day=2,
                term="Anaemia",
                serious=False,
                relatedness="unrelated",
                expected=True,
                action="DOSE NOT CHANGED",
                outcome="NOT RECOVERED/NOT RESOLVED",
            )
    with session_scope(trial.engine) as s:
        crf.record_day(
            s,
            inv,
            patients[0],
            1,
            crf.DailyInputs(platelets_1e3_ul=90.0, gcs=15),  # creatinine becomes NULL
            reason="typo",
        )
    return patients


def _problems(trial, **kw):
    with session_scope(trial.engine) as s:
        return verify(s, **kw).problems


@pytest.mark.requirement("ERASE-02")
def test_marking_any_entry_erased_and_blanking_its_values_is_detected(trial, enroll):
    _with_data(trial, enroll)
    with session_scope(trial.engine) as s:
        assert verify(s).ok
        target = (
            s.execute(
                select(AuditEntry.id).where(
                    AuditEntry.table_name == "daily_crf", AuditEntry.action == "update"
                )
            )
            .scalars()
            .first()
        )
        trial_entry = s.execute(select(AuditEntry.id).where(AuditEntry.table_name == "trials")).scalar()
    with trial.engine.begin() as conn:
        for i in (target, trial_entry):
            conn.execute(
                text("UPDATE audit_log SET erased = TRUE, old_value = NULL, new_value = NULL WHERE id = :i"),
                {"i": i},
            )
    problems = _problems(trial)
    for i in (target, trial_entry):
        assert any(f"audit_log entry {i}:" in p and "erase" in p for p in problems), problems


@pytest.mark.requirement("ERASE-02")
def test_an_erase_entry_cannot_authorise_the_erasure_of_another_patient(trial, enroll):
    from immunosep.conduct import withdrawal

    _keep, gone = _with_data(trial, enroll)
    withdrawal.withdraw_and_erase(trial.engine, trial.actors["inv1"], gone)
    with session_scope(trial.engine) as s:
        assert verify(s).ok
        erase_id = s.execute(select(AuditEntry.id).where(AuditEntry.action == "erase")).scalar_one()
        kept = (
            s.execute(
                select(AuditEntry.id).where(
                    AuditEntry.table_name == "daily_crf", AuditEntry.erased.is_(False)
                )
            )
            .scalars()
            .first()
        )
    with trial.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_log SET erased = TRUE, erased_by = :e, old_value = NULL, new_value = NULL, "
                "reason = '' WHERE id = :i"
            ),
            {"e": erase_id, "i": kept},
        )
    problems = _problems(trial)
    assert any(f"audit_log entry {kept}:" in p for p in problems), problems


@pytest.mark.requirement("AUD-03")
def test_deleting_the_last_entries_is_detected_by_the_checkpoint(
    trial, enroll, tmp_path, capsys, monkeypatch
):
    _with_data(trial, enroll)
    monkeypatch.setenv("IMMUNOSEP_AUDIT_KEY", KEY)
    head = tmp_path / "head.json"
    code, out, err = run_cli(["audit", "checkpoint", "--db", trial.url, "--out", str(head)], capsys)
    assert code == 0, err
    saved = json.loads(head.read_text())
    code, out, _ = run_cli(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)], capsys)
    assert code == 0 and "checkpoint" in out
    with trial.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id > :n"), {"n": saved["entries"] - 3})
    code, out, _ = run_cli(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)], capsys)
    assert code == 1 and "truncated" in out
    # without the key, a checkpoint cannot be forged to match the shortened trail
    forged = dict(saved, entries=saved["entries"] - 3)
    head.write_text(json.dumps(forged))
    code, out, err = run_cli(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)], capsys)
    assert code == 1 and "signature" in out + err


@pytest.mark.requirement("AUD-02")
def test_editing_live_rows_directly_is_detected_and_named(trial, enroll, capsys):
    from immunosep.store.models import AdverseEvent, DailyCrf, RandomizationSlot

    _with_data(trial, enroll)
    with session_scope(trial.engine) as s:
        crf_id = s.execute(select(DailyCrf.id).order_by(DailyCrf.id)).scalars().first()
        ae_ids = s.execute(select(AdverseEvent.id).order_by(AdverseEvent.id)).scalars().all()
        slot_id = (
            s.execute(
                select(RandomizationSlot.id)
                .where(RandomizationSlot.used.is_(True))
                .order_by(RandomizationSlot.id)
            )
            .scalars()
            .first()
        )
        unused_slot = (
            s.execute(
                select(RandomizationSlot.id)
                .where(RandomizationSlot.used.is_(False))
                .order_by(RandomizationSlot.id)
            )
            .scalars()
            .first()
        )
        assert verify(s).ok
    flip = "CASE WHEN arm = 'precision' THEN 'placebo' ELSE 'precision' END"
    with trial.engine.begin() as conn:
        conn.execute(
            text("UPDATE daily_crf SET sofa_total = sofa_total + 1, creatinine = 2.0 WHERE id = :i"),
            {"i": crf_id},
        )
        conn.execute(text("UPDATE adverse_events SET serious = TRUE WHERE id = :i"), {"i": ae_ids[0]})
        conn.execute(text("DELETE FROM adverse_events WHERE id = :i"), {"i": ae_ids[1]})
        conn.execute(text(f"UPDATE randomization_slots SET arm = {flip} WHERE id = :i"), {"i": slot_id})
        conn.execute(text(f"UPDATE randomization_slots SET arm = {flip} WHERE id = :i"), {"i": unused_slot})
    problems = _problems(trial)
    assert any(f"daily_crf row {crf_id}:" in p and "sofa_total" in p for p in problems), problems
    # the correction had set creatinine to NULL: a value put back with SQL is found too
    assert any(f"daily_crf row {crf_id}: creatinine differs" in p for p in problems), problems
    assert any(f"adverse_events row {ae_ids[0]}:" in p and "serious" in p for p in problems), problems
    assert any(f"adverse_events row {ae_ids[1]}:" in p and "deleted" in p for p in problems), problems
    for slot in (slot_id, unused_slot):
        assert any(f"randomization_slots row {slot}: sealed column changed" in p for p in problems), problems
    code, out, err = run_cli(["audit", "verify", "--db", trial.url], capsys)
    assert code == 1 and "sealed column changed" in out
    for word in ("precision", "placebo", "anakinra", "interferon", "saline"):
        assert word not in (out + err).lower()


@pytest.mark.requirement("AUD-02")
def test_a_row_inserted_directly_is_detected(trial, enroll):
    from immunosep.store.models import DailyCrf

    _with_data(trial, enroll)
    with session_scope(trial.engine) as s:
        row = s.execute(select(DailyCrf).order_by(DailyCrf.id)).scalars().first()
        patient_id, user = row.patient_id, row.recorded_by
    with trial.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO daily_crf (id, patient_id, study_day, ventilated, bilirubin_unit, creatinine_unit, "
                "mechanical_ventilation, vasopressors, ckrt, sofa_respiration, sofa_coagulation, sofa_liver, "
                "sofa_cardiovascular, sofa_cns, sofa_renal, sofa_total, sofa_missing, recorded_by) VALUES "
                "(999, :p, 5, FALSE, 'mg/dL', 'mg/dL', FALSE, FALSE, FALSE, 0, 0, 0, 0, 0, 0, 0, '', :u)"
            ),
            {"p": patient_id, "u": user},
        )
    assert any("daily_crf row 999:" in p and "not in the audit trail" in p for p in _problems(trial))


def test_revision_0003_rechains_an_existing_trail_with_an_erasure_and_it_verifies(trial, enroll):
    """Scheme-1 rows (downgrade to 0002 recomputes them so) migrate: the chain is recomputed, erased entries
    are linked to their erase entry, insert entries get their row id, and everything verifies again."""
    from immunosep.conduct import withdrawal

    _keep, gone = _with_data(trial, enroll)
    withdrawal.withdraw_and_erase(trial.engine, trial.actors["inv1"], gone)
    trial.engine.dispose()
    from alembic import command

    from immunosep.store.db import alembic_config

    command.downgrade(alembic_config(trial.url), "0002")
    _as_scheme_1_wrote_it(trial)
    command.upgrade(alembic_config(trial.url), "head")
    with session_scope(trial.engine) as s:
        result = verify(s)
        assert result.ok, result.problems
        assert result.erased_entries > 0 and result.rows_checked > 600
        kept = select(AuditEntry.row_id).where(AuditEntry.erased.is_(False))
        assert all(s.execute(kept).scalars())
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE daily_crf SET gcs = 3"))
        conn.execute(text("UPDATE randomization_slots SET kit_number = '000000' WHERE id = 7"))
    problems = _problems(trial)
    assert any("daily_crf row" in p and "gcs" in p for p in problems)
    assert "randomization_slots row 7: sealed column changed" in problems


def _as_scheme_1_wrote_it(trial):
    """Make the rows what the previous code wrote: inserts without a row id, sealed values as ``<sealed>``,
    scheme-1 hashes over the reasons' text."""
    import hashlib
    import hmac

    from immunosep.store.audit import GENESIS

    cols = (
        "at",
        "user_id",
        "table_name",
        "row_id",
        "subject_id",
        "action",
        "field",
        "old_digest",
        "new_digest",
    )
    with trial.engine.begin() as conn:
        rows = conn.execute(
            text(f"SELECT id, reason, new_value, {', '.join(cols)} FROM audit_log ORDER BY id")
        )
        prev = GENESIS
        for r in [dict(r._mapping) for r in rows]:
            if r["action"] == "insert":
                r["row_id"] = ""
                if r["table_name"] == "randomization_slots":
                    values = json.loads(r["new_value"])
                    values.update(arm="<sealed>", kit_number="<sealed>")
                    for later in ("stratum", "uniform", "probability", "data_cut", "data_cut_sha256"):
                        values.pop(later, None)  # columns of revision 0009, which scheme 1 never wrote
                    r["new_value"] = json.dumps(values, sort_keys=True)
                    r["new_digest"] = hmac.new(b"", r["new_value"].encode(), hashlib.sha256).hexdigest()
            payload = [prev, *(r[c] for c in cols), r["reason"]]
            h = hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
            conn.execute(
                text(
                    "UPDATE audit_log SET row_id = :r, new_value = :v, new_digest = :d, prev_hash = :p, "
                    "entry_hash = :h WHERE id = :i"
                ),
                {
                    "r": r["row_id"],
                    "v": r["new_value"],
                    "d": r["new_digest"],
                    "p": prev,
                    "h": h,
                    "i": r["id"],
                },
            )
            prev = h


def test_revision_0003_refuses_to_rechain_a_trail_that_was_tampered_with(trial, enroll):
    import pytest
    from alembic import command

    from immunosep.store.db import alembic_config

    _with_data(trial, enroll)
    trial.engine.dispose()
    command.downgrade(alembic_config(trial.url), "0002")
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 3"))
    with pytest.raises(RuntimeError, match="does not verify under its current scheme"):
        command.upgrade(alembic_config(trial.url), "head")


def test_a_value_given_in_another_type_than_its_column_compares_equal_and_a_different_one_does_not():
    from datetime import UTC, datetime, timedelta, timezone

    from immunosep.store.audit import _same

    t = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
    assert (
        _same("80", 80.0) and _same("1", True) and _same("0", False) and _same("5.0", 5) and _same("7", "7")
    )
    assert _same(t.astimezone(timezone(timedelta(hours=2))).isoformat(), t)
    assert not _same("80", 80.5) and not _same("2", True) and not _same("1", False) and not _same('"7"', "8")
    assert not _same((t + timedelta(microseconds=1)).isoformat(), t)


@pytest.mark.parametrize(
    "seeded_db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_chain_heads_statement_keeps_one_generic_plan_on_postgresql(engine):
    grow_audit_log(engine)
    assert plans_of(engine, audit._LAST_AND_KEY, {"subject": 1}) == (6, 5)
