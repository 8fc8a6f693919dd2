"""Stratified 2x2 tables: Mantel-Haenszel common odds ratio, MH test, Breslow-Day homogeneity test.

The MH OR CI uses the Robins-Breslow-Greenland variance (as R ``mantelhaen.test``, SAS ``CMH``); the MH test
uses the continuity correction by default, as R does (statsmodels does not by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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
    low, high = st.oddsratio_pooled_confint(alpha=1 - conf_level)
    mh = st.test_null_odds(correction=correction)
    mh_method = "cochran-mantel-haenszel chi-square" + (" with continuity correction" if correction else "")
    if len(tables) > 1:
        bd = st.test_equal_odds(adjust=tarone)
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
        float(st.oddsratio_pooled),
        float(low),
        float(high),
        float(mh.pvalue),
        "mantel-haenszel (robins-breslow-greenland CI)",
        n,
        conf_level,
    )
    return StratifiedOddsRatio(
        odds_ratio=pooled,
        mh_test=TestResult("mantel_haenszel", float(mh.statistic), 1.0, float(mh.pvalue), mh_method, n),
        homogeneity=bd_result,
        strata=tuple(per_stratum),
    )
