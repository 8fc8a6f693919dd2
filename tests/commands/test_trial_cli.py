"""The trial commands: db init/upgrade, user add, audit verify, lock, export."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from immunosep.cli import main
from immunosep.conduct.users import authenticate
from immunosep.store.db import make_engine, session_scope
from immunosep.store.models import Site


def run(argv, capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_db_init_seeds_sites_and_refuses_a_second_init(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'trial.db'}"
    code, out, _ = run(["db", "init", "--db", url, "--sites", "4", "--seed", "s3cret", "--json"], capsys)
    assert code == 0 and json.loads(out)["site_codes"] == ["S01", "S02", "S03", "S04"]
    assert "s3cret" in out
    code, _, err = run(["db", "init", "--db", url, "--sites", "4"], capsys)
    assert code == 2 and "already holds a trial" in err
    code, out, _ = run(["db", "upgrade", "--db", url], capsys)
    assert code == 0
    engine = make_engine(url)
    with session_scope(engine) as s:
        assert len(s.execute(select(Site)).scalars().all()) == 4
    engine.dispose()


def test_user_add_reads_the_password_from_stdin(db_url, capsys, monkeypatch):
    code, _, _ = run(
        [
            "user",
            "add",
            "carol",
            "--db",
            db_url,
            "--role",
            "monitor",
            "--site",
            "S01",
            "--site",
            "S02",
            "--password-stdin",
        ],
        capsys,
        "a long passphrase\n",
        monkeypatch,
    )
    assert code == 0
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        user = authenticate(s, "carol", "a long passphrase")
        assert user is not None and user.role == "monitor" and len(user.assigned_sites) == 2
        assert authenticate(s, "carol", "wrong password") is None
    engine.dispose()
    code, _, err = run(
        ["user", "add", "dave", "--db", db_url, "--role", "pilot", "--password-stdin"],
        capsys,
        "a long passphrase\n",
        monkeypatch,
    )
    assert code == 2 and "unknown role" in err


def test_user_add_takes_the_name_as_username_option(db_url, capsys, monkeypatch):
    """The issue's form: user add --db URL --username NAME --role ROLE --site SITE --password-stdin."""
    args = ["--db", db_url, "--role", "investigator", "--site", "S01", "--password-stdin"]
    code, _, _ = run(["user", "add", "--username", "erin", *args], capsys, "a long passphrase\n", monkeypatch)
    assert code == 0
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        assert authenticate(s, "erin", "a long passphrase") is not None
    engine.dispose()
    for names in ([], ["frank", "--username", "frank"]):
        code, _, err = run(["user", "add", *names, *args], capsys, "a long passphrase\n", monkeypatch)
        assert code == 2 and "login name once" in err


def test_rebuild_crf_days_repairs_a_list_verify_finds_wrong(trial, enroll, db_url, capsys):
    from immunosep.conduct import crf

    p = enroll("inv1")
    with session_scope(trial.engine) as s:
        for day in (1, 2):
            crf.record_day(s, trial.actors["inv1"], p, day, crf.DailyInputs(gcs=12))
    code, out, _ = run(["db", "rebuild-crf-days", "--db", db_url], capsys)
    assert code == 0 and "agrees" in out
    with trial.engine.begin() as conn:
        conn.execute(text("UPDATE crf_days_entered SET days = '2'"))
    code, out, _ = run(["audit", "verify", "--db", db_url, "--json"], capsys)
    assert code == 1 and "crf_days_entered" in out
    code, out, _ = run(["db", "rebuild-crf-days", "--db", db_url, "--json"], capsys)
    assert code == 0 and json.loads(out) == {"rebuilt": [p]}
    code, out, _ = run(["audit", "verify", "--db", db_url], capsys)
    assert code == 0 and "verified" in out


def test_audit_verify_detects_a_changed_row(db_url, capsys):
    code, out, _ = run(["audit", "verify", "--db", db_url], capsys)
    assert code == 0 and "verified" in out
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET new_value = '{}' WHERE id = 2"))
    engine.dispose()
    code, out, _ = run(["audit", "verify", "--db", db_url, "--json"], capsys)
    assert code == 1 and json.loads(out)["ok"] is False and "entry 2" in out


def test_lock_then_export(trial, enroll, tmp_path, capsys):
    enroll()
    code, _, err = run(["export", "--db", trial.url, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "not locked" in err
    code, out, _ = run(["lock", "--db", trial.url], capsys)
    assert code == 0 and "locked 1 patient(s) and the trial" in out
    code, out, _ = run(["export", "--db", trial.url, "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and (tmp_path / "out" / "dm.parquet").is_file() and "blinded" in out
    assert all((tmp_path / "out" / f"{name}.xpt").is_file() for name in ("dm", "ts", "rs", "suppdm"))


def test_export_odm_before_and_after_lock(trial, enroll, tmp_path, capsys):
    """The ODM snapshot needs no lock; it is blinded unless asked, and --out or --odm must be given."""
    import odmlib
    from lxml import etree

    xsd = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    pseudonym = enroll()
    code, _, err = run(["export", "--db", trial.url], capsys)
    assert code == 2 and "--odm FILE" in err
    code, out, _ = run(["export", "--db", trial.url, "--odm", str(tmp_path / "snapshot.xml")], capsys)
    assert code == 0 and "ODM 1.3.2 (blinded)" in out and "1 subjects" in out
    doc = etree.parse(str(tmp_path / "snapshot.xml"))
    schema.assertValid(doc)
    assert "IT.allocation.arm" not in (tmp_path / "snapshot.xml").read_text()
    run(["lock", "--db", trial.url], capsys)
    args = ["export", "--db", trial.url, "--odm", str(tmp_path / "all.xml"), "--out", str(tmp_path / "sdtm")]
    code, out, _ = run([*args, "--unblinded"], capsys)
    assert code == 0 and "ODM 1.3.2 (UNBLINDED)" in out and (tmp_path / "sdtm" / "dm.xpt").is_file()
    text = (tmp_path / "all.xml").read_text()
    schema.assertValid(etree.fromstring(text.encode()))
    assert f'SubjectKey="{pseudonym}"' in text and "IT.allocation.arm" in text


def test_user_reset_and_passwd_set_passwords_with_the_reason_audited(db_url, capsys, monkeypatch):
    """The system owner resets a forgotten password (reason audited); the user then changes it."""
    from immunosep.store.models import AuditEntry

    base = ["user", "reset", "INV1", "--db", db_url, "--password-stdin"]
    code, _, err = run([*base, "--reason", ".........."], capsys, "a fresh passphrase 7\n", monkeypatch)
    assert code == 2 and "reason" in err
    code, _, err = run([*base, "--reason", "forgot it, ID checked"], capsys, "password1234\n", monkeypatch)
    assert code == 2 and "common" in err
    code, out, _ = run(
        [*base, "--reason", "forgot it, ID checked"], capsys, "a fresh passphrase 7\n", monkeypatch
    )
    assert code == 0 and "inv1" in out
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        assert authenticate(s, "inv1", "a fresh passphrase 7") is not None
        reasons = (
            s.execute(select(AuditEntry.reason).where(AuditEntry.field == "password_hash")).scalars().all()
        )
        assert any("forgot it, ID checked" in r for r in reasons)
    engine.dispose()
    passwd = ["user", "passwd", "inv1", "--db", db_url, "--password-stdin"]
    code, _, err = run(passwd, capsys, "not the password\nanother passphrase 9\n", monkeypatch)
    assert code == 2 and "wrong" in err
    code, _, _ = run(passwd, capsys, "a fresh passphrase 7\nanother passphrase 9\n", monkeypatch)
    assert code == 0
    with session_scope(engine) as s:
        assert authenticate(s, "inv1", "another passphrase 9") is not None
    engine.dispose()


def test_user_add_stores_the_normalised_name_and_refuses_look_alikes(db_url, capsys, monkeypatch):
    args = ["--db", db_url, "--role", "lab", "--password-stdin"]
    code, out, _ = run(["user", "add", "  Zoe.K ", *args], capsys, "a long passphrase\n", monkeypatch)
    assert code == 0 and "zoe.k" in out
    for look_alike in ("ZOE.K", "zoe.k\u200b", "\uff5aoe.k"):
        code, _, err = run(["user", "add", look_alike, *args], capsys, "a long passphrase\n", monkeypatch)
        assert code == 2 and ("already exists" in err or "invisible" in err)


@pytest.mark.requirement("AUD-REPORT-01", "AUD-REPORT-03")
def test_audit_report_writes_csv_and_pdf_and_logs_the_export(trial, enroll, tmp_path, capsys):
    pseudonym = enroll()
    out = tmp_path / "audit.csv"
    code, stdout, _ = run(
        ["audit", "report", "--db", trial.url, "--site", "S01", "--patient", pseudonym, "--out", str(out)],
        capsys,
    )
    assert code == 0 and "audit entries written" in stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("id,at,user,site,patient") and all(pseudonym in line for line in lines[1:])
    pdf = tmp_path / "audit.pdf"
    code, _, _ = run(["audit", "report", "--db", trial.url, "--format", "pdf", "--out", str(pdf)], capsys)
    assert code == 0 and pdf.read_bytes().startswith(b"%PDF")
    code, _, err = run(["audit", "report", "--db", trial.url, "--from", "june", "--out", str(out)], capsys)
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = run(["audit", "report", "--db", trial.url, "--format", "xml", "--out", str(out)], capsys)
    assert code == 2 and "--format" in err
    engine = make_engine(trial.url)
    with session_scope(engine) as s:
        logged = s.execute(
            text("SELECT field, new_value FROM audit_log WHERE table_name = 'access_log' ORDER BY id")
        ).all()
    engine.dispose()
    assert [f for f, _ in logged] == ["audit_report", "audit_report"]
    assert '"format": "csv"' in logged[0][1] and '"format": "pdf"' in logged[1][1]


@pytest.mark.requirement("SIG-11", "SIG-05")
def test_lock_sign_asks_the_data_managers_password_and_a_wrong_one_locks_nothing(
    trial, enroll, capsys, monkeypatch
):
    from immunosep.conduct.signatures import lock_signatures
    from immunosep.store.models import AuditEntry, Trial

    enroll()
    code, _, err = run(
        ["lock", "--db", trial.url, "--sign", "dm", "--password-stdin"],
        capsys,
        "guessed wrong\n",
        monkeypatch,
    )
    assert code == 2 and "signature refused" in err
    with session_scope(trial.engine) as s:
        assert s.execute(select(Trial.locked_at)).scalar() is None
        refused = s.execute(select(AuditEntry).where(AuditEntry.action == "refused")).scalar_one()
        assert refused.user_id == trial.actors["dm"].user_id
    code, out, _ = run(
        ["lock", "--db", trial.url, "--sign", "dm", "--password-stdin"],
        capsys,
        "correct horse battery\n",
        monkeypatch,
    )
    assert code == 0 and "signed: Dm Tester (dm), database lock approved" in out
    with session_scope(trial.engine) as s:
        (view,) = lock_signatures(s, None)
        assert view.valid and view.components == "username+password"


@pytest.mark.requirement("SIG-10")
def test_user_add_and_set_name_give_the_printed_name(db_url, capsys, monkeypatch):
    code, _, _ = run(
        [
            "user",
            "add",
            "newdm",
            "--db",
            db_url,
            "--role",
            "data_manager",
            "--password-stdin",
            "--full-name",
            "Ada  Lovelace",
        ],
        capsys,
        "a long passphrase 9\n",
        monkeypatch,
    )
    assert code == 0
    code, out, _ = run(["user", "set-name", "newdm", "Ada King", "--db", db_url], capsys)
    assert code == 0 and "newdm signs as Ada King" in out
    code, _, err = run(["user", "set-name", "newdm", "  ", "--db", db_url], capsys)
    assert code == 2 and "full name must not be empty" in err
