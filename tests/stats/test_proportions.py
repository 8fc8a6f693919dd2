"""Two proportions vs R: validation/proportions.R (prop.test Wilson + Newcombe method 10, epitools, fisher.test)."""

from __future__ import annotations

import math

import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.proportions import (
    compare_proportions,
    number_needed,
    odds_ratio,
    proportion_difference,
    relative_risk,
    two_by_two_test,
)
from immunosep.stats.results import Estimate

RTOL = 1e-6


@pytest.mark.requirement("STAT-02")
def test_against_r_reference(r_reference):
    for case in r_reference("proportions")["cases"]:
        x1, n1, x2, n2 = case["counts"]
        for method, key in (("newcombe", "newcombe"), ("wald", "wald"), ("agresti-caffo", "agresti_caffo")):
            d = proportion_difference(x1, n1, x2, n2, method=method)
            assert d.estimate == pytest.approx(case["difference"], rel=RTOL)
            assert d.ci == pytest.approx(tuple(case[key]), rel=RTOL), (case["counts"], method)
        o = odds_ratio(x1, n1, x2, n2)
        assert o.estimate == pytest.approx(case["odds_ratio"], rel=RTOL)
        assert o.ci == pytest.approx(tuple(case["odds_ratio_ci"]), rel=RTOL)
        r = relative_risk(x1, n1, x2, n2)
        assert r.estimate == pytest.approx(case["relative_risk"], rel=RTOL)
        assert r.ci == pytest.approx(tuple(case["relative_risk_ci"]), rel=RTOL)
        assert two_by_two_test(x1, n1, x2, n2).p == pytest.approx(case["fisher_p"], rel=RTOL)
        d90 = proportion_difference(x1, n1, x2, n2, conf_level=0.90)
        assert d90.ci == pytest.approx(tuple(case["newcombe90"]), rel=RTOL)
        assert odds_ratio(x1, n1, x2, n2, conf_level=0.90).ci == pytest.approx(
            tuple(case["odds_ratio_ci90"]), rel=RTOL
        )
        chi = two_by_two_test(x1, n1, x2, n2, test="chi2")
        assert (chi.statistic, chi.p) == pytest.approx((case["chi2"], case["chi2_p"]), rel=RTOL)
        yates = two_by_two_test(x1, n1, x2, n2, test="chi2-yates")
        assert (yates.statistic, yates.p) == pytest.approx(
            (case["chi2_yates"], case["chi2_yates_p"]), rel=RTOL
        )


def test_fisher_reports_sample_or_not_r_conditional_mle(r_reference):
    """scipy's Fisher statistic is the sample OR; R's fisher.test estimate is the conditional MLE (differs)."""
    case = r_reference("proportions")["cases"][0]
    t = two_by_two_test(*case["counts"])
    assert t.statistic == pytest.approx(case["odds_ratio"], rel=RTOL)
    assert t.statistic != pytest.approx(case["fisher_conditional_mle"], rel=1e-3)


def test_published_primary_endpoint_to_printed_precision():
    # JAMA 2025 Table 2: 17.2 (6.8 to 27.2), OR 2.48 (1.42 to 4.32), P = .002
    r = compare_proportions(46, 131, 26, 145)
    assert round(100 * r.difference.estimate, 1) == 17.2
    assert (round(100 * r.difference.ci_low, 1), round(100 * r.difference.ci_high, 1)) == (6.8, 27.2)
    assert (
        round(r.odds_ratio.estimate, 2),
        round(r.odds_ratio.ci_low, 2),
        round(r.odds_ratio.ci_high, 2),
    ) == (
        2.48,
        1.42,
        4.32,
    )
    assert round(r.test.p, 3) == 0.002
    assert r.difference.method == "newcombe hybrid score"
    assert r.test.method == "two-sided Fisher, sum of small p"


@pytest.mark.requirement("STAT-02")
def test_nnt_from_newcombe_interval():
    r = compare_proportions(46, 131, 26, 145)
    nn = r.number_needed
    assert nn.kind == "NNT" and not nn.crosses_zero
    assert nn.value == pytest.approx(1 / r.difference.estimate)
    assert (nn.ci_low, nn.ci_high) == pytest.approx((1 / r.difference.ci_high, 1 / r.difference.ci_low))
    assert nn.display == "NNT 5.8 (3.7 to 14.7)"


def test_nnt_altman_convention_when_ci_crosses_zero():
    # death is a bad outcome: fewer deaths in the first group is a benefit
    r = compare_proportions(57, 131, 72, 145, outcome="bad")
    nn = r.number_needed
    assert nn.crosses_zero and nn.kind == "NNT"
    assert nn.ci_low == pytest.approx(1 / -r.difference.ci_low)  # benefit limit
    assert nn.ci_high == pytest.approx(1 / r.difference.ci_high)  # harm limit
    assert "NNT(benefit) 5.7 to infinity to NNH(harm) 17.9" in nn.display


def test_nnh_when_first_group_is_worse():
    d = Estimate("difference", -0.2, -0.3, -0.1, math.nan, "test", 100)
    nn = number_needed(d, outcome="good")
    assert nn.kind == "NNH" and (nn.value, nn.ci_low, nn.ci_high) == pytest.approx((5, 1 / 0.3, 10))


def test_zero_cell_woolf_is_undefined_unless_haldane():
    o = odds_ratio(6, 10, 0, 10)
    assert math.isinf(o.estimate) and math.isnan(o.ci_low) and "zero cell" in o.method
    h = odds_ratio(6, 10, 0, 10, haldane=True)
    assert h.estimate == pytest.approx((6.5 * 10.5) / (4.5 * 0.5)) and "haldane" in h.method
    assert h.ci_low < h.estimate < h.ci_high


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((150, 131, 26, 145), "more than the total"),
        ((-1, 131, 26, 145), "negative"),
        ((1, 0, 26, 145), "at least 1"),
        ((1.5, 10, 2, 10), "whole number"),
    ],
)
def test_bad_counts_raise_clear_errors(args, message):
    with pytest.raises(ImmunoSepError, match=message):
        compare_proportions(*args)


def test_unknown_methods_are_rejected():
    with pytest.raises(ImmunoSepError, match="unknown difference CI method"):
        proportion_difference(1, 10, 2, 10, method="exact")
    with pytest.raises(ImmunoSepError, match="unknown test"):
        two_by_two_test(1, 10, 2, 10, test="barnard")
