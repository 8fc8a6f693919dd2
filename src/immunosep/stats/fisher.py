"""Two-sided Fisher exact P for many 2x2 tables at once (vectorized; the Monte Carlo engine's test).

:func:`immunosep.stats.two_by_two_test` calls :func:`scipy.stats.fisher_exact` for one table, which has no
array form; simulating thousands of trials needs the same P for thousands of tables. Conditional on the
margins the first group's events are hypergeometric; P sums the probabilities of every table as or less
probable than the observed one, with R's relative tolerance (``fisher.test``: ``relErr <- 1 + 10^-7``;
scipy uses the same): "two-sided Fisher, sum of small p". Tested table by table against scipy and R.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from immunosep.errors import ImmunoSepError

#: Relative tolerance of "as or less probable than the observed table" (R ``fisher.test`` uses 1 + 1e-7).
FISHER_RELATIVE_TOLERANCE = 1e-7

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def fisher_two_sided_p(
    x1: npt.ArrayLike, n1: npt.ArrayLike, x2: npt.ArrayLike, n2: npt.ArrayLike
) -> FloatArray:
    """Two-sided Fisher exact P of each table ``[[x1, n1 - x1], [x2, n2 - x2]]`` (1-D arrays of counts).

    Identical tables are computed once (a Monte Carlo run repeats most of its tables). Memory is one
    row of ``max(n1) + 1`` floats per distinct table.
    """
    counts = np.stack([np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (x1, n1, x2, n2)], axis=1)
    x_1, n_1, x_2, n_2 = counts.T
    if np.any((x_1 < 0) | (x_2 < 0) | (x_1 > n_1) | (x_2 > n_2)):
        raise ImmunoSepError("each table needs 0 <= x <= n in both groups")
    if counts.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    tables, inverse = np.unique(counts, axis=0, return_inverse=True)
    a, r1, c, r2 = (tables[:, j] for j in range(4))
    total = r1 + r2
    events = a + c
    lf = gammaln(np.arange(int(total.max()) + 1, dtype=np.float64) + 1.0)  # log k!
    # log P(X = x) = row constant + the part that depends on x (hypergeometric, margins fixed)
    constant = lf[events] + lf[total - events] + lf[r1] + lf[total - r1] - lf[total]
    ev, g1, rest = events[:, None], r1[:, None], (total - events - r1)[:, None]

    def varying(x: IntArray) -> FloatArray:
        return np.asarray(-lf[x] - lf[ev - x] - lf[g1 - x] - lf[rest + x], dtype=np.float64)

    k = np.arange(int(r1.max()) + 1, dtype=np.int64)[None, :]
    low = np.maximum(0, events - r2)[:, None]
    high = np.minimum(events, r1)[:, None]
    support = (k >= low) & (k <= high)
    logp = varying(np.where(support, k, low))  # off the support: any valid index, masked below
    observed = varying(a[:, None])
    small = support & (logp <= observed + math.log1p(FISHER_RELATIVE_TOLERANCE))
    p = np.where(small, np.exp(logp + constant[:, None]), 0.0).sum(axis=1)
    return np.asarray(np.minimum(p, 1.0)[inverse.reshape(-1)], dtype=np.float64)
