"""``immunosep simulate ...`` from the command line (through the real entry point)."""

from __future__ import annotations

import json

import pytest

from immunosep.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_calibrate_json_lists_targets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "simulate", "calibrate", "--trials", "5", "--seed", "3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["trials"] == 5
    names = {t["target"] for t in data["targets"]}
    assert "28-day mortality" in names
    assert all({"published", "simulated_mean", "tolerance", "within"} <= set(t) for t in data["targets"])


def test_calibrate_markdown_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "simulate", "calibrate", "--trials", "3", "--markdown")
    assert code == 0
    assert "| target | group | published |" in out


def test_bad_trial_count_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "simulate", "calibrate", "--trials", "0")
    assert code == 2
    assert err.strip() == "error: --trials must be a positive whole number, got 0"
