"""Sample size vs R: validation/sample_size.R (power.prop.test, Fleiss, Cohen h, fisher.test enumeration)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from immunosep.errors import ImmunoSepError
from immunosep.stats.sample_size import fisher_exact_power, normal_power, sample_size_two_proportions

RTOL = 1e-6


@pytest.mark.requirement("STAT-06")
def test_formulas_against_r(r_reference):
    for d in r_reference("sample_size")["designs"]:
        kw = dict(alpha=d["alpha"], power=d["power"])
        normal = sample_size_two_proportions(d["p1"], d["p2"], method="normal", **kw)
        assert normal.per_group_exact == pytest.approx(d["normal_n"], rel=RTOL)
        assert normal.per_group == math.ceil(d["normal_n"])
        assert normal_power(normal.per_group, d["p1"], d["p2"], d["alpha"]) == pytest.approx(
            d["normal_power_at_ceiling"], rel=RTOL
        )
        cc = sample_size_two_proportions(d["p1"], d["p2"], method="normal-cc", **kw)
        assert cc.per_group_exact == pytest.approx(d["normal_cc_n"], rel=RTOL)
        arc = sample_size_two_proportions(d["p1"], d["p2"], method="arcsine", **kw)
        assert arc.per_group_exact == pytest.approx(d["arcsine_n"], rel=RTOL)


@pytest.mark.requirement("STAT-06")
def test_exact_fisher_power_against_r_enumeration(r_reference):
    for row in r_reference("sample_size")["fisher_power_40_20"]:
        assert fisher_exact_power(row["n"], 0.40, 0.20, 0.05) == pytest.approx(row["power"], rel=RTOL)


@pytest.mark.requirement("STAT-06")
def test_published_plan_117_per_group_is_the_exact_fisher_size():
    # JAMA 2025 methods: 40% vs 20%, two-sided alpha .05, power .90 -> "117 per group", 280 planned
    res = sample_size_two_proportions(0.40, 0.20, alpha=0.05, power=0.90, method="fisher-exact", dropout=0.15)
    assert res.per_group == 117 and res.total == 234
    assert res.achieved_power >= 0.90 > fisher_exact_power(116, 0.40, 0.20, 0.05)
    assert res.total_with_dropout == math.ceil(234 / 0.85) == 276
    cc = sample_size_two_proportions(0.40, 0.20, alpha=0.05, power=0.90, method="normal-cc", dropout=0.15)
    assert (cc.per_group, cc.total_with_dropout) == (119, 280)


def test_enumeration_pvalues_equal_scipy_fisher():
    """The hypergeometric shortcut gives the same rejection region as calling scipy's fisher_exact."""
    n, alpha, p1, p2 = 12, 0.05, 0.6, 0.2
    power = 0.0
    for x1 in range(n + 1):
        for x2 in range(n + 1):
            if sps.fisher_exact([[x1, n - x1], [x2, n - x2]]).pvalue <= alpha:
                power += sps.binom.pmf(x1, n, p1) * sps.binom.pmf(x2, n, p2)
    assert fisher_exact_power(n, p1, p2, alpha) == pytest.approx(power, rel=1e-12)


def test_achieved_power_reaches_target_for_every_method():
    for method in ("normal", "normal-cc", "arcsine", "fisher-exact"):
        res = sample_size_two_proportions(0.5, 0.2, power=0.8, method=method)
        assert res.achieved_power >= 0.8 and res.total == 2 * res.per_group
        assert res.total_with_dropout == res.total


def test_dropout_inflation_rounds_up():
    res = sample_size_two_proportions(0.4, 0.2, power=0.9, method="normal", dropout=0.10)
    assert res.total_with_dropout == math.ceil(res.total / 0.9)
    assert np.isclose(res.dropout, 0.10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(power=1.2), "power must be strictly between 0 and 1"),
        (dict(power=0.0), "power must be strictly between 0 and 1"),
        (dict(alpha=1.0), "alpha must be"),
        (dict(dropout=1.0), "dropout must be"),
        (dict(method="simulation"), "unknown sample-size method"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ImmunoSepError, match=message):
        sample_size_two_proportions(0.4, 0.2, **kwargs)
    with pytest.raises(ImmunoSepError, match="equal"):
        sample_size_two_proportions(0.3, 0.3)


@pytest.mark.parametrize("p2", [0.505, 0.52, 0.55])
def test_exact_search_beyond_its_bound_is_refused_at_once(p2):
    """0.5 vs 0.505 once tried to allocate 329 GiB; 0.5 vs 0.52 ran for minutes. Now: refused, naming the n."""
    needed = math.ceil(sample_size_two_proportions(0.5, p2, method="normal").per_group_exact)
    assert needed > 1000
    with pytest.raises(ImmunoSepError, match=f"needs {needed:,} per group.*bounded to 1,000.*normal-cc"):
        sample_size_two_proportions(0.5, p2, method="fisher-exact")


@pytest.mark.parametrize("method", ["normal", "normal-cc", "arcsine", "fisher-exact"])
@pytest.mark.parametrize(("p1", "p2", "alpha"), [(1e-300, 2e-300, 0.05), (0.5, 0.2, 1e-300)])
def test_vanishing_difference_or_alpha_is_refused_not_overflowed(method, p1, p2, alpha):
    """An infinite n once ended in OverflowError (math.ceil(inf)); now a message saying what to check."""
    with pytest.raises(ImmunoSepError, match=r"too small to detect.*check p1, p2, alpha and power"):
        sample_size_two_proportions(p1, p2, alpha=alpha, method=method)
