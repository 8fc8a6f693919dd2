"""Proportional-odds (cumulative logit) regression: OR of a worse outcome for group a vs group b.

statsmodels ``OrderedModel(distr="logit")`` with no constant; the model is ``logit P(Y <= j) = theta_j - beta*a``
(the parametrisation of R ``MASS::polr`` and SAS ``PROC LOGISTIC ... DESCENDING``-free cumulative logit), so
``exp(beta)`` is the OR of being in a higher (worse) level. statsmodels reports thresholds as the first cut-off
and then log-increments; we return them converted to the cut-offs ``theta_j`` that R and SPSS print.

With one binary covariate the patients fall into at most ``2 x levels`` distinct rows: the model is fitted on those
rows with their patient counts as frequency weights (the log-likelihood of one row per patient, the same start
values and the same BFGS stopping rule), so 100,000 patients cost what 8 rows cost.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.miscmodels.ordinal_model import OrderedModel

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_conf_level
from immunosep.stats.results import Estimate, OrdinalResult

MAX_ORDINAL_PATIENTS = 1_000_000
"""Most patients a table of counts may add up to: the fit expands the table to one row per patient."""
METHOD = "proportional odds (cumulative logit), wald CI"


class _CountedOrderedModel(OrderedModel):  # type: ignore[misc]
    """statsmodels' ``OrderedModel`` whose row ``i`` stands for ``counts[i]`` patients (frequency weights).

    The log-likelihood is the count-weighted sum of the rows' (that of one row per patient); the start values
    are statsmodels' own (thresholds from the observed cumulative frequencies, coefficient 0) counted the same
    way. Gradient and Hessian stay statsmodels' numerical derivatives of this log-likelihood.
    """

    def __init__(self, endog: pd.Series, exog: pd.DataFrame, counts: np.ndarray, **kwds: object) -> None:
        super().__init__(endog, exog, **kwds)
        self.counts = np.asarray(counts, dtype=float)

    def loglike(self, params: np.ndarray) -> float:
        return float(self.counts @ self.loglikeobs(params))

    @property
    def start_params(self) -> np.ndarray:
        freq = np.bincount(self.endog, weights=self.counts, minlength=self.k_levels) / self.counts.sum()
        start_ppf = self.distr.ppf(np.clip(freq.cumsum(), 0, 1))
        start_threshold = self.transform_reverse_threshold_params(start_ppf)
        return np.concatenate((np.zeros(self.k_vars), start_threshold))


def _check_levels(levels: Sequence[str]) -> tuple[str, ...]:
    levels = tuple(str(v) for v in levels)
    if len(levels) < 2:
        raise ImmunoSepError("an ordinal outcome needs at least two levels (ordered best to worst)")
    if len(set(levels)) != len(levels):
        raise ImmunoSepError(f"ordinal levels must be distinct, got {list(levels)}")
    return levels


def proportional_odds_rows(
    outcome: Sequence[str], in_group_a: Sequence[bool], levels: Sequence[str], *, conf_level: float = 0.95
) -> OrdinalResult:
    """Fit on individual rows: ``outcome[i]`` one of ``levels`` (best first), ``in_group_a[i]`` True for group a."""
    levels = _check_levels(levels)
    conf_level = check_conf_level(conf_level)
    if len(outcome) != len(in_group_a):
        raise ImmunoSepError(f"{len(outcome)} outcomes but {len(in_group_a)} group flags")
    unknown = sorted({str(v) for v in outcome} - set(levels))
    if unknown:
        raise ImmunoSepError(f"outcome values {unknown} are not among the levels {list(levels)}")
    y = pd.Series(pd.Categorical([str(v) for v in outcome], categories=list(levels), ordered=True))
    observed = y.value_counts()
    if (observed > 0).sum() < 2:
        raise ImmunoSepError(
            "the outcome takes only one level: an ordinal model needs at least two observed levels"
        )
    if (observed == 0).any():
        raise ImmunoSepError(
            f"levels {list(observed[observed == 0].index)} are never observed; drop or merge them before fitting"
        )
    x = np.asarray(in_group_a, dtype=float)
    if x.min() == x.max():
        raise ImmunoSepError("all rows are in one group: give rows from both groups")
    codes = y.cat.codes.to_numpy()
    a, b = codes[x == 1], codes[x == 0]
    if a.max() <= b.min() or b.max() <= a.min():
        # (quasi-)separation: the groups do not overlap, the maximum-likelihood odds ratio is infinite
        raise ImmunoSepError(
            "the two groups' outcomes do not overlap (separation): the odds ratio is not estimable"
        )
    # one row per observed (level, group) with its number of patients
    cells = pd.DataFrame({"code": codes, "group_a": x}).groupby(["code", "group_a"], sort=True).size()
    cell_codes = cells.index.get_level_values("code").to_numpy(dtype=np.int64)
    endog = pd.Series(pd.Categorical.from_codes(cell_codes, categories=pd.Index(list(levels)), ordered=True))
    exog = pd.DataFrame({"group_a": cells.index.get_level_values("group_a").to_numpy(dtype=float)})
    counts = cells.to_numpy(dtype=float)
    model = _CountedOrderedModel(endog, exog, counts, distr="logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # statsmodels' BFGS divides the log-likelihood by the number of rows: gtol scaled by patients per row
        # keeps the stopping rule of a fit on one row per patient (gradient below 1e-10 per patient)
        gtol = 1e-10 * counts.sum() / len(counts)
        fit = model.fit(method="bfgs", disp=False, maxiter=2000, gtol=gtol)
    beta = float(fit.params["group_a"])
    se = float(fit.bse["group_a"])
    z = sps.norm.ppf(0.5 + conf_level / 2)
    thresholds = model.transform_threshold_params(np.asarray(fit.params))[1:-1]
    p = float(2 * sps.norm.sf(abs(beta / se)))
    estimate = Estimate(
        "odds_ratio_worse",
        math.exp(beta),
        math.exp(beta - z * se),
        math.exp(beta + z * se),
        p,
        METHOD,
        len(outcome),
        conf_level,
    )
    return OrdinalResult(estimate, levels, tuple(float(t) for t in thresholds), METHOD)


def proportional_odds_counts(
    levels: Sequence[str], counts_a: Sequence[int], counts_b: Sequence[int], *, conf_level: float = 0.95
) -> OrdinalResult:
    """Fit from a table of counts per level (best first) in group a and group b."""
    levels = _check_levels(levels)
    if len(counts_a) != len(levels) or len(counts_b) != len(levels):
        raise ImmunoSepError(
            f"give one count per level: {len(levels)} levels, {len(counts_a)} counts in a, {len(counts_b)} in b"
        )
    for c in (*counts_a, *counts_b):
        if isinstance(c, bool) or not float(c).is_integer() or c < 0:
            raise ImmunoSepError(f"counts must be non-negative whole numbers, got {c!r}")
    if sum(counts_a) == 0 or sum(counts_b) == 0:
        raise ImmunoSepError("each group needs at least one patient")
    if sum(counts_a) + sum(counts_b) > MAX_ORDINAL_PATIENTS:
        raise ImmunoSepError(
            f"counts add up to {int(sum(counts_a) + sum(counts_b))} patients, more than the "
            f"{MAX_ORDINAL_PATIENTS:,} the row-wise fit takes; check the numbers "
            f"(got {', '.join(str(c) for c in (*counts_a, *counts_b))})"
        )
    outcome: list[str] = []
    group: list[bool] = []
    for flag, counts in ((True, counts_a), (False, counts_b)):
        for level, count in zip(levels, counts, strict=True):
            outcome += [level] * int(count)
            group += [flag] * int(count)
    return proportional_odds_rows(outcome, group, levels, conf_level=conf_level)
