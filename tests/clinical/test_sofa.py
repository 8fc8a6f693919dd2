"""SOFA (Vincent 1996) with the half-open boundaries of MIMIC-IV ``sofa.sql`` and R ricu."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sofa_reference import reference_sofa

from immunosep.clinical.sofa import (
    COMPONENTS,
    SOFA_INPUT_COLUMNS,
    SofaScore,
    missing_names,
    pao2_fio2_ratio,
    score_sofa_arrays,
    score_sofa_frame,
    sofa,
)
from immunosep.clinical.units import PLAUSIBLE
from immunosep.errors import ImmunoSepError

# -- boundaries: every threshold of the table, on both sides (value, expected points) -------------------
# Source: Vincent JL et al. Intensive Care Med 1996;22:707-10, Table 1; strict/non-strict sides as in
# MIMIC-IV concepts/score/sofa.sql and ricu::sofa_score.

RESPIRATION = [
    (400.0, False, 0),
    (399.9, False, 1),
    (300.0, False, 1),
    (299.9, False, 2),
    (200.0, True, 2),
    (199.9, True, 3),
    (199.9, False, 2),  # without ventilation at most 2
    (100.0, True, 3),
    (99.9, True, 4),
    (50.0, False, 2),
]


@pytest.mark.parametrize(("pf", "vent", "points"), RESPIRATION)
@pytest.mark.requirement("PROT-SOFA-01")
def test_respiration_boundaries(pf: float, vent: bool, points: int) -> None:
    assert sofa(pao2_fio2_mmhg=pf, ventilated=vent).respiration == points


@pytest.mark.parametrize(
    ("platelets", "points"),
    [(150.0, 0), (149.9, 1), (100.0, 1), (99.9, 2), (50.0, 2), (49.9, 3), (20.0, 3), (19.9, 4), (0.0, 4)],
)
@pytest.mark.requirement("PROT-SOFA-01")
def test_coagulation_boundaries(platelets: float, points: int) -> None:
    assert sofa(platelets_1e3_ul=platelets).coagulation == points


@pytest.mark.parametrize(
    ("bilirubin", "points"),
    [(1.19, 0), (1.2, 1), (1.99, 1), (2.0, 2), (5.99, 2), (6.0, 3), (11.99, 3), (12.0, 4)],
)
@pytest.mark.requirement("PROT-SOFA-01")
def test_liver_boundaries(bilirubin: float, points: int) -> None:
    assert sofa(bilirubin_mg_dl=bilirubin).liver == points


@pytest.mark.parametrize(
    ("kwargs", "points"),
    [
        ({"map_mmhg": 70.0}, 0),
        ({"map_mmhg": 69.9}, 1),
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 0.0}, 0),  # a recorded 0 is "not given"
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 0.01}, 2),
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 5.0}, 2),
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 5.01}, 3),
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 15.0}, 3),
        ({"map_mmhg": 80.0, "dopamine_ug_kg_min": 15.01}, 4),
        ({"map_mmhg": 80.0, "dobutamine_ug_kg_min": 0.0}, 0),
        ({"map_mmhg": 80.0, "dobutamine_ug_kg_min": 20.0}, 2),  # any dobutamine, whatever the dose
        ({"epinephrine_ug_kg_min": 0.01}, 3),
        ({"epinephrine_ug_kg_min": 0.1}, 3),
        ({"epinephrine_ug_kg_min": 0.11}, 4),
        ({"norepinephrine_ug_kg_min": 0.1}, 3),
        ({"norepinephrine_ug_kg_min": 0.100001}, 4),
        ({"norepinephrine_ug_kg_min": 0.0, "map_mmhg": 65.0}, 1),
        ({"map_mmhg": 50.0, "dobutamine_ug_kg_min": 5.0}, 2),  # the highest level wins
        ({"dopamine_ug_kg_min": 3.0, "norepinephrine_ug_kg_min": 0.2}, 4),
    ],
)
@pytest.mark.requirement("PROT-SOFA-01")
def test_cardiovascular_boundaries(kwargs: dict[str, float], points: int) -> None:
    assert sofa(**kwargs).cardiovascular == points  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("gcs", "points"),
    [(15, 0), (14, 1), (13, 1), (12, 2), (10, 2), (9, 3), (6, 3), (5, 4), (3, 4)],
)
@pytest.mark.requirement("PROT-SOFA-01")
def test_cns_boundaries(gcs: int, points: int) -> None:
    assert sofa(gcs=gcs).cns == points


@pytest.mark.parametrize(
    ("creatinine", "urine", "points"),
    [
        (1.19, None, 0),
        (1.2, None, 1),
        (1.99, None, 1),
        (2.0, None, 2),
        (3.49, None, 2),
        (3.5, None, 3),
        (4.99, None, 3),
        (5.0, None, 4),
        (None, 500.0, 0),
        (None, 499.9, 3),
        (None, 200.0, 3),
        (None, 199.9, 4),
        (1.0, 150.0, 4),  # the worse of the two
        (5.5, 2000.0, 4),
        (2.5, 400.0, 3),
    ],
)
@pytest.mark.requirement("PROT-SOFA-01")
def test_renal_boundaries(creatinine: float | None, urine: float | None, points: int) -> None:
    assert sofa(creatinine_mg_dl=creatinine, urine_ml_day=urine).renal == points


@pytest.mark.requirement("PROT-SOFA-02")
def test_boundaries_given_in_umol_l_land_on_the_boundary() -> None:
    # 1.2 mg/dL = 106.08 umol/L creatinine = 20.52 umol/L bilirubin (factors 88.4 and 17.1)
    s = sofa(
        creatinine_mg_dl=106.08, creatinine_unit="umol/L", bilirubin_mg_dl=20.52, bilirubin_unit="µmol/L"
    )
    assert (s.renal, s.liver) == (1, 1)
    s = sofa(
        creatinine_mg_dl=106.07, creatinine_unit="umol/L", bilirubin_mg_dl=20.51, bilirubin_unit="umol/L"
    )
    assert (s.renal, s.liver) == (0, 0)


def test_float32_inputs_are_compared_in_their_own_precision() -> None:
    out = score_sofa_arrays(
        norepinephrine_ug_kg_min=np.array([0.1, 0.11], dtype=np.float32),
        creatinine_mg_dl=np.array([1.2, 1.19], dtype=np.float32),
    )
    assert out["sofa_cardiovascular"].tolist() == [3, 4]
    assert out["sofa_renal"].tolist() == [1, 0]


# -- worked examples ------------------------------------------------------------------------------------
def test_readme_bedside_example() -> None:
    # Hand-scored from Vincent 1996 Table 1: P/F 280 -> 2, platelets 120 -> 1, bilirubin 2.6 -> 2,
    # MAP 68 -> 1, GCS 13 -> 1, creatinine 1.9 -> 1; total 8.
    s = sofa(
        pao2_fio2_mmhg=280,
        platelets_1e3_ul=120,
        bilirubin_mg_dl=2.6,
        map_mmhg=68,
        gcs=13,
        creatinine_mg_dl=1.9,
    )
    assert s == SofaScore(2, 1, 2, 1, 1, 1, 8, ())


def test_worst_possible_day_scores_24() -> None:
    # Every organ at its maximum in Vincent 1996 Table 1.
    s = sofa(
        pao2_mmhg=55,
        fio2=1.0,
        ventilated=True,
        platelets_1e3_ul=10,
        bilirubin_mg_dl=15,
        map_mmhg=45,
        norepinephrine_ug_kg_min=0.5,
        gcs=3,
        creatinine_mg_dl=6,
        urine_ml_day=50,
    )
    assert s == SofaScore(4, 4, 4, 4, 4, 4, 24, ())


@pytest.mark.requirement("PROT-SOFA-01")
def test_mimic_iv_convention_ventilation_caps_respiration() -> None:
    # MIMIC-IV sofa.sql: pao2fio2ratio_vent < 100 -> 4, < 200 -> 3; pao2fio2ratio_novent only reaches 2.
    assert sofa(pao2_fio2_mmhg=80, ventilated=True).respiration == 4
    assert sofa(pao2_fio2_mmhg=80, ventilated=False).respiration == 2


def test_pao2_and_fio2_separately_fraction_or_percent() -> None:
    # 120 mmHg on FiO2 40 % = 300 mmHg: exactly on the boundary, 1 point
    assert sofa(pao2_mmhg=120, fio2=40).respiration == 1
    assert sofa(pao2_mmhg=120, fio2=0.4).respiration == 1
    assert sofa(pao2_mmhg=121, fio2=0.4).respiration == 1  # 302.5: not below 300
    assert sofa(pao2_mmhg=160, fio2=0.4).respiration == 0  # 400: not below 400
    # 60 mmHg on room air: 60 / 0.21 = 285.7 mmHg, below 300 -> 2 points
    assert float(pao2_fio2_ratio(60, 0.21)[0]) == pytest.approx(285.714285714)
    assert sofa(pao2_mmhg=60, fio2=21).respiration == 2


# -- missing components ---------------------------------------------------------------------------------
@pytest.mark.requirement("PROT-SOFA-02")
def test_missing_components_score_zero_and_are_reported() -> None:
    s = sofa(platelets_1e3_ul=40)
    assert s.total == 3
    assert s.missing == ("respiration", "liver", "cardiovascular", "cns", "renal")


def test_cardiovascular_missing_only_when_map_and_every_vasopressor_missing() -> None:
    assert "cardiovascular" in sofa(gcs=15).missing
    assert "cardiovascular" not in sofa(gcs=15, norepinephrine_ug_kg_min=0.0).missing
    assert "cardiovascular" not in sofa(gcs=15, map_mmhg=80).missing


def test_renal_missing_only_when_creatinine_and_urine_missing() -> None:
    assert "renal" in sofa(gcs=15).missing
    assert "renal" not in sofa(urine_ml_day=1500).missing
    assert "renal" not in sofa(creatinine_mg_dl=0.8).missing


def test_missing_names_lookup() -> None:
    assert missing_names(np.array([0, 1, 63], dtype=np.uint8)).tolist() == [
        "",
        "respiration",
        ",".join(COMPONENTS),
    ]


# -- plausibility ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"platelets_1e3_ul": -1}, "platelets_1e3_ul = -1 is negative"),
        ({"platelets_1e3_ul": 150000}, "x10^3/uL"),
        ({"gcs": 2}, "3 to 15"),
        ({"gcs": 16}, "3 to 15"),
        ({"gcs": 12.5}, "whole number"),
        ({"pao2_mmhg": 80, "fio2": 0.1}, "0.21-1.0"),
        ({"pao2_mmhg": 80, "fio2": 5}, "21-100"),
        ({"pao2_mmhg": 80, "fio2": 150}, "FiO2 = 150"),
        ({"pao2_mmhg": -3, "fio2": 0.5}, "PaO2"),
        ({"pao2_mmhg": 80}, "together"),
        ({"pao2_fio2_mmhg": 200, "fio2": 0.5}, "not both"),
        ({"bilirubin_mg_dl": 2, "bilirubin_unit": "g/L"}, "mg/dL or umol/L"),
        ({"bilirubin_mg_dl": 250}, "17.1 umol/L"),
        ({"creatinine_mg_dl": 300}, "88.4 umol/L"),
        ({"norepinephrine_ug_kg_min": 50}, "ug/kg/min"),
        ({"urine_ml_day": -5}, "negative"),
        ({"map_mmhg": float("inf")}, "map_mmhg"),
    ],
)
@pytest.mark.requirement("PROT-SOFA-02")
def test_implausible_values_raise_with_what_to_fix(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ImmunoSepError) as info:
        sofa(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_frame_error_names_column_and_first_offending_row() -> None:
    df = pd.DataFrame({"gcs": [15, 14, np.nan, 17, 18], "platelets_1e3_ul": [100, 100, 100, 100, 100]})
    with pytest.raises(ImmunoSepError, match=r"column gcs = 17 .*row index 3"):
        score_sofa_frame(df)
    df = pd.DataFrame({"pao2_mmhg": [80, 80], "fio2": [0.5, 0.1]})
    with pytest.raises(ImmunoSepError, match=r"column fio2 = 0.1 .*row index 1"):
        score_sofa_frame(df)
    df = pd.DataFrame({"gcs": [15], "ventilated": ["yes"]})
    with pytest.raises(ImmunoSepError, match="ventilated"):
        score_sofa_frame(df)


def test_frame_without_any_sofa_column_is_refused() -> None:
    with pytest.raises(ImmunoSepError, match="none of the SOFA input columns"):
        score_sofa_frame(pd.DataFrame({"patient": [1]}))


def test_no_input_at_all_is_refused() -> None:
    with pytest.raises(ImmunoSepError, match="no SOFA input"):
        score_sofa_arrays()


# -- frames ---------------------------------------------------------------------------------------------
def test_frame_adds_columns_and_never_mutates_input() -> None:
    df = pd.DataFrame(
        {
            "usubjid": ["A", "B"],
            "pao2_fio2_mmhg": [150.0, np.nan],
            "ventilated": [True, False],
            "gcs": [8, 15],
            "creatinine_umol_l": [442.0, np.nan],  # 5.0 mg/dL
        }
    )
    before = df.copy()
    out = score_sofa_frame(df)
    pd.testing.assert_frame_equal(df, before)
    assert out["usubjid"].tolist() == ["A", "B"]
    assert out["sofa_respiration"].tolist() == [3, 0]
    assert out["sofa_cns"].tolist() == [3, 0]
    assert out["sofa_renal"].tolist() == [4, 0]
    assert out["sofa_total"].tolist() == [10, 0]
    assert out["sofa_total"].dtype == np.int8
    assert out["sofa_missing"].tolist() == [
        "coagulation,liver,cardiovascular",
        "respiration,coagulation,liver,cardiovascular,renal",
    ]


def test_frame_with_nullable_columns_and_missing_ventilation() -> None:
    df = pd.DataFrame(
        {
            "pao2_fio2_mmhg": pd.array([90, None], dtype="Float64"),
            "ventilated": pd.array([None, True], dtype="boolean"),
            "gcs": pd.array([None, 7], dtype="Int64"),
        }
    )
    out = score_sofa_frame(df)
    assert out["sofa_respiration"].tolist() == [2, 0]  # unknown ventilation caps at 2
    assert out["sofa_cns"].tolist() == [0, 3]


# -- vectorized == scalar == independent reference ------------------------------------------------------
def _random_days(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            # values snapped to the grid of the thresholds so that boundaries are hit often
            "pao2_fio2_mmhg": rng.choice(
                [50, 99.9, 100, 150, 199.9, 200, 250, 299.9, 300, 399.9, 400, 500], n
            ),
            "ventilated": rng.random(n) < 0.5,
            "platelets_1e3_ul": rng.choice([5, 19.9, 20, 49.9, 50, 99.9, 100, 149.9, 150, 300], n),
            "bilirubin_mg_dl": rng.choice([0.5, 1.19, 1.2, 1.99, 2.0, 5.99, 6.0, 11.99, 12.0, 20], n),
            "map_mmhg": rng.choice([50, 69.9, 70, 90], n),
            "dopamine_ug_kg_min": rng.choice([0, 0, 0, 2, 5, 5.01, 15, 15.01], n),
            "dobutamine_ug_kg_min": rng.choice([0, 0, 0, 5], n),
            "epinephrine_ug_kg_min": rng.choice([0, 0, 0, 0.05, 0.1, 0.11], n),
            "norepinephrine_ug_kg_min": rng.choice([0, 0, 0, 0.05, 0.1, 0.11], n),
            "gcs": rng.integers(3, 16, n).astype(float),
            "creatinine_mg_dl": rng.choice([0.6, 1.19, 1.2, 1.99, 2.0, 3.49, 3.5, 4.99, 5.0, 8], n),
            "urine_ml_day": rng.choice([100, 199.9, 200, 499.9, 500, 2000], n),
        }
    )
    for col in SOFA_INPUT_COLUMNS:
        if col != "ventilated":
            df.loc[rng.random(n) < 0.15, col] = np.nan
    return df


@pytest.mark.requirement("PROT-SOFA-01")
def test_vectorized_matches_independent_reference_on_random_days() -> None:
    df = _random_days(20_000, seed=11)
    out = score_sofa_frame(df)
    got = out[[f"sofa_{c}" for c in COMPONENTS]].to_numpy()
    want = np.array([reference_sofa(row) for row in df.to_dict("records")])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out["sofa_total"].to_numpy(), want.sum(axis=1))


def test_vectorized_matches_scalar_wrapper() -> None:
    df = _random_days(300, seed=5)
    out = score_sofa_frame(df)

    def opt(v: float) -> float | None:
        return None if math.isnan(v) else float(v)

    for i, row in enumerate(df.to_dict("records")):
        s = sofa(
            pao2_fio2_mmhg=opt(row["pao2_fio2_mmhg"]),
            ventilated=bool(row["ventilated"]),
            platelets_1e3_ul=opt(row["platelets_1e3_ul"]),
            bilirubin_mg_dl=opt(row["bilirubin_mg_dl"]),
            map_mmhg=opt(row["map_mmhg"]),
            dopamine_ug_kg_min=opt(row["dopamine_ug_kg_min"]),
            dobutamine_ug_kg_min=opt(row["dobutamine_ug_kg_min"]),
            epinephrine_ug_kg_min=opt(row["epinephrine_ug_kg_min"]),
            norepinephrine_ug_kg_min=opt(row["norepinephrine_ug_kg_min"]),
            gcs=opt(row["gcs"]),
            creatinine_mg_dl=opt(row["creatinine_mg_dl"]),
            urine_ml_day=opt(row["urine_ml_day"]),
        )
        assert s.total == out["sofa_total"].iat[i]
        assert ",".join(s.missing) == out["sofa_missing"].iat[i]


def test_blocks_are_stitched_correctly_across_block_edges() -> None:
    n = (1 << 15) * 2 + 17
    rng = np.random.default_rng(3)
    gcs = rng.integers(3, 16, n).astype(float)
    out = score_sofa_arrays(gcs=gcs)
    want = np.select([gcs < 6, gcs < 10, gcs < 13, gcs < 15], [4, 3, 2, 1], 0)
    np.testing.assert_array_equal(out["sofa_cns"], want)
    assert (out["sofa_missing_mask"] == 0b101111).all()  # everything but cns missing


# -- property: a worse value never lowers a score -------------------------------------------------------
def _maybe(lo: float, hi: float) -> st.SearchStrategy[float | None]:
    return st.none() | st.floats(lo, hi, allow_nan=False)


# Each input's plausible range comes from the one table the rules check with.
# the keywords of sofa() are the columns of SOFA_INPUT_COLUMNS and the names of the plausible-range table
KEYWORDS = tuple(c for c in SOFA_INPUT_COLUMNS if c != "ventilated")
RANGE = {kw: (PLAUSIBLE[kw].low, PLAUSIBLE[kw].high) for kw in KEYWORDS}
DAY = st.fixed_dictionaries(
    {
        **{kw: _maybe(*RANGE[kw]) for kw in KEYWORDS if kw != "gcs"},
        "ventilated": st.booleans(),
        "gcs": st.none() | st.integers(3, 15).map(float),
        "bilirubin_unit": st.just("mg/dL"),  # stated: the whole plausible range is accepted
        "creatinine_unit": st.just("mg/dL"),
    }
)
# For each input: which way is worse, its range, and the component it drives.
_DIRECTION = {
    "pao2_fio2_mmhg": (-1, "respiration"),
    "platelets_1e3_ul": (-1, "coagulation"),
    "bilirubin_mg_dl": (+1, "liver"),
    "map_mmhg": (-1, "cardiovascular"),
    "dopamine_ug_kg_min": (+1, "cardiovascular"),
    "dobutamine_ug_kg_min": (+1, "cardiovascular"),
    "epinephrine_ug_kg_min": (+1, "cardiovascular"),
    "norepinephrine_ug_kg_min": (+1, "cardiovascular"),
    "gcs": (-1, "cns"),
    "creatinine_mg_dl": (+1, "renal"),
    "urine_ml_day": (-1, "renal"),
}
WORSE = {kw: (d, *RANGE[kw], component) for kw, (d, component) in _DIRECTION.items()}


@settings(max_examples=300, deadline=None)
@given(day=DAY, field=st.sampled_from(sorted(WORSE)), fraction=st.floats(0, 1))
def test_a_worse_value_never_lowers_a_score(
    day: dict[str, float | None], field: str, fraction: float
) -> None:
    direction, lo, hi, component = WORSE[field]
    before = sofa(**day)  # type: ignore[arg-type]
    current = day[field]
    if current is None:  # from "not measured" to the worst value cannot lower the score either
        worse = lo if direction < 0 else hi
    elif direction < 0:
        worse = current - fraction * (current - lo)
    else:
        worse = current + fraction * (hi - current)
    if field == "gcs":
        worse = float(math.floor(worse)) if direction < 0 else float(math.ceil(worse))
    after = sofa(**{**day, field: worse})  # type: ignore[arg-type]
    assert getattr(after, component) >= getattr(before, component)
    assert after.total >= before.total


@settings(max_examples=100, deadline=None)
@given(day=DAY)
def test_ventilation_never_lowers_respiration(day: dict[str, float | None]) -> None:
    off = sofa(**{**day, "ventilated": False})  # type: ignore[arg-type]
    on = sofa(**{**day, "ventilated": True})  # type: ignore[arg-type]
    assert on.respiration >= off.respiration
    assert 0 <= on.total <= 24


def test_frame_text_in_a_numeric_column_is_named() -> None:
    df = pd.DataFrame({"gcs": ["15", "confused"]})
    with pytest.raises(ImmunoSepError, match=r"column gcs has a non-numeric value 'confused' .*row index 1"):
        score_sofa_frame(df)


def test_two_dimensional_inputs_keep_their_shape() -> None:
    # [patients, days]: the simulation's layout
    gcs = np.array([[15, 14, 9], [3, np.nan, 12]])
    plt = np.array([[200, 140, 40], [10, 99, 150]])
    vent = np.zeros((2, 3), dtype=bool)
    out = score_sofa_arrays(gcs=gcs, platelets_1e3_ul=plt, ventilated=vent)
    assert out["sofa_cns"].shape == (2, 3)
    assert out["sofa_cns"].tolist() == [[0, 1, 3], [4, 0, 2]]
    assert out["sofa_total"].tolist() == [[0, 2, 6], [8, 2, 2]]
    with pytest.raises(ImmunoSepError, match=r"gcs has shape \(2, 3\), expected \(3,\)"):
        score_sofa_arrays(gcs=gcs, platelets_1e3_ul=[1.0, 2.0, 3.0])
    with pytest.raises(ImmunoSepError, match="ventilated has shape"):
        score_sofa_arrays(gcs=gcs, ventilated=[True])


# -- SI units in tables and at the bedside ---------------------------------------------------------------
def test_frame_accepts_pao2_in_kpa_and_refuses_two_oxygen_columns() -> None:
    df = pd.DataFrame({"pao2_fio2_kpa": [40.0, 39.99, 13.0], "ventilated": [False, False, True]})
    # 40 kPa = 300.03 mmHg, 39.99 kPa = 299.95 mmHg, 13 kPa = 97.5 mmHg (ventilated: 4)
    assert score_sofa_frame(df)["sofa_respiration"].tolist() == [1, 2, 4]
    with pytest.raises(ImmunoSepError, match="not pao2_fio2_mmhg and pao2_kpa"):
        score_sofa_frame(pd.DataFrame({"pao2_fio2_mmhg": [200.0], "pao2_kpa": [10.0], "fio2": [0.5]}))
    with pytest.raises(ImmunoSepError, match="fio2 needs pao2_mmhg or pao2_kpa"):
        score_sofa_frame(pd.DataFrame({"fio2": [0.5], "gcs": [15]}))
    with pytest.raises(ImmunoSepError, match="pao2_kpa and fio2 must be given together"):
        score_sofa_frame(pd.DataFrame({"pao2_kpa": [10.0]}))
    with pytest.raises(ImmunoSepError, match=r"column pao2_fio2_kpa = 900 kPa .*row index 0"):
        score_sofa_frame(pd.DataFrame({"pao2_fio2_kpa": [900.0]}))


def test_bedside_sofa_reads_a_bare_lab_value_in_mg_dl_unless_it_looks_like_umol_l() -> None:
    assert sofa(bilirubin_mg_dl=12).liver == 4  # a bare 12: mg/dL
    with pytest.raises(ImmunoSepError, match="looks like umol/L"):
        sofa(bilirubin_mg_dl=25)
    assert sofa(bilirubin_mg_dl=25, bilirubin_unit="mg/dL").liver == 4
    assert sofa(bilirubin_mg_dl=25, bilirubin_unit="umol/L").liver == 1  # 1.46 mg/dL
    with pytest.raises(ImmunoSepError, match="looks like kPa"):
        sofa(pao2_mmhg=8, fio2=0.5)
    assert sofa(pao2_mmhg=8, fio2=0.5, pao2_unit="kPa", ventilated=True).respiration == 3  # 120 mmHg
