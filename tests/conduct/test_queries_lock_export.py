"""Queries, locks (nothing changes after lock) and the SDTM-style export, blinded and unblinded."""

from __future__ import annotations

import pandas as pd
import pytest

from immunosep.conduct import adverse_events, biospecimens, crf, dosing, export, lock, queries
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store.db import session_scope


def _fill(trial, p):
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    with session_scope(trial.engine) as s:
        crf.record_day(
            s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=80.0, gcs=14, creatinine=1.0, weight_kg=80.0)
        )
        dosing.record_dose(s, pharm, p, 1, "iv", 0, given=True)
        dosing.record_dose(s, pharm, p, 1, "sc", 0, given=True)
        biospecimens.record_draw(
            s, trial.actors["lab"], p, 2, ferritin_ng_ml=5000.0, hla_dr_per_monocyte=7000.0
        )
        adverse_events.record_adverse_event(
            s,
            inv,
            p,
            onset_day=2,
            term="Anaemia",
            serious=True,
            relatedness="unrelated",
            expected=True,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )


@pytest.mark.requirement("ACC-05")
def test_query_lifecycle_and_lock_refuses_changes(trial, enroll):
    p = enroll()
    _fill(trial, p)
    mon, inv, dm = trial.actors["mon1"], trial.actors["inv1"], trial.actors["dm"]
    with session_scope(trial.engine) as s:
        q = queries.raise_query(s, mon, p, table_name="daily_crf", field="gcs", text="GCS under sedation?")
    with pytest.raises(ImmunoSepError, match="not closed"), session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
    with session_scope(trial.engine) as s:
        assert queries.answer_query(s, inv, q.id, "yes, sedated").status == "answered"
        assert queries.close_query(s, mon, q.id).status == "closed"
        assert [x.status for x in queries.list_queries(s, dm)] == ["closed"]
    with pytest.raises(ImmunoSepError, match="not yet locked"), session_scope(trial.engine) as s:
        lock.lock_trial(s, dm)
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
    with pytest.raises(ImmunoSepError, match="is locked"), session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 2, crf.DailyInputs(gcs=15))
    with session_scope(trial.engine) as s:
        lock.lock_trial(s, dm)
    with pytest.raises(ImmunoSepError, match="trial database is locked"), session_scope(trial.engine) as s:
        queries.raise_query(s, mon, p, table_name="daily_crf", text="late question")


@pytest.mark.requirement("EXP-02")
def test_export_needs_lock_and_a_blinded_export_names_no_arm_or_drug(trial, enroll, tmp_path):
    p = enroll()
    _fill(trial, p)
    dm = trial.actors["dm"]
    with pytest.raises(ImmunoSepError, match="not locked"), session_scope(trial.engine) as s:
        export.export_sdtm(s, dm, tmp_path / "x")
    with session_scope(trial.engine) as s:
        lock.lock_patient(s, dm, p)
        lock.lock_trial(s, dm)
    with pytest.raises(AccessDenied), session_scope(trial.engine) as s:
        export.export_sdtm(s, dm, tmp_path / "x", unblinded=True)
    with session_scope(trial.engine) as s:
        blinded = export.export_sdtm(s, dm, tmp_path / "blinded")
        unblinded = export.export_sdtm(s, None, tmp_path / "unblinded", unblinded=True)
    # LB: baseline ferritin (no mHLA-DR needed for MALS) + day-2 ferritin and mHLA-DR
    design = ("TA", "TE", "TS")  # one blinded arm and element, one masked drug, when blinded
    assert {k: n for k, n in blinded.rows.items() if k not in design} == {
        k: n for k, n in unblinded.rows.items() if k not in design
    }
    assert (blinded.rows["TA"], unblinded.rows["TA"]) == (3, 6)
    rows = blinded.rows
    assert (rows["DM"], rows["EX"], rows["LB"], rows["AE"], rows["RS"], rows["PR"]) == (1, 2, 3, 1, 7, 3)
    assert rows["DS"] == 2  # informed consent and randomization
    text = " ".join(
        f.read_text(errors="replace") for f in blinded.files if f.suffix in (".csv", ".json")
    ).lower()
    # the design's control type (TS TCNTRL "PLACEBO", a CDISC term) reveals no allocation; nothing else may
    text = text.replace("control type,placebo", "control type,")
    for word in ("precision", "placebo", "anakinra", "interferon", "saline"):
        assert word not in text
    dm_blinded = pd.read_csv(tmp_path / "blinded" / "dm.csv")
    assert not {"ARMCD", "ARM", "ACTARMCD", "ACTARM"} & set(dm_blinded.columns)
    assert set(pd.read_csv(tmp_path / "blinded" / "ta.csv")["ARMCD"]) == {"BLINDED"}
    xpt = b" ".join(f.read_bytes() for f in blinded.files if f.suffix == ".xpt" and f.stem != "ts").lower()
    for word in (b"precision", b"placebo", b"anakinra", b"interferon", b"saline"):
        assert word not in xpt
    dm_un = pd.read_parquet(tmp_path / "unblinded" / "dm.parquet")
    assert dm_un.loc[0, "ARMCD"] in ("PRECISION", "PLACEBO") and dm_un.loc[0, "USUBJID"] == f"IMMUNOSEP-{p}"
    assert dm_un.loc[0, "ACTARMCD"] == dm_un.loc[0, "ARMCD"]  # dosed
    ex_un = pd.read_csv(tmp_path / "unblinded" / "ex.csv")
    assert set(ex_un["EXROUTE"]) == {"INTRAVENOUS", "SUBCUTANEOUS"} and "EXDOSE" in ex_un
    rs = pd.read_parquet(tmp_path / "blinded" / "rs.parquet")
    assert set(rs["RSCAT"]) == {"SOFA"} and len(set(rs["RSTESTCD"])) == 7
    assert rs.loc[rs.RSTEST == "SOFA01-Coagulation", "RSSTRESN"].item() == 2.0  # platelets 80 -> 2 points
    define = pd.read_csv(tmp_path / "blinded" / "define.csv")
    assert {"dataset", "variable", "label", "type", "origin"} <= set(define.columns)
    assert len(define) == sum(
        len(pd.read_csv(tmp_path / "blinded" / f"{d.lower()}.csv").columns) for d in blinded.rows
    )


@pytest.mark.requirement("AUD-03")
def test_the_lock_report_prints_the_signed_audit_head_that_verify_then_checks(
    trial, enroll, tmp_path, capsys, monkeypatch
):
    """The trial lock prints the chain's head and its HMAC; the written head.json is what `audit verify
    --checkpoint` checks, so removing entries written up to the lock is found afterwards."""
    import json

    from sqlalchemy import text

    from immunosep.cli import main

    def run(argv):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        return int(exc.value.code or 0), capsys.readouterr().out

    p = enroll()
    _fill(trial, p)
    key_file = tmp_path / "dm.key"
    key_file.write_text("k" * 40 + "\n")
    monkeypatch.setenv("IMMUNOSEP_AUDIT_KEY_FILE", str(key_file))
    head = tmp_path / "head.json"
    code, out = run(["lock", "--db", trial.url, "--checkpoint-out", str(head)])
    signed = json.loads(head.read_text())
    assert code == 0 and "locked 1 patient(s) and the trial" in out
    assert (
        f"{signed['entries']} entries, last entry {signed['last_id']}, SHA-256 {signed['last_hash']}" in out
    )
    assert signed["hmac"] in out
    with session_scope(trial.engine) as s:
        assert s.execute(text("SELECT count(*) FROM audit_log")).scalar() == signed["entries"]
    code, out = run(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)])
    assert code == 0
    with trial.engine.begin() as conn:  # remove the lock's own entries
        conn.execute(text("DELETE FROM audit_log WHERE id > :n"), {"n": signed["last_id"] - 2})
    code, out = run(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)])
    assert code == 1 and "truncated" in out
    key_file.write_text("another key of forty characters or so....")
    code, out = run(["audit", "verify", "--db", trial.url, "--checkpoint", str(head)])
    assert code == 1 and "signature does not match" in out
