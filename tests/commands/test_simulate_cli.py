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


def test_design_json_is_identical_on_one_and_two_workers(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("simulate", "design", "--trials", "450", "--patients", "120", "--seed", "7", "--json")
    code1, out1, _ = _run(capsys, *args, "--workers", "1")
    code2, out2, _ = _run(capsys, *args, "--workers", "2")
    assert code1 == code2 == 0
    assert out1 == out2
    data = json.loads(out1)
    assert set(data["power"]) == {"primary", "mortality_28d"}
    assert set(data["mean_rates"]["primary"]) == {"precision", "placebo"}
    assert 0 < data["mean_rates"]["primary"]["precision"] < 1  # a proportion, not percent
    assert data["mcse"]["primary"] > 0


def test_design_null_reports_type1_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "simulate",
        "design",
        "--trials",
        "200",
        "--patients",
        "80",
        "--null",
        "--workers",
        "1",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert "power" not in data
    assert set(data["type1_error"]) == {"primary", "mortality_28d"}


def test_design_with_a_bad_protocol_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code, _, err = _run(capsys, "simulate", "design", "--protocol", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "does not exist" in err
