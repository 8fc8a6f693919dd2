"""Sepsis-3 (Singer et al. JAMA 2016): SOFA >= 2 on arrival, or an acute rise >= 2, with infection."""

from __future__ import annotations

import numpy as np
import pytest

from immunosep.clinical.sepsis3 import meets_sepsis3, sepsis3_arrays
from immunosep.errors import ImmunoSepError


@pytest.mark.parametrize(
    ("now", "baseline", "infection", "expected"),
    [
        (2, None, True, True),  # on arrival from the emergency department
        (1, None, True, False),
        (2, None, False, False),  # no suspected infection: no sepsis
        (5, 3, True, True),  # hospitalized: rise of exactly 2
        (5, 4, True, False),  # rise of 1 even though SOFA >= 2
        (2, 0, True, True),
        (1, 0, True, False),
        (8, 6, False, False),
    ],
)
@pytest.mark.requirement("PROT-ELIG-01")
def test_sepsis3(now: int, baseline: int | None, infection: bool, expected: bool) -> None:
    assert meets_sepsis3(now, sofa_baseline=baseline, suspected_infection=infection) is expected


def test_vectorized_matches_scalar() -> None:
    now = np.array([2, 1, 5, 5])
    base = np.array([np.nan, np.nan, 3, 4])
    got = sepsis3_arrays(now, base, [True, True, True, True])
    assert got.tolist() == [True, False, True, False]


@pytest.mark.parametrize("bad", [-1, 25, 2.5])
def test_not_a_sofa_total(bad: float) -> None:
    with pytest.raises(ImmunoSepError, match="not a SOFA total"):
        meets_sepsis3(bad, suspected_infection=True)  # type: ignore[arg-type]
