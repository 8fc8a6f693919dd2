"""``immunosep analyse`` and its deprecated spelling ``immunosep analyze`` (hidden, says to use analyse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import immunosep.pipeline
from immunosep.cli import main
from immunosep.commands.analyse import DEPRECATED_SPELLING


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_help_lists_one_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "analyse" in out and "analyze" not in out


def test_the_old_spelling_forwards_every_option_and_says_to_use_analyse(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run_analysis(db: str, out: Path, **kwargs: Any) -> dict[str, Any]:
        calls.append({"db": db, "out": out, "interim": kwargs["interim"], "pdf": kwargs["pdf"]})
        return {"db": db, "randomized": 3}

    monkeypatch.setattr(immunosep.pipeline, "run_analysis", fake_run_analysis)
    args = ("--db", "sqlite:///x.db", "--out", str(tmp_path), "--interim", "--pdf", "--json")
    code, new_out, new_err = run(capsys, "analyse", *args)
    assert code == 0 and DEPRECATED_SPELLING not in new_err
    code, old_out, old_err = run(capsys, "analyze", *args)
    assert code == 0
    assert old_err.splitlines()[0] == DEPRECATED_SPELLING
    assert "use 'immunosep analyse'" in old_err
    assert json.loads(old_out) == json.loads(new_out) == {"db": "sqlite:///x.db", "randomized": 3}
    assert calls[0] == calls[1] == {"db": "sqlite:///x.db", "out": tmp_path, "interim": True, "pdf": True}


def test_both_spellings_refuse_an_unlocked_trial(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    for command in ("analyse", "analyze"):
        code, _, err = run(capsys, command, "--db", db_url, "--out", str(tmp_path / command))
        assert code == 2 and "not locked" in err
        assert (DEPRECATED_SPELLING in err) is (command == "analyze")


def test_the_old_spelling_has_help_pointing_to_the_new(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", "--help")
    assert code == 0 and "use 'immunosep analyse'" in " ".join(out.split())


@pytest.mark.requirement("GSD-09")
def test_looks_prints_the_history_of_interim_looks(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    from immunosep.conduct.interim_looks import record_look
    from immunosep.store.db import make_engine, session_scope

    code, out, _ = run(capsys, "analyse", "--db", db_url, "--looks")
    assert code == 0 and "No interim look is recorded" in out and "Interim looks" not in out
    code, out, _ = run(capsys, "analyse", "--db", db_url, "--looks", "--json")
    assert code == 0 and json.loads(out) == []
    look = {
        "data_cut_sha256": "ab" * 32,
        "endpoint": "binary",
        "planned_information_rate": 1 / 3,
        "look": {
            "look": 1,
            "information_rate": 0.35,
            "z": 1.2,
            "efficacy_z": 3.6,
            "futility_z": 0.1,
            "decision": "continue to the next look",
        },
    }
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            assert record_look(s, None, look, run_by="statistician")[1] is True
        with session_scope(engine) as s:
            assert record_look(s, None, look, run_by="statistician")[1] is False  # same data cut, same look
    finally:
        engine.dispose()
    code, out, _ = run(capsys, "analyse", "--db", db_url, "--looks", "--json")
    rows = json.loads(out)
    assert code == 0 and [(r["look"], r["statistic"], r["run_by"]) for r in rows] == [
        (1, 1.2, "statistician")
    ]
    code, out, _ = run(capsys, "analyse", "--db", db_url, "--looks")
    assert code == 0 and "Interim looks" in out and "1.200" in out
    code, _, err = run(capsys, "analyse", "--db", db_url)
    assert code == 2 and "--out" in err
