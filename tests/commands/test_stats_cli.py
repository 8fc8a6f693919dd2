"""``immunosep stats compare|ordinal``, ``sample-size`` and ``reproduce`` from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from immunosep.cli import app, main

runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_compare_reproduces_published_primary_endpoint():
    # JAMA 2025 Table 2: 17.2 (6.8 to 27.2); OR 2.48 (1.42 to 4.32); P = .002
    out = run_json("stats", "compare", "46/131", "26/145")
    assert out["difference_pct"] == 17.2 and out["difference_ci95"] == [6.8, 27.2]
    assert out["odds_ratio"] == 2.48 and out["odds_ratio_ci95"] == [1.42, 4.32]
    assert out["p_fisher"] == 0.002 and out["p_fisher_text"] == ".002"
    assert out["relative_risk"] == 1.96
    assert out["nnt"]["kind"] == "NNT" and out["nnt"]["value"] == 5.8 and out["nnt"]["ci95"] == [3.7, 14.7]
    assert out["methods"]["difference"] == "newcombe hybrid score"
    assert out["methods"]["odds_ratio"] == "woolf logit"
    assert out["exact"]["p_fisher"] == pytest.approx(0.00151765594, rel=1e-9)


def test_compare_chi_square_on_request_and_bad_outcome_direction():
    out = run_json("stats", "compare", "57/131", "72/145", "--test", "chi2-yates", "--outcome", "bad")
    assert out["p_chi2_yates"] == 0.37 and out["p_fisher"] == 0.33
    assert out["nnt"]["ci_crosses_zero"] is True


def test_compare_table_for_people():
    result = runner.invoke(app, ["stats", "compare", "46/131", "26/145"])
    assert result.exit_code == 0
    assert "6.8 to 27.2" in result.stdout and ".002" in result.stdout


def test_ordinal_published_infection_table():
    out = run_json(
        "stats",
        "ordinal",
        "--levels",
        "resolution,intermediate,failure,superinfection",
        "--a",
        "58,11,32,30",
        "--b",
        "46,9,44,46",
    )
    assert out["odds_ratio"] == 0.59 and out["odds_ratio_ci95"] == [0.38, 0.92]
    assert out["p"] == 0.02 and out["n"] == 276


@pytest.mark.parametrize(
    ("method", "per_group", "total_with_dropout"),
    [("fisher-exact", 117, 276), ("normal", 109, 257), ("normal-cc", 119, 280), ("arcsine", 108, 255)],
)
def test_sample_size_methods(method, per_group, total_with_dropout):
    out = run_json(
        "sample-size", "--p1", "0.40", "--p2", "0.20", "--alpha", "0.05", "--power", "0.90",
        "--method", method, "--dropout", "0.15",
    )  # fmt: skip
    assert out["per_group"] == per_group and out["total"] == 2 * per_group
    assert out["total_with_dropout"] == total_with_dropout
    assert out["achieved_power"] >= 0.90


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats", "compare", "150/131", "26/145"], "more than the total"),
        (["stats", "compare", "--", "-1/131", "26/145"], "events/total"),
        (["stats", "compare", "46of131", "26/145"], "events/total"),
        (["stats", "ordinal", "--levels", "only", "--a", "3", "--b", "4"], "at least two levels"),
        (["stats", "ordinal", "--levels", "x,y", "--a", "3,-1", "--b", "4,1"], "non-negative"),
        (
            ["sample-size", "--p1", "0.4", "--p2", "0.2", "--power", "1.2"],
            "power must be strictly between 0 and 1",
        ),
        (["sample-size", "--p1", "0.4", "--p2", "0.2", "--method", "magic"], "unknown sample-size method"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_reproduce_json_and_files(tmp_path):
    from immunosep.published import published_reference
    from immunosep.reproduce import NOT_IN_REFERENCE, STATUSES

    out = run_json("reproduce", "--out", str(tmp_path))
    assert out["source"] == published_reference()["source"] and out["statuses"] == list(STATUSES)
    assert sum(out["summary"].values()) == len(out["rows"]) and "recomputed" not in out["summary"]
    endpoints = {r["endpoint"] for r in out["rows"]}
    assert {
        "primary_sofa_d9", "primary_mals", "primary_immunoparalysis", "mortality_28d", "mortality_90d",
        "sofa_d15_decrease", "sidf_reversal", "infection_day15", "adjusted_primary",
    } <= endpoints  # fmt: skip
    for row in out["rows"]:
        assert row["status"] in STATUSES and "published" in row
        assert (row["published"] is None) == (row["status"] == NOT_IN_REFERENCE)
    assert (tmp_path / "reproduce.json").exists() and (tmp_path / "reproduce.csv").exists()
    written = json.loads((tmp_path / "reproduce.json").read_text())
    assert written["rows"] == out["rows"]
    header = (tmp_path / "reproduce.csv").read_text().splitlines()[0]
    assert header.startswith("section,endpoint,statistic,published,recomputed,status,method,explanation")


def test_reproduce_table_for_people():
    result = runner.invoke(app, ["reproduce"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "mismatch [1]" in text and "double rounding" in text and "= printed" in text
    assert "not in the published reference file" in text and "not recomputable" in text
    assert "recomputed:" not in text  # the summary line counts statuses; none is merely "recomputed"
