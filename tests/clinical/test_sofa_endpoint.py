"""The SOFA-decrease endpoint kernel on hand-made patients (values worked out by hand in the comments)."""

from __future__ import annotations

import numpy as np
import pytest

from immunosep.clinical.sofa_endpoint import sofa_decrease, sofa_decrease_achieved
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol

NAN = np.nan
PRIMARY = default_protocol().endpoints.primary  # baseline day 1, window 2-9, >= 1.4, death 24 to day 15
D15 = default_protocol().endpoints.sofa_d15  # window 2-15


def _days(values: list[float], n_days: int = 15) -> list[float]:
    return values + [NAN] * (n_days - len(values))


@pytest.mark.requirement("PROT-END-01")
def test_complete_survivor_decrease_is_baseline_minus_window_mean() -> None:
    # baseline 10, days 2-9 = 9,9,8,8,8,8,8,8 -> mean 66/8 = 8.25 -> decrease 1.75 >= 1.4
    sofa = np.array([_days([10, 9, 9, 8, 8, 8, 8, 8, 8, 7, 7, 7, 7, 7, 7])])
    result = sofa_decrease(sofa, np.array([NAN]), PRIMARY)
    assert result.baseline[0] == 10
    assert result.window_mean[0] == pytest.approx(8.25)
    assert result.decrease[0] == pytest.approx(1.75)
    assert bool(result.achieved[0])
    assert not result.imputed.any()


@pytest.mark.requirement("PROT-END-01")
def test_death_on_day_3_scores_24_from_day_3_to_day_15() -> None:
    # baseline 8, day 2 = 9, death day 3 -> days 3..9 = 24 -> mean (9 + 7*24)/8 = 22.125
    sofa = np.array([_days([8, 9, 12])])  # a value recorded on the day of death is overwritten
    result = sofa_decrease(sofa, np.array([3.0]), PRIMARY)
    assert result.window_mean[0] == pytest.approx((9 + 7 * 24) / 8)
    assert result.decrease[0] == pytest.approx(8 - 22.125)
    assert not result.achieved[0]
    np.testing.assert_array_equal(result.imputed_death[0], [False, False] + [True] * 13)
    assert (result.sofa_imputed[0, 2:15] == 24).all()
    assert not result.carried_forward[0].any()


def test_death_on_baseline_day_keeps_the_baseline() -> None:
    sofa = np.array([_days([11])])
    result = sofa_decrease(sofa, np.array([1.0]), PRIMARY)
    assert result.baseline[0] == 11
    assert result.window_mean[0] == 24
    assert not result.imputed_death[0, 0]


@pytest.mark.requirement("PROT-END-01")
def test_discharge_on_day_6_carries_last_sofa_forward() -> None:
    # recorded days 1-6: 9,8,7,6,5,4; discharged -> days 7-9 carry 4 -> window 8,7,6,5,4,4,4,4 mean 5.25
    sofa = np.array([_days([9, 8, 7, 6, 5, 4])])
    result = sofa_decrease(sofa, np.array([NAN]), PRIMARY)
    assert result.window_mean[0] == pytest.approx(42 / 8)
    assert result.decrease[0] == pytest.approx(9 - 5.25)
    assert bool(result.achieved[0])
    np.testing.assert_array_equal(result.carried_forward[0], [False] * 6 + [True] * 9)
    assert not result.imputed_death.any()


def test_intermittent_missing_day_takes_the_previous_value() -> None:
    # day 4 missing between day 3 (=6) and day 5 (=4): LOCF gives day 4 = 6
    sofa = np.array([_days([8, 7, 6, NAN, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])])
    result = sofa_decrease(sofa, np.array([NAN]), PRIMARY)
    assert result.sofa_imputed[0, 3] == 6
    assert result.window_mean[0] == pytest.approx((7 + 6 + 6 + 4 * 5) / 8)
    np.testing.assert_array_equal(np.flatnonzero(result.imputed[0]), [3])


def test_discharge_then_death_combines_both_rules() -> None:
    # recorded 1-4 (10,9,8,7), discharged, dies on day 8 -> days 5-7 carry 7, days 8-9 score 24
    sofa = np.array([_days([10, 9, 8, 7])])
    result = sofa_decrease(sofa, np.array([8.0]), PRIMARY)
    assert result.window_mean[0] == pytest.approx((9 + 8 + 7 + 7 + 7 + 7 + 24 + 24) / 8)
    assert result.carried_forward[0, 4:7].all()
    assert result.imputed_death[0, 7:15].all()


@pytest.mark.requirement("PROT-END-01")
def test_missing_baseline_gives_nan_and_not_achieved() -> None:
    sofa = np.array([_days([NAN, 3, 3, 3, 3, 3, 3, 3, 3])])
    result = sofa_decrease(sofa, np.array([NAN]), PRIMARY)
    assert np.isnan(result.baseline[0])
    assert np.isnan(result.decrease[0])
    assert not result.achieved[0]


@pytest.mark.requirement("PROT-END-01")
def test_threshold_is_inclusive_and_windows_differ() -> None:
    # baseline 5, days 2-15 constant 3.6 -> decrease 1.4 exactly (in floating point 5 - 3.6 = 1.4000000000000004)
    sofa = np.array([[5.0] + [3.6] * 14])
    assert sofa_decrease(sofa, np.array([NAN]), PRIMARY).achieved[0]
    # day-15 window: days 10-15 worse -> not achieved on D15 while achieved on the primary window
    sofa2 = np.array([[6.0] + [4.0] * 8 + [6.0] * 6])
    assert sofa_decrease(sofa2, np.array([NAN]), PRIMARY).achieved[0]
    d15 = sofa_decrease(sofa2, np.array([NAN]), D15)
    assert d15.window_mean[0] == pytest.approx((8 * 4 + 6 * 6) / 14)
    assert not d15.achieved[0]


def test_short_matrix_is_padded_and_input_not_mutated() -> None:
    sofa = np.array([[7.0, 6.0, 5.0], [7.0, NAN, NAN]])
    before = sofa.copy()
    result = sofa_decrease(sofa, np.array([NAN, 2.0]), D15)
    np.testing.assert_array_equal(sofa, before)
    assert result.sofa_imputed.shape == (2, 15)
    assert result.window_mean[0] == pytest.approx((6 + 5 * 13) / 14)
    assert result.window_mean[1] == 24


def test_vectorized_equals_one_patient_at_a_time() -> None:
    rng = np.random.default_rng(7)
    sofa = rng.integers(0, 20, size=(200, 15)).astype(float)
    sofa[rng.random(sofa.shape) < 0.15] = NAN
    death = np.where(rng.random(200) < 0.3, rng.integers(1, 30, 200).astype(float), NAN)
    whole = sofa_decrease(sofa, death, PRIMARY)
    for i in range(0, 200, 17):
        one = sofa_decrease(sofa[i : i + 1], death[i : i + 1], PRIMARY)
        np.testing.assert_equal(one.decrease[0], whole.decrease[i])
        assert one.achieved[0] == whole.achieved[i]


@pytest.mark.parametrize(
    ("sofa", "death", "message"),
    [
        (np.zeros(15), np.array([NAN]), "2-D"),
        (np.zeros((2, 15)), np.array([NAN]), "one entry per patient"),
        (np.zeros((1, 15)), np.array([0.0]), "study day >= 1"),
    ],
)
def test_bad_shapes_raise_a_user_error(sofa: np.ndarray, death: np.ndarray, message: str) -> None:
    with pytest.raises(ImmunoSepError, match=message):
        sofa_decrease(sofa, death, PRIMARY)


@pytest.mark.parametrize(
    "endpoint", [PRIMARY, D15, PRIMARY.model_copy(update={"baseline_day": 2, "window_first_day": 3})]
)
def test_achieved_only_kernel_equals_the_full_kernel(endpoint: object) -> None:
    """``sofa_decrease_achieved`` (the Monte Carlo engine's) is ``sofa_decrease(...).achieved``: whole SOFA
    points with intermittent and trailing gaps, deaths on any day (baseline day included), missing
    baselines, short and long matrices, and fractional scores that decrease by the threshold exactly."""
    rng = np.random.default_rng(21)
    for n_days in (5, 9, 15, 20):
        sofa = rng.integers(0, 25, size=(3000, n_days)).astype(float)
        sofa[rng.random(sofa.shape) < 0.1] = NAN
        last = rng.integers(0, n_days + 1, 3000)
        sofa[np.arange(n_days)[None, :] >= last[:, None]] = NAN
        sofa[:200, 1:] = sofa[:200, :1] - 1.4  # decreases at the threshold (fractional scores)
        death = np.where(rng.random(3000) < 0.3, rng.integers(1, 25, 3000).astype(float), NAN)
        full = sofa_decrease(sofa, death, endpoint).achieved  # type: ignore[arg-type]
        np.testing.assert_array_equal(sofa_decrease_achieved(sofa, death, endpoint), full)  # type: ignore[arg-type]
        assert 0 < full.sum() < full.size


def test_achieved_only_kernel_checks_its_input() -> None:
    with pytest.raises(ImmunoSepError, match="study day >= 1"):
        sofa_decrease_achieved(np.zeros((1, 15)), np.array([0.0]), PRIMARY)
    with pytest.raises(ImmunoSepError, match="one entry per patient"):
        sofa_decrease_achieved(np.zeros((2, 15)), np.array([NAN]), PRIMARY)
    with pytest.raises(ImmunoSepError, match="2-D"):
        sofa_decrease_achieved(np.zeros(15), np.array([NAN]), PRIMARY)
