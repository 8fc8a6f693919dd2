"""Subgroup analysis: treatment OR per subgroup (Woolf) and the treatment-by-subgroup interaction P.

The interaction P is the Wald chi-square of the interaction coefficients (df = levels - 1) in the logistic
model ``outcome ~ treatment + subgroup + treatment:subgroup`` (SAS ``CONTRAST``/Type 3 Wald; R
``car::Anova(test="Wald")``-like). Subgroup levels are ordered as sorted strings; the first is the reference.
The model is fitted on the distinct (outcome, treatment, subgroup) rows with their patient counts as frequency
weights (:func:`immunosep.stats.logistic.counted_logit`): the same Newton fit as one row per patient, at the
cost of a few rows whatever the trial's size.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as sps

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_conf_level
from immunosep.stats.logistic import counted_logit
from immunosep.stats.proportions import odds_ratio
from immunosep.stats.results import Estimate, SubgroupResult, TestResult

METHOD = "woolf logit OR per subgroup; wald test of the treatment-by-subgroup interaction (logistic)"


def subgroup_analysis(
    data: pd.DataFrame, outcome: str, treatment: str, subgroup: str, *, conf_level: float = 0.95
) -> SubgroupResult:
    """OR of ``outcome`` (0/1) for ``treatment`` 1 vs 0 within each level of ``subgroup``, and the interaction P."""
    conf_level = check_conf_level(conf_level)
    for col in (outcome, treatment, subgroup):
        if col not in data.columns:
            raise ImmunoSepError(f"column {col!r} is not in the data")
    y = pd.to_numeric(data[outcome], errors="coerce")
    t = pd.to_numeric(data[treatment], errors="coerce")
    if not set(y.dropna().unique()) <= {0, 1} or y.isna().any():
        raise ImmunoSepError(f"outcome {outcome!r} must be 0/1 without missing values")
    if not set(t.dropna().unique()) <= {0, 1} or t.isna().any() or t.nunique() < 2:
        raise ImmunoSepError(f"treatment {treatment!r} must be 0/1 with both values present")
    levels = sorted(data[subgroup].dropna().unique().tolist(), key=str)
    if len(levels) < 2:
        raise ImmunoSepError(f"subgroup {subgroup!r} has fewer than two levels")
    # one row per distinct (outcome, treatment, subgroup) with its number of patients; a missing subgroup is
    # in no level (no OR row) and in the reference level of the model, as one row per patient would be
    cells = (
        pd.DataFrame({"y": y.astype(float), "t": t.astype(float), "g": data[subgroup]})
        .groupby(["y", "t", "g"], dropna=False, sort=True)
        .size()
        .rename("count")
        .reset_index()
    )
    rows = []
    for lv in levels:
        c = cells.loc[cells["g"] == lv]
        treated, control = c.loc[c["t"] == 1], c.loc[c["t"] == 0]
        n_t, n_c = int(treated["count"].sum()), int(control["count"].sum())
        if n_t == 0 or n_c == 0:
            raise ImmunoSepError(f"subgroup {subgroup}={lv} lacks one of the treatment groups")
        x_t = int(treated.loc[treated["y"] == 1, "count"].sum())
        x_c = int(control.loc[control["y"] == 1, "count"].sum())
        o = odds_ratio(x_t, n_t, x_c, n_c, conf_level=conf_level)
        rows.append(
            Estimate(f"{subgroup}={lv}", o.estimate, o.ci_low, o.ci_high, o.p, o.method, o.n, conf_level)
        )
    design = pd.DataFrame({"treatment": cells["t"]}, index=cells.index)
    inter_cols = []
    for lv in levels[1:]:
        d = (cells["g"] == lv).astype(float)
        design[f"{subgroup}[{lv}]"] = d
        design[f"treatment:{subgroup}[{lv}]"] = d * design["treatment"]
        inter_cols.append(f"treatment:{subgroup}[{lv}]")
    exog = sm.add_constant(design, has_constant="add")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = counted_logit(cells["y"], exog, cells["count"].to_numpy(float))
    idx = [list(exog.columns).index(c) for c in inter_cols]
    b = np.asarray(res.params)[idx]
    cov = np.asarray(res.cov_params())[np.ix_(idx, idx)]
    stat = float(b @ np.linalg.solve(cov, b))
    df = len(idx)
    method = "wald chi-square (logistic)"
    prob = np.asarray(res.predict())
    if np.any(prob < 1e-8) or np.any(prob > 1 - 1e-8) or np.any(np.abs(np.asarray(res.params)) > 15):
        method += "; separation detected (a subgroup cell without events): interaction P not reliable"
    interaction = TestResult(
        "interaction", stat, float(df), float(sps.chi2.sf(stat, df)), method, int(cells["count"].sum())
    )
    return SubgroupResult(tuple(rows), interaction, METHOD)
