"""Properties that must hold for any valid 2x2 input (hypothesis), beyond the R reference points."""

from __future__ import annotations

import math

from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from immunosep.stats import compare_proportions, fisher_exact_power, format_p

counts = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
@example((0, 3), (25, 25))  # statsmodels' Newcombe bound was -1.0000000000000002 here
@example((25, 25), (0, 3))
def test_intervals_contain_their_estimates(a, b):
    (x1, n1), (x2, n2) = a, b
    r = compare_proportions(x1, n1, x2, n2)
    d = r.difference
    assert -1 <= d.ci_low <= d.estimate + 1e-12 and d.estimate - 1e-12 <= d.ci_high <= 1
    if 0 < x1 < n1 and 0 < x2 < n2:
        o = r.odds_ratio
        assert o.ci_low < o.estimate < o.ci_high
        assert math.isclose(o.estimate, (x1 * (n2 - x2)) / ((n1 - x1) * x2))
    assert 0 <= r.test.p <= 1 + 1e-12


@settings(max_examples=40, deadline=None)
@given(counts, counts)
def test_swapping_groups_mirrors_the_difference(a, b):
    (x1, n1), (x2, n2) = a, b
    ab, ba = compare_proportions(x1, n1, x2, n2), compare_proportions(x2, n2, x1, n1)
    assert math.isclose(ab.difference.ci_low, -ba.difference.ci_high, abs_tol=1e-9)
    assert math.isclose(ab.test.p, ba.test.p, rel_tol=1e-9)
    assert ab.number_needed.kind != ba.number_needed.kind or ab.difference.estimate == 0


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=2, max_value=15), st.floats(0.05, 0.95), st.floats(0.05, 0.95))
def test_exact_power_equals_brute_force_fisher(n, p1, p2):
    brute = sum(
        sps.binom.pmf(x1, n, p1) * sps.binom.pmf(x2, n, p2)
        for x1 in range(n + 1)
        for x2 in range(n + 1)
        if sps.fisher_exact([[x1, n - x1], [x2, n - x2]]).pvalue <= 0.05
    )
    assert math.isclose(fisher_exact_power(n, p1, p2, 0.05), brute, rel_tol=1e-9, abs_tol=1e-15)


@given(st.floats(min_value=0, max_value=1))
def test_p_formatting_never_prints_a_leading_zero_or_zero(p):
    text = format_p(p)
    assert not text.startswith("0") and text not in (".000", ".00")
