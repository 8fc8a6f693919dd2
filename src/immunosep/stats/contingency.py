"""Stratified 2x2 tables: Mantel-Haenszel common odds ratio, MH test, Breslow-Day homogeneity test.

The MH OR CI uses the Robins-Breslow-Greenland variance (as R ``mantelhaen.test``, SAS ``CMH``); the MH test
uses the continuity correction by default, as R does (statsmodels does not by default), and only where it
applies: R subtracts 0.5 from ``|sum(a - E[a])|`` only when that is at least 0.5, where statsmodels always
subtracts it (a test of strata with no difference gave chi-square 0.097, P 0.76, against R's 0 and 1), and
strata without events (or only events) leave the test undefined (NaN), where statsmodels gave P 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import chi2
from statsmodels.stats.contingency_tables import StratifiedTable

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_conf_level, check_count
from immunosep.stats.proportions import odds_ratio
from immunosep.stats.results import Estimate, StratifiedOddsRatio, TestResult


def mantel_haenszel(
    strata: Sequence[tuple[int, int, int, int]],
    *,
    names: Sequence[str] | None = None,
    conf_level: float = 0.95,
    correction: bool = True,
    tarone: bool = False,
) -> StratifiedOddsRatio:
    """MH OR of group 1 vs group 2 over strata given as ``(x1, n1, x2, n2)`` per stratum.

    ``correction``: continuity correction of the MH chi-square (R default). ``tarone``: Tarone's adjustment of
    the Breslow-Day statistic (SAS prints both).
    """
    conf_level = check_conf_level(conf_level)
    if len(strata) < 1:
        raise ImmunoSepError("give at least one stratum as (events1, total1, events2, total2)")
    if names is not None and len(names) != len(strata):
        raise ImmunoSepError(f"{len(names)} stratum names for {len(strata)} strata")
    labels = list(names) if names is not None else [f"stratum {i + 1}" for i in range(len(strata))]
    tables = []
    per_stratum = []
    for label, row in zip(labels, strata, strict=True):
        if len(row) != 4:
            raise ImmunoSepError(f"{label}: give (events1, total1, events2, total2), got {row!r}")
        x1, n1 = check_count(row[0], row[1], f"{label} first group")
        x2, n2 = check_count(row[2], row[3], f"{label} second group")
        tables.append(np.array([[x1, n1 - x1], [x2, n2 - x2]], dtype=float))
        est = odds_ratio(x1, n1, x2, n2, conf_level=conf_level)
        per_stratum.append(Estimate(label, est.estimate, est.ci_low, est.ci_high, est.p, est.method, est.n))
    st = StratifiedTable(tables)
    n = int(sum(t.sum() for t in tables))
    # Strata without events (or without non-events) in either group leave the pooled odds ratio, its
    # variance and the tests 0/0 or x/0: NaN or inf, which the plan reports as not estimable (null).
    # statsmodels computes them with numpy scalars, which would print a RuntimeWarning for each.
    with np.errstate(divide="ignore", invalid="ignore"):
        low, high = st.oddsratio_pooled_confint(alpha=1 - conf_level)
        mh_statistic = _mh_chi_square(np.stack(tables), correction)
        bd = st.test_equal_odds(adjust=tarone) if len(tables) > 1 else None
        pooled_or = float(st.oddsratio_pooled)
    mh_p = float(chi2.sf(mh_statistic, 1))
    mh_method = "cochran-mantel-haenszel chi-square" + (" with continuity correction" if correction else "")
    if bd is not None:
        bd_result = TestResult(
            "breslow_day",
            float(bd.statistic),
            float(len(tables) - 1),
            float(bd.pvalue),
            "breslow-day" + (" with tarone adjustment" if tarone else ""),
            n,
        )
    else:
        bd_result = TestResult(
            "breslow_day", math.nan, 0.0, math.nan, "breslow-day (one stratum: undefined)", n
        )
    pooled = Estimate(
        "mh_odds_ratio",
        pooled_or,
        float(low),
        float(high),
        mh_p,
        "mantel-haenszel (robins-breslow-greenland CI)",
        n,
        conf_level,
    )
    return StratifiedOddsRatio(
        odds_ratio=pooled,
        mh_test=TestResult("mantel_haenszel", mh_statistic, 1.0, mh_p, mh_method, n),
        homogeneity=bd_result,
        strata=tuple(per_stratum),
    )


def _mh_chi_square(tables: np.ndarray, correction: bool) -> float:
    """The Mantel-Haenszel chi-square (1 df) of 2x2 tables stacked as ``(K, 2, 2)``, as R's ``mantelhaen.test``:
    ``(|D| - c)^2 / V`` with ``D = sum(a - n1 m1 / N)``, ``V = sum(n1 n2 m1 m2 / (N^2 (N - 1)))``, and ``c = 0.5``
    only if ``correction`` and ``|D| >= 0.5``. NaN when ``V`` is 0 (no stratum has both outcomes), as in R."""
    a = tables[:, 0, 0]
    n1, n2 = tables[:, 0, :].sum(axis=1), tables[:, 1, :].sum(axis=1)  # the groups' sizes
    m1, m2 = tables[:, :, 0].sum(axis=1), tables[:, :, 1].sum(axis=1)  # events, non-events
    total = n1 + n2
    delta = float(np.sum(a - n1 * m1 / total))
    variance = float(np.sum(n1 * n2 * m1 * m2 / (total**2 * (total - 1))))
    shift = 0.5 if correction and abs(delta) >= 0.5 else 0.0
    return (abs(delta) - shift) ** 2 / variance if variance > 0 else math.nan
