"""The audit trail records who changed what (old and new value, reason) and detects tampering."""

from __future__ import annotations

import json
import random

from sqlalchemy import select, text

from immunosep.conduct import crf
from immunosep.store.audit import _to_text, verify
from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry


def _entries(s, table):
    return (
        s.execute(select(AuditEntry).where(AuditEntry.table_name == table).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


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


def test_allocation_never_copies_the_arm_into_the_trail(trial, enroll):
    enroll()
    with session_scope(trial.engine) as s:
        entries = s.execute(select(AuditEntry).where(AuditEntry.table_name != "trials")).scalars()
        blob = " ".join(f"{e.old_value} {e.new_value}" for e in entries)
    assert "precision" not in blob and "placebo" not in blob


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
    assert any("entry 3: hash does not match" in p for p in problems)
    assert any("entry 5 is missing" in p for p in problems)


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
        assert _to_text(value) == json.dumps(value, default=str), repr(value)
