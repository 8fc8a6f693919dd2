"""Unit conversions (bilirubin 1 mg/dL = 17.1 umol/L, creatinine 1 mg/dL = 88.4 umol/L, PaO2 1 kPa =
7.50062 mmHg) and the plausible ranges that refuse a value in the wrong unit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosep.clinical.units import (
    PLAUSIBLE,
    bilirubin_mg_dl,
    clip_plausible,
    creatinine_mg_dl,
    ferritin_ng_ml,
    measured,
    pao2_mmhg,
)
from immunosep.errors import ImmunoSepError


def test_conversions() -> None:
    assert creatinine_mg_dl(88.4, "umol/L") == 1.0
    assert creatinine_mg_dl(442, "µmol/L") == 5.0
    assert bilirubin_mg_dl(34.2, "umol/l") == 2.0
    assert bilirubin_mg_dl(2.5) == 2.5
    np.testing.assert_allclose(creatinine_mg_dl(np.array([88.4, 176.8]), "umol/L"), [1.0, 2.0])


def test_scalars_stay_scalars() -> None:
    assert isinstance(creatinine_mg_dl(1.0), float)
    assert isinstance(bilirubin_mg_dl([1.0]), np.ndarray)


def test_unknown_units() -> None:
    with pytest.raises(ImmunoSepError, match="creatinine in mg/dL or umol/L"):
        creatinine_mg_dl(1.0, "mmol/L")
    with pytest.raises(ImmunoSepError, match="pmol/L"):
        ferritin_ng_ml(100, "pmol/L")


# -- plausible ranges: one table, values that look like another unit ------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "unit", "stated", "fragment"),
    [
        # a bare bilirubin of 25 is 25 umol/L (1.46 mg/dL) far more often than 25 mg/dL
        ("bilirubin_mg_dl", 25, None, False, "looks like umol/L (25 umol/L = 1.462 mg/dL)"),
        ("bilirubin_mg_dl", 250, "mg/dL", True, "looks like umol/L"),
        ("bilirubin_mg_dl", 0.8, "umol/L", True, "looks like mg/dL"),
        ("pao2_mmhg", 8, None, True, "looks like kPa (8 kPa = 60.01 mmHg)"),
        ("pao2_mmhg", 8, "mmHg", True, "looks like kPa"),
        ("pao2_fio2_mmhg", 12, None, True, "looks like kPa"),
        ("creatinine_mg_dl", 150, None, False, "looks like umol/L (150 umol/L = 1.697 mg/dL)"),
        ("creatinine_mg_dl", 18, None, False, "state the unit"),
        ("creatinine_mg_dl", 1.5, "umol/L", True, "looks like mg/dL"),
        ("creatinine_mg_dl", 0.05, None, True, "below 0.1"),
        ("platelets_1e3_ul", 150000, None, True, "looks like /uL"),
        ("height_cm", 70, None, True, "looks like inch"),
        ("weight_kg", 4000, None, True, "above 400"),
        ("age_years", -1, None, True, "negative"),
        ("gcs", 12.5, None, True, "whole number"),
    ],
)
def test_implausible_values_name_the_likely_unit(
    name: str, value: float, unit: str | None, stated: bool, fragment: str
) -> None:
    with pytest.raises(ImmunoSepError) as info:
        measured(name, value, unit, stated=stated)
    assert fragment in str(info.value)
    assert info.value.field == name


def test_stated_units_are_accepted_across_the_whole_range() -> None:
    assert measured("bilirubin_mg_dl", 25, "mg/dL") == 25.0  # rare, but stated
    assert measured("bilirubin_mg_dl", 25, "umol/L") == pytest.approx(25 / 17.1)
    assert measured("creatinine_mg_dl", 150, "µmol/L") == pytest.approx(150 / 88.4)
    assert measured("creatinine_mg_dl", 18, "mg/dL") == 18.0
    assert measured("pao2_mmhg", 8, "kPa") == pytest.approx(60.005, abs=1e-3)  # 1 kPa = 7.50062 mmHg
    assert pao2_mmhg(13.3322, "kPa") == pytest.approx(100.0, abs=1e-6)
    # without a unit, values up to the unstated bound are read in the rule's unit
    assert measured("bilirubin_mg_dl", 20, stated=False) == 20.0
    assert measured("creatinine_mg_dl", 15, stated=False) == 15.0


def test_bounds_are_inclusive_and_missing_is_allowed_unless_required() -> None:
    for p in PLAUSIBLE.values():
        assert p.low < p.high
        assert measured(p.name, p.low) == p.low and measured(p.name, p.high) == p.high
        if p.unstated_high is not None:
            assert p.low < p.unstated_high < p.high
            assert p.other_units
        assert math.isnan(measured(p.name, float("nan")))
        with pytest.raises(ImmunoSepError, match="missing"):
            measured(p.name, float("nan"), missing_ok=False)


def test_arrays_name_the_first_offending_row() -> None:
    with pytest.raises(ImmunoSepError, match=r"column creatinine_umol_l = 2 umol/L .*row index 2"):
        measured(
            "creatinine_mg_dl", [80, np.nan, 2, 3], "umol/L", label="column creatinine_umol_l", rows=True
        )
    np.testing.assert_allclose(measured("creatinine_mg_dl", [88.4, np.nan], "umol/L"), [1.0, np.nan])


def test_clip_plausible_moves_generated_values_inside_and_keeps_missing() -> None:
    out = clip_plausible("creatinine_mg_dl", [0.04, 0.05, 1.2, 55.0, np.nan])
    np.testing.assert_array_equal(out[:4], [0.1, 0.1, 1.2, 40.0])
    assert np.isnan(out[4])
    measured("creatinine_mg_dl", out)  # nothing refused


def test_unknown_unit_names_the_accepted_ones() -> None:
    with pytest.raises(ImmunoSepError, match="PaO2 in mmHg or kPa"):
        measured("pao2_mmhg", 80, "cmH2O")


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(PLAUSIBLE)),
    value=st.one_of(
        st.floats(min_value=-50, max_value=3000),
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.integers(min_value=-5, max_value=3000),
        st.sampled_from([p.low for p in PLAUSIBLE.values()] + [p.high for p in PLAUSIBLE.values()]),
    ),
    stated=st.booleans(),
    missing_ok=st.booleans(),
)
def test_one_value_gives_what_an_array_of_it_gives(name, value, stated, missing_ok):
    """The scalar fast path of ``measured`` accepts, converts and refuses exactly as the array path."""

    def run(v):
        try:
            return "ok", measured(name, v, stated=stated, missing_ok=missing_ok)
        except ImmunoSepError as exc:
            return "refused", str(exc), exc.field

    scalar, array = run(value), run(np.asarray(value, dtype=np.float64))
    if scalar[0] == "ok":
        assert array[0] == "ok"
        assert type(scalar[1]) is float
        assert scalar[1] == array[1] or (math.isnan(scalar[1]) and math.isnan(array[1]))
    else:
        assert scalar == array
