"""ROC analysis: AUC with DeLong CI and the Youden-index optimal cut-off (validated against R pROC).

AUC = Mann-Whitney U / (cases x controls) (scipy ``mannwhitneyu``; ties count one half). The CI uses DeLong's
variance (DeLong, DeLong & Clarke-Pearson 1988) on the AUC scale, truncated to [0, 1], as pROC ``ci.auc``
(method "delong"): no library we depend on provides it (sklearn is not a dependency). Cut-offs are the
midpoints between consecutive distinct values, as pROC; the Youden cut-off maximises sensitivity +
specificity - 1 (pROC ``coords(x="best", best.method="youden")``); ties go to the lowest cut-off.
``direction``: ">" means higher values indicate a case (pROC "<": controls < cases); "auto" picks it from the
medians as pROC does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from immunosep.errors import ImmunoSepError
from immunosep.stats._checks import check_conf_level
from immunosep.stats.results import Estimate, RocResult


def _placements(cases: np.ndarray, controls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong structural components: for each case the share of controls it beats (ties one half), and for each
    control the share of cases that beat it. Counted by binary search in the sorted other group: the same
    counts as the cases x controls comparison matrix, without its memory (O((m + n) log(m + n)))."""

    def below_tied_above(values: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ordered = np.sort(others)
        left = np.searchsorted(ordered, values, side="left")
        right = np.searchsorted(ordered, values, side="right")
        return left, right - left, len(others) - right

    below, tied, _ = below_tied_above(cases, controls)
    _, tied_c, above = below_tied_above(controls, cases)
    return (below + 0.5 * tied) / len(controls), (above + 0.5 * tied_c) / len(cases)


def roc_analysis(
    score: Sequence[float], is_case: Sequence[bool], *, direction: str = "auto", conf_level: float = 0.95
) -> RocResult:
    """AUC, its DeLong CI and the Youden cut-off of ``score`` for telling cases from controls."""
    conf_level = check_conf_level(conf_level)
    x = np.asarray(score, dtype=float)
    y = np.asarray(is_case)
    if x.shape != y.shape or x.ndim != 1:
        raise ImmunoSepError("score and is_case must be 1-d and of equal length")
    if not np.all(np.isfinite(x)):
        raise ImmunoSepError("scores must be finite (drop missing values first)")
    y = y.astype(bool)
    cases, controls = x[y], x[~y]
    if len(cases) == 0 or len(controls) == 0:
        raise ImmunoSepError("ROC analysis needs at least one case and one control")
    if direction == "auto":
        direction = ">" if np.median(controls) <= np.median(cases) else "<"
    if direction not in (">", "<"):
        raise ImmunoSepError("direction must be '>' (higher = case), '<' (lower = case) or 'auto'")
    if direction == "<":
        cases, controls = -cases, -controls
    u = sps.mannwhitneyu(cases, controls, alternative="two-sided").statistic
    m, n = len(cases), len(controls)
    auc = float(u / (m * n))
    v10, v01 = _placements(cases, controls)
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    se = math.sqrt(var)
    z = sps.norm.ppf(0.5 + conf_level / 2)
    p = float(2 * sps.norm.sf(abs(auc - 0.5) / se)) if se > 0 else math.nan
    estimate = Estimate(
        "auc",
        auc,
        max(0.0, auc - z * se),
        min(1.0, auc + z * se),
        p,
        "mann-whitney AUC, delong CI",
        m + n,
        conf_level,
    )
    values = np.unique(np.concatenate([cases, controls]))
    cuts = np.concatenate([[-np.inf], (values[:-1] + values[1:]) / 2, [np.inf]])
    sens = (cases[None, :] > cuts[:, None]).mean(axis=1)
    spec = (controls[None, :] < cuts[:, None]).mean(axis=1)
    best = int(np.argmax(sens + spec))
    cutoff = float(cuts[best]) if direction == ">" else float(-cuts[best])
    return RocResult(
        auc=estimate,
        cutoff=cutoff,
        sensitivity=float(sens[best]),
        specificity=float(spec[best]),
        youden=float(sens[best] + spec[best] - 1),
        direction=direction,
        n_cases=m,
        n_controls=n,
    )
