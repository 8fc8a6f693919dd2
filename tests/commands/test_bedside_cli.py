"""Bedside commands through ``immunosep.cli.main``: JSON shape, tables, files, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunosep.cli import main
from immunosep.clinical.sofa import score_sofa_frame


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "classify", "--ferritin", "5200", "--hla-dr", "3000", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["stratum"] == "mals"
    precision_iv = data["regimen"]["precision"][0]
    assert (precision_iv["route"], precision_iv["drug"], precision_iv["dose"]) == ("iv", "anakinra", 200.0)
    assert {d["dummy"] for d in data["regimen"]["placebo"]} == {True}


@pytest.mark.parametrize(
    ("ferritin", "hla_dr", "stratum"),
    [("4421", "9000", "mals"), ("4420", "4999", "immunoparalysis"), ("4420", "5000", "unclassified")],
)
def test_classify_boundaries_on_the_command_line(
    capsys: pytest.CaptureFixture[str], ferritin: str, hla_dr: str, stratum: str
) -> None:
    code, out, _ = run(capsys, "classify", "--ferritin", ferritin, "--hla-dr", hla_dr, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["stratum"] == stratum
    assert (data["regimen"] == {}) is (stratum == "unclassified")


def test_classify_table_and_missing_hla_dr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "classify", "--ferritin", "800", "--hla-dr", "2000")
    assert code == 0 and "immunoparalysis" in out and "interferon gamma-1b" in out
    code, out, err = run(capsys, "classify", "--ferritin", "800")
    assert code == 2
    assert err.startswith("error: mHLA-DR is needed") and err.count("\n") == 1
    assert out == ""


def test_classify_wrong_ferritin_unit(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "classify", "--ferritin", "5.2", "--ferritin-unit", "ug/mL", "--hla-dr", "1")
    assert code == 2 and "multiply by 1000" in err


def test_sofa_json_keys_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "sofa",
        "--pao2-fio2", "280", "--platelets", "120", "--bilirubin", "2.6", "--map", "68",
        "--gcs", "13", "--creatinine", "1.9", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data == {
        "respiration": 2,
        "coagulation": 1,
        "liver": 2,
        "cardiovascular": 1,
        "cns": 1,
        "renal": 1,
        "total": 8,
        "missing": [],
    }


def test_sofa_all_flags(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "sofa",
        "--pao2", "60", "--fio2", "60", "--ventilated", "--platelets", "30",
        "--bilirubin", "120", "--bilirubin-unit", "umol/L", "--dopamine", "3", "--dobutamine", "2",
        "--epinephrine", "0", "--norepinephrine", "0.05", "--gcs", "7",
        "--creatinine", "300", "--creatinine-unit", "umol/L", "--urine-output", "450", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    # 60/0.6 = 100 with MV -> 3; platelets 30 -> 3; bilirubin 120/17.1 = 7.0 -> 3; norepinephrine 0.05 -> 3;
    # GCS 7 -> 3; creatinine 300/88.4 = 3.39 -> 2 but urine 450 < 500 -> 3
    assert [data[k] for k in ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")] == [
        3
    ] * 6
    assert data["total"] == 18


def test_sofa_missing_reported_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sofa", "--gcs", "14", "--json")
    assert json.loads(out)["missing"] == ["respiration", "coagulation", "liver", "cardiovascular", "renal"]
    code, out, _ = run(capsys, "sofa", "--gcs", "14")
    assert code == 0 and "missing (0)" in out and "total" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--gcs", "17"), "3 to 15"),
        (("--pao2", "80", "--fio2", "0.1"), "0.21-1.0"),
        (("--platelets", "-4"), "negative"),
        (("--creatinine", "2", "--creatinine-unit", "mmol/L"), "mg/dL or umol/L"),
        (("--input", "x.csv"), "--input and --output go together"),
    ],
)
def test_sofa_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    code, _, err = run(capsys, "sofa", *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err
    assert "Traceback" not in err


def _days(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "usubjid": [f"P{i:05d}" for i in range(n)],
            "pao2_fio2_mmhg": rng.uniform(60, 480, n),
            "ventilated": rng.random(n) < 0.5,
            "platelets_1e3_ul": rng.uniform(5, 400, n),
            "gcs": rng.integers(3, 16, n).astype(float),
            "creatinine_mg_dl": rng.uniform(0.4, 7, n),
        }
    )
    df.loc[rng.random(n) < 0.2, "gcs"] = np.nan
    return df


@pytest.mark.parametrize(("src", "dst"), [("csv", "parquet"), ("parquet", "csv"), ("parquet", "parquet")])
def test_sofa_file_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path, src: str, dst: str) -> None:
    days = _days(1234)
    inp, outp = tmp_path / f"daily.{src}", tmp_path / f"scored.{dst}"
    if src == "csv":
        days.to_csv(inp, index=False)
    else:
        days.to_parquet(inp, index=False)
    code, out, _ = run(capsys, "sofa", "--input", str(inp), "--output", str(outp), "--chunk-rows", "500")
    assert code == 0 and "1234 patient-days" in out
    got = pd.read_csv(outp) if dst == "csv" else pd.read_parquet(outp)
    want = score_sofa_frame(days)
    assert got["usubjid"].tolist() == days["usubjid"].tolist()
    for col in ("sofa_respiration", "sofa_coagulation", "sofa_cns", "sofa_renal", "sofa_total"):
        assert got[col].tolist() == want[col].tolist()
    assert got["sofa_missing"].fillna("").tolist() == want["sofa_missing"].tolist()


def test_sofa_file_error_names_file_row_and_leaves_no_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inp, outp = tmp_path / "daily.csv", tmp_path / "scored.parquet"
    pd.DataFrame({"gcs": [15, 14, 13, 12, 20]}).to_csv(inp, index=False)
    code, _, err = run(capsys, "sofa", "--input", str(inp), "--output", str(outp), "--chunk-rows", "2")
    assert code == 2
    assert "column gcs = 20" in err and "row 5" in err and str(inp) in err
    assert not outp.exists() and not list(tmp_path.glob("scored*"))


def test_sofa_file_problems(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys, "sofa", "--input", str(tmp_path / "none.csv"), "--output", str(tmp_path / "o.csv")
    )
    assert code == 2 and "does not exist" in err
    (tmp_path / "d.txt").write_text("gcs\n15\n")
    code, _, err = run(
        capsys, "sofa", "--input", str(tmp_path / "d.txt"), "--output", str(tmp_path / "o.csv")
    )
    assert code == 2 and ".csv or .parquet" in err
    (tmp_path / "d.csv").write_text("gcs\n15\n")
    code, _, err = run(
        capsys, "sofa", "--input", str(tmp_path / "d.csv"), "--output", str(tmp_path / "o.csv"), "--gcs", "3"
    )
    assert code == 2 and "drop --gcs" in err


def test_sofa_help_documents_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sofa", "--help")
    assert code == 0
    flat = " ".join(out.split())
    for col in (
        "pao2_fio2_mmhg",
        "platelets_1e3_ul",
        "norepinephrine_ug_kg_min",
        "urine_ml_day",
        "sofa_missing",
    ):
        assert col in flat


def test_regimen_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "regimen", "--stratum", "mals", "--arm", "precision", "--age", "70", "--weight-kg", "80",
        "--sex", "male", "--creatinine", "3.1", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    # (140 - 70) x 80 / (72 x 3.1) = 25.09 mL/min < 30: anakinra halved
    assert data["creatinine_clearance_ml_min"] == pytest.approx(25.0896, abs=1e-4)
    assert (data["iv"]["drug"], data["iv"]["dose"], data["iv"]["interval_hours"]) == ("anakinra", 100.0, 8)
    assert (data["sc"]["dummy"], data["sc"]["interval_hours"]) == (True, 48)
    assert data["renal_adjusted"] is True


def test_regimen_table_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    base = (
        "regimen",
        "--arm",
        "placebo",
        "--age",
        "50",
        "--weight-kg",
        "70",
        "--sex",
        "female",
        "--creatinine",
    )
    code, out, _ = run(capsys, *base, "1.0", "--stratum", "immunoparalysis")
    assert code == 0 and "Cockcroft-Gault" in out and "SC" in out
    code, _, err = run(capsys, *base, "1.0", "--stratum", "unclassified")
    assert code == 2 and "not enrolled" in err
    code, _, err = run(capsys, *base, "1.0", "--stratum", "mals", "--weight-policy", "ideal")
    assert code == 2 and "height" in err
    code, _, err = run(capsys, *base, "1.0", "--stratum", "mals", "--weight-policy", "lean")
    assert code == 2 and "actual, ideal or adjusted" in err


def test_real_exit_code_through_the_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "immunosep.cli", "sofa", "--gcs", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: gcs = 2") and proc.stderr.count("\n") == 1


# -- unit guards and SI units (issue 15, item 6) --------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--bilirubin", "25"), ("looks like umol/L", "--bilirubin-unit")),
        (("--creatinine", "150"), ("looks like umol/L (150 umol/L = 1.697 mg/dL)", "--creatinine-unit")),
        (("--creatinine", "18"), ("without a unit", "--creatinine-unit")),
        (("--pao2", "8", "--fio2", "0.5"), ("looks like kPa (8 kPa = 60.01 mmHg)", "--pao2-unit")),
        (("--pao2-fio2", "12"), ("looks like kPa", "--pao2-unit")),
        (("--creatinine", "1.2", "--creatinine-unit", "umol/L"), ("looks like mg/dL",)),
        (("--pao2", "80", "--fio2", "0.5", "--pao2-unit", "cmH2O"), ("mmHg or kPa",)),
    ],
)
def test_values_in_the_wrong_unit_are_refused_naming_it(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, "sofa", *args)
    assert code == 2 and err.count("\n") == 1
    for fragment in fragments:
        assert fragment in err


def test_si_units_are_accepted_and_score_like_conventional_units(capsys: pytest.CaptureFixture[str]) -> None:
    def scored(*args: str) -> dict[str, object]:
        code, out, err = run(capsys, "sofa", *args, "--json")
        assert code == 0, err
        return json.loads(out)  # type: ignore[no-any-return]

    # 205.2 umol/L = 12.0 mg/dL (liver 4); 442 umol/L = 5.0 mg/dL (renal 4); 8 kPa = 60.0 mmHg, /0.5 = 120
    si = scored(
        "--bilirubin", "205.2", "--bilirubin-unit", "umol/L", "--creatinine", "442", "--creatinine-unit",
        "µmol/L", "--pao2", "8", "--fio2", "0.5", "--pao2-unit", "kPa", "--ventilated",
    )  # fmt: skip
    conventional = scored(
        "--bilirubin", "12", "--bilirubin-unit", "mg/dL", "--creatinine", "5", "--pao2", "60.005",
        "--fio2", "0.5", "--ventilated",
    )  # fmt: skip
    assert si == conventional
    assert (si["liver"], si["renal"], si["respiration"]) == (4, 4, 3)
    # a stated mg/dL accepts a rare but real value that a bare number would not
    assert scored("--bilirubin", "25", "--bilirubin-unit", "mg/dL")["liver"] == 4
    # the PaO2/FiO2 ratio in kPa: 40 kPa = 300.03 mmHg (not below 300), 39.99 kPa = 299.95 mmHg
    assert scored("--pao2-fio2", "40", "--pao2-unit", "kPa")["respiration"] == 1
    assert scored("--pao2-fio2", "39.99", "--pao2-unit", "kPa")["respiration"] == 2


def test_file_columns_carry_their_unit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    inp, outp = tmp_path / "days.csv", tmp_path / "scored.csv"
    pd.DataFrame({"pao2_kpa": [8.0, 40.0], "fio2": [0.5, 0.6], "bilirubin_umol_l": [205.2, 10.0]}).to_csv(
        inp, index=False
    )
    code, _, err = run(capsys, "sofa", "--input", str(inp), "--output", str(outp))
    assert code == 0, err
    got = pd.read_csv(outp)
    assert got["sofa_respiration"].tolist() == [2, 0]  # 120 (not ventilated: at most 2) and 500 mmHg
    assert got["sofa_liver"].tolist() == [4, 0]
    pd.DataFrame({"pao2_mmhg": [80.0, 8.0], "fio2": [0.5, 0.5]}).to_csv(inp, index=False)
    code, _, err = run(capsys, "sofa", "--input", str(inp), "--output", str(outp))
    assert code == 2 and "column pao2_mmhg = 8" in err and "looks like kPa" in err and "row 2" in err
    pd.DataFrame({"creatinine_umol_l": [1.1]}).to_csv(inp, index=False)
    code, _, err = run(capsys, "sofa", "--input", str(inp), "--output", str(outp))
    assert code == 2 and "column creatinine_umol_l = 1.1 umol/L" in err and "looks like mg/dL" in err
    code, _, err = run(
        capsys, "sofa", "--input", str(inp), "--output", str(outp), "--creatinine-unit", "umol/L"
    )
    assert code == 2 and "drop --creatinine-unit" in err


def test_regimen_refuses_a_child_by_the_protocols_adult_age(capsys: pytest.CaptureFixture[str]) -> None:
    base = ("regimen", "--stratum", "mals", "--arm", "precision", "--weight-kg", "60", "--sex", "male")
    code, _, err = run(capsys, *base, "--age", "17", "--creatinine", "1.0")
    assert code == 2 and "age 17 is below 18 years" in err
    code, _, err = run(capsys, *base, "--age", "18", "--creatinine", "1.0")
    assert code == 0, err
    code, _, err = run(capsys, *base, "--age", "70", "--creatinine", "150")
    assert code == 2 and "looks like umol/L" in err and "--creatinine-unit" in err
    # 150 umol/L = 1.6968 mg/dL: (140 - 70) x 60 / (72 x 1.6968) = 34.38 mL/min
    code, out, err = run(
        capsys, *base, "--age", "70", "--creatinine", "150", "--creatinine-unit", "umol/L", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["creatinine_clearance_ml_min"] == pytest.approx(34.377, abs=1e-3)


def test_regimen_never_prints_a_rounded_clearance_on_the_wrong_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (140 - 70) x 80 / (72 x 2.596) = 29.9606 mL/min: "30.0 - below 30" was printed before
    code, out, _ = run(
        capsys, "regimen", "--stratum", "mals", "--arm", "precision", "--age", "70", "--weight-kg", "80",
        "--sex", "male", "--creatinine", "2.596",
    )  # fmt: skip
    flat = " ".join(out.split())
    assert code == 0 and "29.96 mL/min (below 30 mL/min: IV dose and volume x 0.5)" in flat
    assert "30.0" not in flat
