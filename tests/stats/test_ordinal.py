"""Proportional odds vs R MASS::polr: validation/models.R (ImmunoSep infection state on day 15)."""

from __future__ import annotations

import math
import warnings

import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.ordinal import proportional_odds_counts, proportional_odds_rows

LEVELS = ["resolution", "intermediate", "failure", "superinfection"]


@pytest.mark.requirement("STAT-05")
def test_published_infection_table_against_polr(r_reference):
    ref = r_reference("models")["polr"]
    res = proportional_odds_counts(LEVELS, [58, 11, 32, 30], [46, 9, 44, 46])
    assert math.log(res.odds_ratio.estimate) == pytest.approx(ref["coef"], rel=1e-6)
    assert res.thresholds == pytest.approx(tuple(ref["zeta"]), rel=1e-6)
    # both SEs come from a numerical Hessian (polr: optim's; statsmodels: numdifftools-style): 5 digits
    se = (math.log(res.odds_ratio.ci_high) - math.log(res.odds_ratio.estimate)) / 1.959963984540054
    assert se == pytest.approx(ref["se"], rel=1e-5)
    assert res.odds_ratio.p == pytest.approx(ref["p"], rel=1e-4)
    assert res.odds_ratio.estimate < 1  # fewer worse outcomes with precision immunotherapy


@pytest.mark.requirement("STAT-05")
def test_three_levels_against_polr(r_reference):
    ref = r_reference("models")["polr_three_levels"]
    res = proportional_odds_counts(LEVELS[:3], [10, 5, 3], [4, 6, 9])
    assert math.log(res.odds_ratio.estimate) == pytest.approx(ref["coef"], rel=1e-6)
    assert res.thresholds == pytest.approx(tuple(ref["zeta"]), rel=1e-6)


def test_rows_and_counts_agree():
    rows = ["resolution"] * 5 + ["failure"] * 3 + ["resolution"] * 2 + ["failure"] * 6
    group = [True] * 8 + [False] * 8
    a = proportional_odds_rows(rows, group, ["resolution", "failure"])
    b = proportional_odds_counts(["resolution", "failure"], [5, 3], [2, 6])
    assert a.odds_ratio.estimate == pytest.approx(b.odds_ratio.estimate)
    # two levels: the proportional-odds OR is the plain 2x2 OR of the worse level
    assert a.odds_ratio.estimate == pytest.approx((3 * 2) / (5 * 6), rel=1e-5)


@pytest.mark.parametrize(
    ("levels", "a", "b", "message"),
    [
        (["only"], [3], [4], "at least two levels"),
        (LEVELS, [1, 2, 3], [1, 2, 3, 4], "one count per level"),
        (LEVELS, [1, -2, 3, 4], [1, 2, 3, 4], "non-negative"),
        (["x", "y"], [3, 0], [4, 0], "only one level"),
        (["x", "y"], [0, 0], [4, 1], "at least one patient"),
    ],
)
def test_bad_tables(levels, a, b, message):
    with pytest.raises(ImmunoSepError, match=message):
        proportional_odds_counts(levels, a, b)


def test_separated_groups_are_not_estimable_instead_of_overflowing() -> None:
    """Group a never worse than group b's best (quasi-separation): the MLE odds ratio is infinite.
    A 24-patient virtual trial (seed 1) once crashed the SAP here with an OverflowError."""
    levels = ["resolution", "intermediate", "failure", "superinfection"]
    outcome = ["resolution", "resolution", "intermediate", "intermediate", "failure", "superinfection"]
    with pytest.raises(ImmunoSepError, match="separation"):
        proportional_odds_rows(outcome, [True, True, True, False, False, False], levels)


def test_counted_cells_fit_as_one_row_per_patient():
    """The fit on (level, group) cells with patient counts is statsmodels' OrderedModel on the expanded rows."""
    import numpy as np
    import pandas as pd
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    counts = [58, 11, 32, 30, 46, 9, 44, 46]
    codes = np.repeat(np.tile(np.arange(4), 2), counts)
    group = np.repeat([1.0, 0.0], [131, 145])
    y = pd.Series(pd.Categorical.from_codes(codes, categories=LEVELS, ordered=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BFGS stops on precision loss before gtol 1e-10, as in the engine
        ref = OrderedModel(y, pd.DataFrame({"group_a": group}), distr="logit").fit(
            method="bfgs", disp=False, maxiter=2000, gtol=1e-10
        )
    res = proportional_odds_rows([LEVELS[c] for c in codes], group == 1, LEVELS)
    assert math.log(res.odds_ratio.estimate) == pytest.approx(float(ref.params["group_a"]), rel=1e-7)
    se = (math.log(res.odds_ratio.ci_high) - math.log(res.odds_ratio.ci_low)) / (2 * 1.959963984540054)
    assert se == pytest.approx(float(ref.bse["group_a"]), rel=1e-5)  # both from numerical Hessians
