"""Two independent proportions: difference, odds ratio, relative risk, Fisher/chi-square test, NNT.

Conventions (see docs/stats.md): difference = first minus second group; Newcombe hybrid score CI by default
(Newcombe 1998, Stat Med 17:873, method 10; statsmodels ``method="newcomb"``); Woolf logit CI for the odds
ratio (SAS ``RELRISK`` "Wald", R ``epitools::oddsratio.wald``); log (Katz) CI for the relative risk;
two-sided Fisher P by summing the probabilities of tables no more likely than the observed one (R
``fisher.test``, SAS ``EXACT FISHER``, SPSS "Exact Sig. (2-sided)").
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_conf_level, check_count
from immunosep.stats.results import Estimate, NumberNeeded, TestResult, TwoByTwo

DIFFERENCE_METHODS = {
    "newcombe": ("newcomb", "newcombe hybrid score"),
    "wald": ("wald", "wald"),
    "agresti-caffo": ("agresti-caffo", "agresti-caffo"),
}
TESTS = {
    "fisher": "two-sided Fisher, sum of small p",
    "chi2": "pearson chi-square, no continuity correction",
    "chi2-yates": "pearson chi-square with Yates continuity correction",
}


def proportion_difference(
    x1: int, n1: int, x2: int, n2: int, *, method: str = "newcombe", conf_level: float = 0.95
) -> Estimate:
    """Difference ``x1/n1 - x2/n2`` (a fraction, not percent) with its CI; ``p`` is nan (use a test)."""
    x1, n1 = check_count(x1, n1, "first group")
    x2, n2 = check_count(x2, n2, "second group")
    conf_level = check_conf_level(conf_level)
    if method not in DIFFERENCE_METHODS:
        raise ImmunoSepError(
            f"unknown difference CI method {method!r}; choose one of {sorted(DIFFERENCE_METHODS)}"
        )
    sm_method, label = DIFFERENCE_METHODS[method]
    low, high = confint_proportions_2indep(
        x1, n1, x2, n2, method=sm_method, compare="diff", alpha=1 - conf_level
    )
    # a difference of proportions lies in [-1, 1]; statsmodels' arithmetic can overshoot by rounding
    # (0/3 vs 25/25 gives -1.0000000000000002)
    low, high = max(float(low), -1.0), min(float(high), 1.0)
    return Estimate("difference", x1 / n1 - x2 / n2, low, high, math.nan, label, n1 + n2, conf_level)


def odds_ratio(
    x1: int, n1: int, x2: int, n2: int, *, conf_level: float = 0.95, haldane: bool = False
) -> Estimate:
    """Sample odds ratio of group 1 vs 2 with the Woolf (logit) CI.

    With a zero cell the Woolf CI is not defined: it is returned as nan unless ``haldane=True``, which adds
    0.5 to every cell (Haldane-Anscombe) and says so in ``method``. statsmodels' ``Table2x2`` would add 0.5
    silently (``shift_zeros=True``); we never do.
    """
    x1, n1 = check_count(x1, n1, "first group")
    x2, n2 = check_count(x2, n2, "second group")
    conf_level = check_conf_level(conf_level)
    a, b, c, d = float(x1), float(n1 - x1), float(x2), float(n2 - x2)
    method = "woolf logit"
    if min(a, b, c, d) == 0:
        if not haldane:
            est = math.inf if b * c == 0 and a * d > 0 else (0.0 if a * d == 0 and b * c > 0 else math.nan)
            return Estimate(
                "odds_ratio",
                est,
                math.nan,
                math.nan,
                math.nan,
                method + " (zero cell: CI undefined)",
                n1 + n2,
                conf_level,
            )
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
        method += " with haldane 0.5 correction"
    est = (a * d) / (b * c)
    z = sps.norm.ppf(0.5 + conf_level / 2)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    if method == "woolf logit":
        # the library computation for the uncorrected case; the explicit form above only serves the correction
        low, high = confint_proportions_2indep(
            x1, n1, x2, n2, compare="odds-ratio", method="logit", alpha=1 - conf_level
        )
    else:
        low, high = math.exp(math.log(est) - z * se), math.exp(math.log(est) + z * se)
    p = float(2 * sps.norm.sf(abs(math.log(est)) / se))
    return Estimate("odds_ratio", est, float(low), float(high), p, method, n1 + n2, conf_level)


def relative_risk(x1: int, n1: int, x2: int, n2: int, *, conf_level: float = 0.95) -> Estimate:
    """Risk ratio ``(x1/n1) / (x2/n2)`` with the log (Katz) CI; nan CI when either group has no events."""
    x1, n1 = check_count(x1, n1, "first group")
    x2, n2 = check_count(x2, n2, "second group")
    conf_level = check_conf_level(conf_level)
    method = "log (katz)"
    if x1 == 0 or x2 == 0:
        est = math.inf if x2 == 0 and x1 > 0 else (0.0 if x1 == 0 and x2 > 0 else math.nan)
        return Estimate(
            "relative_risk",
            est,
            math.nan,
            math.nan,
            math.nan,
            method + " (no events: CI undefined)",
            n1 + n2,
            conf_level,
        )
    est = (x1 / n1) / (x2 / n2)
    low, high = confint_proportions_2indep(
        x1, n1, x2, n2, compare="ratio", method="log", alpha=1 - conf_level
    )
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    p = float(2 * sps.norm.sf(abs(math.log(est)) / se)) if se > 0 else math.nan
    return Estimate("relative_risk", est, float(low), float(high), p, method, n1 + n2, conf_level)


def two_by_two_test(x1: int, n1: int, x2: int, n2: int, *, test: str = "fisher") -> TestResult:
    """Test of equal proportions: two-sided Fisher exact (default) or Pearson chi-square (with/without Yates)."""
    x1, n1 = check_count(x1, n1, "first group")
    x2, n2 = check_count(x2, n2, "second group")
    if test not in TESTS:
        raise ImmunoSepError(f"unknown test {test!r}; choose one of {sorted(TESTS)}")
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    if test == "fisher":
        res = sps.fisher_exact(table, alternative="two-sided")
        return TestResult("fisher", float(res.statistic), math.nan, float(res.pvalue), TESTS[test], n1 + n2)
    if table.sum(axis=0).min() == 0:
        return TestResult(
            test, math.nan, 1.0, math.nan, TESTS[test] + " (an empty column: undefined)", n1 + n2
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        chi2, p, dof, _ = sps.chi2_contingency(table, correction=test == "chi2-yates")
    return TestResult(test, float(chi2), float(dof), float(p), TESTS[test], n1 + n2)


def number_needed(difference: Estimate, *, outcome: str = "good") -> NumberNeeded:
    """NNT/NNH from a difference of proportions (first minus second group) and its CI.

    ``outcome="good"`` when the event is desirable (e.g. SOFA improvement): a positive difference is a
    benefit of the first group. ``outcome="bad"`` (e.g. death): a negative difference is a benefit.
    """
    if outcome not in ("good", "bad"):
        raise ImmunoSepError(f"outcome must be 'good' or 'bad', got {outcome!r}")
    sign = 1.0 if outcome == "good" else -1.0
    benefit = sign * difference.estimate
    lo, hi = sorted((sign * difference.ci_low, sign * difference.ci_high))
    method = f"1/difference, CI from the {difference.method} CI (Altman 1998)"

    def inv(v: float) -> float:
        return math.inf if v == 0 else 1 / abs(v)

    kind = "NNT" if benefit >= 0 else "NNH"
    if lo > 0 or hi < 0:
        a, b = sorted((inv(lo), inv(hi)))
        return NumberNeeded(kind, inv(benefit), a, b, False, method)
    return NumberNeeded(kind, inv(benefit), inv(hi), inv(lo), True, method)


def compare_proportions(
    x1: int,
    n1: int,
    x2: int,
    n2: int,
    *,
    ci_method: str = "newcombe",
    test: str = "fisher",
    outcome: str = "good",
    conf_level: float = 0.95,
) -> TwoByTwo:
    """Everything the SAP asks for one binary endpoint: difference, OR, RR, test P and NNT/NNH."""
    diff = proportion_difference(x1, n1, x2, n2, method=ci_method, conf_level=conf_level)
    return TwoByTwo(
        x1=int(x1),
        n1=int(n1),
        x2=int(x2),
        n2=int(n2),
        difference=diff,
        odds_ratio=odds_ratio(x1, n1, x2, n2, conf_level=conf_level),
        relative_risk=relative_risk(x1, n1, x2, n2, conf_level=conf_level),
        test=two_by_two_test(x1, n1, x2, n2, test=test),
        number_needed=number_needed(diff, outcome=outcome),
    )
