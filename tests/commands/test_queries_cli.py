"""``immunosep queries run-checks``: the edit-check sweep from the command line, as a data manager."""

from __future__ import annotations

import json

import pytest

from immunosep.cli import main
from immunosep.conduct import crf, queries
from immunosep.store.db import session_scope


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


@pytest.mark.requirement("QRY-07")
def test_run_checks_opens_what_is_new_once_and_refuses_other_roles(trial, enroll, capsys) -> None:  # type: ignore[no-untyped-def]
    p = enroll()
    inv, dm = trial.actors["inv1"], trial.actors["dm"]
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, ventilated=True))  # XF-02 on save
        q = next(iter(queries.list_queries(s, dm, type="automatic")))
    with trial.engine.begin() as conn:  # the query lost (say, closed by mistake outside the workflow)
        conn.exec_driver_sql(f"DELETE FROM queries WHERE id = {q.id}")
    code, out, _ = _run(["queries", "run-checks", "--db", trial.url, "--as", "DM", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"patients": 1, "opened": 1, "closed": 0, "kept": 0}
    code, out, _ = _run(["queries", "run-checks", "--db", trial.url, "--as", "dm", "--json"], capsys)
    assert code == 0 and json.loads(out) == {"patients": 1, "opened": 0, "closed": 0, "kept": 1}
    code, _, err = _run(["queries", "run-checks", "--db", trial.url, "--as", "mon1"], capsys)
    assert code == 2 and "may not run the edit checks" in err
    code, _, err = _run(["queries", "run-checks", "--db", trial.url, "--as", "nobody"], capsys)
    assert code == 2 and "no user 'nobody'" in err
