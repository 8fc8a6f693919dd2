"""SIDF reversal: MALS ferritin fall >= 15 % sustained; immunoparalysis mHLA-DR > 8000 sustained."""

from __future__ import annotations

import pytest

from immunosep.clinical.sidf import SidfReversal, sidf_reversal
from immunosep.errors import ImmunoSepError

DAYS = [1, 2, 4, 7, 15, 21, 28]  # protocol biospecimen days


def test_mals_reversal_sustained() -> None:
    # baseline 10000; day 4 fall to 8500 = exactly 15 %, then lower
    r = sidf_reversal("mals", DAYS, [10000, 9000, 8500, 7000, 5000, 4000, 3000])
    assert r == SidfReversal(reversed=True, day=4, later_draws=6)


def test_mals_just_short_of_15_percent_does_not_count() -> None:
    r = sidf_reversal("mals", DAYS, [10000, 9000, 8501, 8501, 8600, 8700, 8501])
    assert r == SidfReversal(False, None, 6)


def test_mals_rebound_moves_the_day_to_the_last_sustained_run() -> None:
    # fell on day 2, rebounded above 85 % on day 7, fell again from day 15 on
    r = sidf_reversal("mals", DAYS, [10000, 8000, 7000, 9000, 6000, 5000, 4000])
    assert r == SidfReversal(True, 15, 6)


def test_mals_rebound_at_the_last_draw_is_not_reversal() -> None:
    r = sidf_reversal("mals", DAYS, [10000, 8000, 7000, 6000, 5000, 4000, 9000])
    assert r == SidfReversal(False, None, 6)


def test_immunoparalysis_strictly_above_8000() -> None:
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 6000, 8001, 9000, 12000, 15000, 20000])
    assert r == SidfReversal(True, 4, 6)
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 6000, 8000, 9000, 12000, 15000, 20000])
    assert r.day == 7  # 8000 itself is not above 8000


def test_too_few_later_draws_is_not_reversal() -> None:
    assert sidf_reversal("mals", [1, 2], [10000, 2000]) == SidfReversal(False, None, 1)
    assert sidf_reversal("mals", [1, 2, 4], [10000, 2000, 2000]) == SidfReversal(True, 2, 2)


def test_missing_draws_are_skipped_and_not_counted() -> None:
    # only one non-missing later draw: not enough
    r = sidf_reversal("mals", DAYS, [10000, None, 5000, None, None, None, None])
    assert r == SidfReversal(False, None, 1)
    # a missing draw inside the run neither breaks nor confirms it
    r = sidf_reversal("immunoparalysis", DAYS, [3000, 9000, float("nan"), 9500, None, None, None])
    assert r == SidfReversal(True, 2, 2)


def test_missing_baseline_cannot_reverse() -> None:
    assert sidf_reversal("mals", DAYS, [None, 1, 1, 1, 1, 1, 1]) == SidfReversal(False, None, 6)


def test_only_baseline() -> None:
    assert sidf_reversal("immunoparalysis", [1], [2000]) == SidfReversal(False, None, 0)


def test_bad_series_are_refused() -> None:
    with pytest.raises(ImmunoSepError, match="strictly increasing"):
        sidf_reversal("mals", [1, 4, 2], [1, 1, 1])
    with pytest.raises(ImmunoSepError, match="one value"):
        sidf_reversal("mals", [1, 2], [1])
    with pytest.raises(ImmunoSepError, match="non-negative"):
        sidf_reversal("mals", [1, 2, 4], [100, -1, 50])
    with pytest.raises(ImmunoSepError, match="not 'unclassified'"):
        sidf_reversal("unclassified", [1, 2, 4], [1, 1, 1])
    with pytest.raises(ImmunoSepError, match="at least the baseline"):
        sidf_reversal("mals", [], [])
