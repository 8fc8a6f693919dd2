"""No command ends in a traceback: bad databases, overflowing counts and infeasible sample sizes exit 2 with one line.

Every command that takes ``--db`` is run against a missing SQLite file, a text file given as a SQLite URL,
a PostgreSQL server that refuses the connection, and an empty database (no schema); each must print one
``error:`` line that says what to fix and exit with code 2.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from immunosep.cli import main

# every command that takes --db, with the other arguments it needs (the database URL goes after --db)
DB_COMMANDS: dict[str, list[str]] = {
    "db init": ["db", "init", "--seed", "s3cret"],
    "db upgrade": ["db", "upgrade"],
    "audit verify": ["audit", "verify"],
    "audit checkpoint": ["audit", "checkpoint", "--out", "{tmp}/head.json", "--key-file", "{tmp}/key"],
    "user add": ["user", "add", "alice", "--role", "investigator", "--site", "S01", "--password-stdin"],
    "user passwd": ["user", "passwd", "alice", "--password-stdin"],
    "user reset": ["user", "reset", "alice", "--reason", "identity checked in person", "--password-stdin"],
    "lock": ["lock"],
    "export": ["export", "--out", "{tmp}/sdtm"],
    "analyse": ["analyse", "--out", "{tmp}/analysis"],
    "simulate trial": ["simulate", "trial", "--screened", "5"],
    "serve": ["serve"],
}
# commands that rightly create a trial in a missing or empty database
CREATES = {"db init", "db upgrade", "simulate trial"}
REFUSED_PG = "postgresql+psycopg://nobody@127.0.0.1:1/x"


def run(argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("Correct-horse-42-battery\nAnother-staple-77-x\n" * 3))

    def no_server(*args, **kwargs):
        raise AssertionError("serve started a server on a database it cannot open")

    monkeypatch.setattr("uvicorn.run", no_server)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def assert_clear_error(code: int, out: str, err: str, *expected: str) -> None:
    assert "Traceback" not in out + err
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]


def _argv(name: str, url: str, tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in DB_COMMANDS[name]] + ["--db", url]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    key = tmp_path / "key"
    key.write_text("k" * 40)
    return key


@pytest.mark.parametrize("name", sorted(DB_COMMANDS))
def test_unreachable_postgres(name, tmp_path, capsys, monkeypatch, key_file):
    started = time.monotonic()
    code, out, err = run(_argv(name, REFUSED_PG, tmp_path), capsys, monkeypatch)
    assert_clear_error(code, out, err, "database", "127.0.0.1", "Connection refused")
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("name", sorted(DB_COMMANDS))
def test_text_file_given_as_sqlite(name, tmp_path, capsys, monkeypatch, key_file):
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not a database\n" * 200)
    before = notes.read_bytes()
    code, out, err = run(_argv(name, f"sqlite:///{notes}", tmp_path), capsys, monkeypatch)
    assert_clear_error(code, out, err, "notes.txt", "not a database")
    assert notes.read_bytes() == before


@pytest.mark.parametrize("name", sorted(set(DB_COMMANDS) - CREATES))
def test_missing_sqlite_file(name, tmp_path, capsys, monkeypatch, key_file):
    code, out, err = run(
        _argv(name, f"sqlite:///{tmp_path / 'nowhere' / 'trial.db'}", tmp_path), capsys, monkeypatch
    )
    assert_clear_error(code, out, err, "cannot open the database", "immunosep db init")


@pytest.mark.parametrize("name", sorted(set(DB_COMMANDS) - CREATES))
def test_empty_database(name, empty_db_url, tmp_path, capsys, monkeypatch, key_file):
    code, out, err = run(_argv(name, empty_db_url, tmp_path), capsys, monkeypatch)
    assert_clear_error(code, out, err, "immunosep db init")


def test_password_in_url_is_masked(tmp_path, capsys, monkeypatch):
    url = "postgresql+psycopg://nobody:hunter2-secret@127.0.0.1:1/x"
    code, out, err = run(["audit", "verify", "--db", url], capsys, monkeypatch)
    assert_clear_error(code, out, err, "cannot open the database", "check the URL")
    assert "hunter2-secret" not in out + err


@pytest.mark.parametrize(
    "argv",
    [
        ["stats", "compare", "1/99999999999999999999", "1/2"],
        ["stats", "compare", "99999999999999999999/99999999999999999999", "1/2"],
        ["stats", "ordinal", "--levels", "a,b", "--a", "1,99999999999999999999", "--b", "3,4"],
    ],
)
def test_overflowing_counts(argv, capsys, monkeypatch):
    code, out, err = run(argv, capsys, monkeypatch)
    assert_clear_error(code, out, err, "99999999999999999999")


@pytest.mark.parametrize("p2", ["0.505", "0.52"])
def test_infeasible_exact_sample_size_is_refused_quickly(p2, capsys, monkeypatch):
    started = time.monotonic()
    argv = ["sample-size", "--p1", "0.5", "--p2", p2, "--method", "fisher-exact"]
    code, out, err = run(argv, capsys, monkeypatch)
    assert_clear_error(code, out, err, "fisher-exact", "normal")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "design", "--patients", "99999999999999999999", "--workers", "1"],
        ["simulate", "design", "--trials", "99999999999999999999", "--workers", "1"],
        ["simulate", "trial", "--screened", "99999999999999999999", "--db", "sqlite:///{tmp}/t.db"],
    ],
)
def test_simulation_sizes_beyond_memory_are_refused(argv, tmp_path, capsys, monkeypatch):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(argv, capsys, monkeypatch)
    assert_clear_error(code, out, err, "must be at most", "99999999999999999999")
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["db", "init", "--db", "sqlite:///{tmp}/a.db", "--sites", "99999999999999999999"],
        ["db", "init", "--db", "sqlite:///{tmp}/b.db", "--slots-per-site", "99999999999999999999"],
    ],
)
def test_db_init_sizes_that_would_not_end_are_refused(argv, tmp_path, capsys, monkeypatch):
    started = time.monotonic()
    code, out, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys, monkeypatch)
    assert_clear_error(code, out, err, "must be at most", "99999999999999999999")
    assert time.monotonic() - started < 10


def test_output_folder_that_is_a_file(seeded_db_url, tmp_path, capsys, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    code, out, err = run(
        ["analyse", "--db", seeded_db_url, "--out", str(notes), "--interim"], capsys, monkeypatch
    )
    assert_clear_error(code, out, err, "notes.txt", "check the path")
    assert notes.read_text() == "keep me"


def test_real_database_bugs_keep_their_traceback():
    """Only errors of opening the database become messages; a constraint or a bad statement stays a bug."""
    from sqlalchemy import exc as sa_exc

    from immunosep.cli import database_error

    class UndefinedTable(Exception):
        pass

    argv = ["lock", "--db", "postgresql+psycopg://u:secret@h/x"]
    assert database_error(sa_exc.IntegrityError("INSERT", {}, Exception("UNIQUE failed")), argv) is None
    assert database_error(sa_exc.DataError("INSERT", {}, Exception("out of range")), argv) is None
    assert database_error(sa_exc.ProgrammingError("SELEC", {}, Exception("syntax error")), argv) is None
    missing = database_error(sa_exc.ProgrammingError("SELECT", {}, UndefinedTable("relation trials")), argv)
    assert missing is not None and "relation trials" in str(missing) and "secret" not in str(missing)
    refused = database_error(sa_exc.OperationalError("connect", {}, Exception("refused\nmore")), argv)
    assert refused is not None and str(refused).startswith(
        "cannot open the database postgresql+psycopg://u:***@h/x"
    )
