"""Sample size and power for comparing two proportions with equal group sizes (two-sided tests).

Methods (docs/stats.md has the formulas and their sources):

- ``normal``: normal approximation with the pooled variance under H0 and unpooled under H1
  (Fleiss, Levin & Paik 2003, eq. 4.14; R ``power.prop.test``; SAS ``PROC POWER`` "pchi").
- ``normal-cc``: the same with the Fleiss continuity correction
  ``n' = n/4 * (1 + sqrt(1 + 4/(n*|p1-p2|)))^2`` (Fleiss et al. 2003, eq. 4.15; nQuery "continuity corrected").
- ``arcsine``: arcsine transformation, Cohen's ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``,
  ``n = 2 ((z_a + z_b)/h)^2`` (Cohen 1988; R ``pwr::pwr.2p.test``).
- ``fisher-exact``: exact power of the two-sided Fisher test (sum of small p, as R ``fisher.test``) by
  enumerating every pair of binomial outcomes; the smallest n per group whose power reaches the target,
  scanning upward from the last n below the target (exact power is saw-toothed in n). One evaluation
  holds ``(n+1)^2`` tables and the scan may take ~n/10 of them, so the work grows as n cubed: the search
  is bounded to ``_MAX_EXACT_N`` per group and refused at once (ImmunoSepError naming the normal-
  approximation n) when the normal approximation alone needs more; the continuity-corrected normal method
  is the one to use there.

Dropout: ``total_with_dropout = ceil(total / (1 - dropout))``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_probability
from immunosep.stats.choices import SAMPLE_SIZE_METHODS as METHODS
from immunosep.stats.results import SampleSize

_METHOD_LABELS = {
    "normal": "normal approximation, pooled variance under H0 (power.prop.test)",
    "normal-cc": "normal approximation with Fleiss continuity correction",
    "arcsine": "arcsine transformation (Cohen's h)",
    "fisher-exact": "exact power of the two-sided Fisher test by enumeration",
}
_MAX_EXACT_N = 1000
"""Largest per-group n the exact Fisher search evaluates (about 10^6 tables per evaluation, seconds each)."""


_MAX_N = 10**12
"""Largest per-group n any method reports: beyond it (or an infinite n from a vanishing difference or alpha)
the design is not a trial, and the arithmetic loses its meaning."""


def _per_group(exact: float) -> int:
    if not math.isfinite(exact) or exact > _MAX_N:
        raise ImmunoSepError(
            f"more than {_MAX_N:.0e} per group would be needed: the difference is too small to detect at this "
            "alpha and power; check p1, p2, alpha and power"
        )
    return math.ceil(exact)


def _exact_too_large(needed: str) -> ImmunoSepError:
    return ImmunoSepError(
        f"fisher-exact: {needed}, and the exact search is bounded to {_MAX_EXACT_N:,} per group (its work grows "
        f"with n cubed); use --method normal-cc, within a few patients of the exact size at this n"
    )


def _check(p1: float, p2: float, alpha: float, power: float) -> tuple[float, float, float, float]:
    p1 = check_probability(p1, "p1")
    p2 = check_probability(p2, "p2")
    alpha = check_probability(alpha, "alpha")
    power = check_probability(power, "power")
    if p1 == p2:
        raise ImmunoSepError("p1 and p2 are equal: there is no difference to detect")
    return p1, p2, alpha, power


def normal_power(n: float, p1: float, p2: float, alpha: float) -> float:
    """Power of the two-sided pooled normal test with ``n`` per group (R ``power.prop.test``, strict=FALSE)."""
    za = sps.norm.ppf(1 - alpha / 2)
    pbar = (p1 + p2) / 2
    d = abs(p1 - p2)
    z = (d * math.sqrt(n) - za * math.sqrt(2 * pbar * (1 - pbar))) / math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return float(sps.norm.cdf(z))


def _normal_n(p1: float, p2: float, alpha: float, power: float) -> float:
    za = sps.norm.ppf(1 - alpha / 2)
    zb = sps.norm.ppf(power)
    pbar = (p1 + p2) / 2
    root = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    d2 = (p1 - p2) ** 2
    return float(root**2 / d2) if d2 > 0 else math.inf  # a difference below ~1e-154 squares to 0


def fisher_exact_power(n: int, p1: float, p2: float, alpha: float) -> float:
    """Exact power of the two-sided Fisher test with ``n`` per group.

    For every column total ``t`` the null distribution of the first group's events is hypergeometric; the
    two-sided P of each table sums the probabilities not above its own (relative tolerance 1e-7, as R and
    scipy). Power sums the binomial probabilities of the tables with ``P <= alpha``.
    """
    if n < 1:
        raise ImmunoSepError(f"n per group must be at least 1, got {n}")
    x = np.arange(n + 1)
    joint = np.outer(sps.binom.pmf(x, n, p1), sps.binom.pmf(x, n, p2))
    # every column total's null distribution in one scipy call, the supports end to end (one call per total
    # cost ~0.3 ms of scipy overhead each: 0.45 s of the SAP's 1.4 s at the protocol's n = 117 per group), as
    # exp(logpmf): scipy's pmf goes through Boost at ~1.6 us a table, logpmf (log-beta) is 5x faster; the two
    # differ by rounding only, far inside the 1e-7 tie tolerance, and gave the same power to the last bit in
    # 300 random designs (n 1-160); 7 ms an evaluation instead of 45 ms
    totals = np.arange(2 * n + 1)
    low = np.maximum(0, totals - n)
    size = np.minimum(n, totals) - low + 1
    start = np.cumsum(size) - size
    k_all = np.arange(int(size.sum())) - np.repeat(start - low, size)
    null = np.exp(sps.hypergeom.logpmf(k_all, 2 * n, np.repeat(totals, size), n))
    pvalue = np.empty((n + 1, n + 1))
    for t in range(2 * n + 1):
        k = np.arange(low[t], low[t] + size[t])
        pmf = null[start[t] : start[t] + size[t]]
        ordered = np.sort(pmf)
        cumulative = np.cumsum(ordered)
        idx = np.searchsorted(ordered, pmf * (1 + 1e-7), side="right")
        pvalue[k, t - k] = cumulative[idx - 1]
    return float(joint[pvalue <= alpha].sum())


def sample_size_two_proportions(
    p1: float,
    p2: float,
    *,
    alpha: float = 0.05,
    power: float = 0.80,
    method: str = "normal",
    dropout: float = 0.0,
) -> SampleSize:
    """Per-group n to detect ``p1`` vs ``p2`` with a two-sided test at ``alpha`` and the given ``power``."""
    p1, p2, alpha, power = _check(p1, p2, alpha, power)
    if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ImmunoSepError(f"dropout must be in [0, 1), got {dropout!r}")
    if method not in METHODS:
        raise ImmunoSepError(f"unknown sample-size method {method!r}; choose one of {', '.join(METHODS)}")
    d = abs(p1 - p2)
    n_normal = _normal_n(p1, p2, alpha, power)
    if method == "normal":
        exact = n_normal
        per_group = _per_group(exact)
        achieved = normal_power(per_group, p1, p2, alpha)
    elif method == "normal-cc":
        exact = n_normal / 4 * (1 + math.sqrt(1 + 4 / (n_normal * d))) ** 2
        per_group = _per_group(exact)
        # inverse of the Fleiss correction: the uncorrected n that the corrected n corresponds to
        achieved = normal_power(per_group * (1 - 1 / (per_group * d)) ** 2, p1, p2, alpha)
    elif method == "arcsine":
        h = abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2)))
        za, zb = sps.norm.ppf(1 - alpha / 2), sps.norm.ppf(power)
        exact = 2 * ((za + zb) / h) ** 2 if h > 0 else math.inf
        per_group = _per_group(exact)
        achieved = float(sps.norm.cdf(h * math.sqrt(per_group / 2) - za))
    else:
        if n_normal > _MAX_EXACT_N:
            _per_group(n_normal)  # refuses an infinite or absurd n first
            raise _exact_too_large(
                f"the normal approximation already needs {math.ceil(n_normal):,} per group"
            )
        powers: dict[int, float] = {}  # the downward scan ends on an n it has just evaluated

        def exact_power(n: int) -> float:
            if n not in powers:
                powers[n] = fisher_exact_power(n, p1, p2, alpha)
            return powers[n]

        n = max(1, math.floor(n_normal))
        while n > 1 and exact_power(n) >= power:
            n = max(1, math.floor(n * 0.9))
        achieved = exact_power(n)
        while achieved < power:
            n += 1
            if n > _MAX_EXACT_N:
                raise _exact_too_large(f"more than {_MAX_EXACT_N:,} per group are needed")
            achieved = exact_power(n)
        per_group = n
        exact = float(n)
    total = 2 * per_group
    return SampleSize(
        method=_METHOD_LABELS[method],
        p1=p1,
        p2=p2,
        alpha=alpha,
        power=power,
        per_group=per_group,
        per_group_exact=float(exact),
        total=total,
        dropout=float(dropout),
        total_with_dropout=math.ceil(round(total / (1 - dropout), 9)),
        achieved_power=float(achieved),
    )
