"""ADSL derivations on the hand-built trial (tests/analysis/handmade.py): every endpoint rule, keyed by usubjid.

Expected values are worked by hand from the protocol (docs/requirements.md "Endpoints"): baseline SOFA minus
the mean of days 2-9 (or 2-15) >= 1.4; death scores 24 from the day of death to day 15; the last recorded SOFA is carried
forward after discharge or a missing day.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from handmade import handmade_raw

from immunosep.analysis.adsl import (
    _merge,
    derive_adsl,
    derive_adsl_base,
    derive_vars_mortality,
    study_day_date,
)
from immunosep.analysis.raw import RawTrial
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol

NAN = np.nan

EXPECTED = pd.DataFrame(
    [
        # usubjid, analysed, sofa_baseline, mean_sofa_d2_9, primary, mean_sofa_d2_15, d15, imputed_days, locf,
        # death_28d, death_90d, sensfl, sidffl, sidf_reversal, sidf_day, sidf_last_draw_day, infection_day15
        ("S01-0001", 1, 10.0, 8.0, 1, 8.0, 1, 0, 0, 0, 0, 1, 1, 1, 2.0, 7.0, "resolution"),
        ("S01-0002", 1, 12.0, 181 / 8, 0, 325 / 14, 0, 7, 0, 1, 1, 1, 0, None, NAN, 2.0, ""),
        ("S02-0001", 1, 9.0, 42 / 8, 1, 66 / 14, 1, 3, 1, 0, 0, 0, 1, 1, 4.0, 15.0, "intermediate"),
        ("S02-0002", 1, 8.0, 59 / 8, 0, 101 / 14, 0, 1, 1, 0, 1, 1, 0, None, NAN, 4.0, "superinfection"),
        ("S03-0001", 1, NAN, 6.0, 0, 6.0, 0, 0, 0, 0, 0, 1, 1, 0, NAN, 4.0, "failure"),
        ("S03-0002", 0, NAN, NAN, None, NAN, None, None, None, None, None, 0, 0, None, NAN, NAN, ""),
    ],
    columns=[
        "usubjid",
        "analysed",
        "sofa_baseline",
        "mean_sofa_d2_9",
        "primary_endpoint",
        "mean_sofa_d2_15",
        "sofa_d15_endpoint",
        "sofa_imputed_days",
        "sofa_locf",
        "death_28d",
        "death_90d",
        "sensfl",
        "sidffl",
        "sidf_reversal",
        "sidf_reversal_day",
        "sidf_last_draw_day",
        "infection_day15",
    ],
).set_index("usubjid")

REQUIRED = [
    "usubjid",
    "siteid",
    "stratum",
    "arm",
    "analysed",
    "age",
    "sex",
    "cci",
    "apache2",
    "sofa_baseline",
    "mean_sofa_d2_9",
    "primary_endpoint",
    "sofa_d15_endpoint",
    "death_28d",
    "death_90d",
    "sidf_reversal",
    "infection_day15",
]


@pytest.fixture(scope="module")
def adsl() -> pd.DataFrame:
    return derive_adsl(handmade_raw(), default_protocol()).set_index("usubjid")


def test_adsl_has_required_columns_one_row_per_randomized_patient(adsl: pd.DataFrame) -> None:
    assert set(REQUIRED) <= {"usubjid", *adsl.columns}
    assert sorted(adsl.index) == sorted(EXPECTED.index)


@pytest.mark.parametrize("column", [c for c in EXPECTED.columns if c != "infection_day15"])
def test_adsl_numeric_values_match_hand_derivation(adsl: pd.DataFrame, column: str) -> None:
    got = pd.to_numeric(adsl[column], errors="coerce").astype(float).reindex(EXPECTED.index)
    want = pd.to_numeric(EXPECTED[column], errors="coerce").astype(float)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), equal_nan=True, err_msg=column)


def test_infection_state_and_empty_when_not_assessed(adsl: pd.DataFrame) -> None:
    assert adsl["infection_day15"].reindex(EXPECTED.index).tolist() == EXPECTED["infection_day15"].tolist()
    assert adsl.loc["S02-0002", "infection_day15_n"] == 4  # superinfection is the worst of four levels


@pytest.mark.requirement("ERASE-03")
def test_withdrawn_patient_keeps_only_the_fact_of_randomization(adsl: pd.DataFrame) -> None:
    row = adsl.loc["S03-0002"]
    assert (row["randfl"], row["analysed"], row["arm"], row["siteid"]) == (1, 0, "precision", "S03")
    assert pd.isna(row["age"]) and pd.isna(row["primary_endpoint"]) and row["stratum"] == ""
    assert row["sensfl"] == 0 and pd.isna(row["discharged_before_d9"])  # flags 0/1, values empty


def test_discharge_before_day9_flags_sensitivity_population(adsl: pd.DataFrame) -> None:
    assert adsl.loc["S02-0001", "discharged_before_d9"] == 1
    # Discharged on day 16 is after the primary window: stays in the sensitivity population.
    assert adsl.loc["S02-0002", "discharged_before_d9"] == 0


def test_baseline_support_from_day1_record(adsl: pd.DataFrame) -> None:
    assert adsl.loc["S01-0001", "mv_baseline"] == 1
    assert pd.isna(adsl.loc["S03-0001", "mv_baseline"])  # no day-1 record at all


def test_derivation_does_not_mutate_its_input() -> None:
    raw = handmade_raw()
    before = {
        name: getattr(raw, name).copy() for name in ("patients", "daily_sofa", "vital_status", "biomarkers")
    }
    derive_adsl(raw, default_protocol())
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(raw, name), frame)


def test_derivation_refuses_to_overwrite_a_variable() -> None:
    raw = handmade_raw()
    base = derive_adsl_base(raw)
    once = derive_vars_mortality(base, raw.vital_status, default_protocol())
    with pytest.raises(ImmunoSepError, match="overwrite"):
        derive_vars_mortality(once, raw.vital_status, default_protocol())


def test_missing_column_is_named() -> None:
    raw = handmade_raw()
    bad = RawTrial(**{**raw.__dict__, "patients": raw.patients.drop(columns=["cci"])})
    with pytest.raises(ImmunoSepError, match="cci"):
        derive_adsl(bad, default_protocol())


def test_unknown_arm_is_refused() -> None:
    raw = handmade_raw()
    patients = raw.patients.assign(arm=["precision", "placebo", "precision", "placebo", "verum"])
    with pytest.raises(ImmunoSepError, match="verum"):
        derive_adsl(RawTrial(**{**raw.__dict__, "patients": patients}), default_protocol())


def test_study_day_date_counts_day_one_as_the_reference_date_and_leaves_missing_days_empty():
    reference = pd.Series(pd.to_datetime(["2024-01-01 13:45", "2024-02-28 08:00", None, "2024-03-01 00:00"]))
    day = pd.Series([1.0, 3.0, 5.0, None])
    got = study_day_date(reference, day)
    assert got.dtype == "datetime64[ns]"
    assert got.tolist()[:2] == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-03-01")]  # a leap year
    assert got.isna().tolist() == [False, False, True, True]


def test_study_day_date_of_missing_days_warns_of_nothing_whatever_memory_held():
    # pandas' to_timedelta(unit="D") rounded, for each missing day, whatever a buffer it never set held:
    # numpy's "overflow encountered in multiply" now and then in the suite. Freed arrays of huge values
    # put such garbage where its buffers come from (numpy reuses small freed blocks).
    n = 200
    reference = pd.Series(pd.to_datetime(["2024-01-01"] * n))
    day = pd.Series([np.nan] * (n - 1) + [90.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            garbage = [np.full(n, 1e308) for _ in range(12)]
            del garbage
            got = study_day_date(reference, day)
    assert got.isna().sum() == n - 1
    assert got.iloc[-1] == pd.Timestamp("2024-03-30")


def _as_joined(dataset: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    return dataset.join(values, on="usubjid").reset_index(drop=True)


@pytest.mark.parametrize("index", [None, [5, 3, 9, 1]], ids=["range index", "other index"])
def test_merge_is_the_left_join_it_replaces(index) -> None:
    dataset = pd.DataFrame(
        {"usubjid": ["S01-0002", "S01-0001", "S02-0001", "S01-0002"], "age": [61, 70, 55, 61]}, index=index
    )
    values = pd.DataFrame(
        {
            "days": [3, 4],  # int64 -> float64 where a patient has no value
            "flag": [True, False],  # bool -> object
            "label": ["a", "b"],
            "n": pd.array([1, 2], dtype="Int8"),  # stays Int8, <NA> where missing
        },
        index=pd.Index(["S01-0002", "S02-0001"], name="usubjid"),
    )
    got = _merge(dataset, values)
    pd.testing.assert_frame_equal(got, _as_joined(dataset, values), check_exact=True)
    assert list(got.index) == [0, 1, 2, 3]


def test_merge_repeats_rows_for_a_repeated_patient_as_a_join_does() -> None:
    dataset = pd.DataFrame({"usubjid": ["S01-0001", "S01-0002"]})
    values = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0]}, index=pd.Index(["S01-0001", "S01-0001", "S01-0002"], name="usubjid")
    )
    pd.testing.assert_frame_equal(_merge(dataset, values), _as_joined(dataset, values), check_exact=True)
