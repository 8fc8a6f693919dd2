"""ROC AUC, DeLong CI and Youden cut-off vs R pROC: validation/roc.R (pROC::aSAH)."""

from __future__ import annotations

import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.roc import roc_analysis

RTOL = 1e-6


@pytest.mark.requirement("STAT-05")
def test_against_proc(r_csv, r_reference):
    data = r_csv("asah")
    for case in r_reference("roc")["cases"]:
        # pROC "<" means controls < cases, i.e. our ">" (higher = case)
        direction = ">" if case["direction"] == "<" else "<"
        res = roc_analysis(data[case["marker"]], data["poor"] == 1, direction=direction)
        assert res.auc.estimate == pytest.approx(case["auc"], rel=RTOL)
        assert res.auc.ci == pytest.approx(tuple(case["ci"]), rel=RTOL)
        assert res.cutoff == pytest.approx(case["threshold"], rel=RTOL)
        assert res.sensitivity == pytest.approx(case["sensitivity"], rel=RTOL)
        assert res.specificity == pytest.approx(case["specificity"], rel=RTOL)
        assert res.youden == pytest.approx(case["sensitivity"] + case["specificity"] - 1, rel=RTOL)


def test_auto_direction_and_perfect_marker():
    res = roc_analysis([1, 2, 3, 10, 11, 12], [0, 0, 0, 1, 1, 1])
    assert res.auc.estimate == 1.0 and res.direction == ">" and res.cutoff == 6.5
    low = roc_analysis([10, 11, 12, 1, 2, 3], [0, 0, 0, 1, 1, 1])
    assert low.direction == "<" and low.auc.estimate == 1.0 and low.cutoff == 6.5


def test_needs_cases_and_controls():
    with pytest.raises(ImmunoSepError, match="one case and one control"):
        roc_analysis([1, 2], [1, 1])


def test_placements_count_as_the_comparison_matrix():
    """DeLong placements by binary search equal the cases x controls comparison matrix, bit for bit."""
    import numpy as np

    from immunosep.stats.roc import _placements

    rng = np.random.default_rng(7)
    cases, controls = rng.integers(0, 15, 300).astype(float), rng.integers(0, 20, 500).astype(float)
    psi = (cases[:, None] > controls[None, :]).astype(float) + 0.5 * (cases[:, None] == controls[None, :])
    v10, v01 = _placements(cases, controls)
    assert np.array_equal(v10, psi.mean(axis=1)) and np.array_equal(v01, psi.mean(axis=0))
