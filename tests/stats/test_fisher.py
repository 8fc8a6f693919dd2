"""Vectorized two-sided Fisher P vs scipy table by table and vs R ``fisher.test`` (validation/proportions.R)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import fisher_exact

from immunosep.errors import ImmunoSepError
from immunosep.stats import fisher_two_sided_p, two_by_two_test

RTOL = 1e-6


def test_equals_scipy_on_random_and_edge_tables() -> None:
    rng = np.random.default_rng(2025)
    n1 = rng.integers(1, 160, 4000)
    n2 = rng.integers(1, 160, 4000)
    x1 = rng.integers(0, n1 + 1)
    x2 = rng.integers(0, n2 + 1)
    # edge cases: empty columns, full rows, balanced ties, an empty group, the published primary table
    edges = np.array(
        [[0, 10, 0, 12], [10, 10, 12, 12], [5, 10, 5, 10], [0, 1, 1, 1], [0, 0, 3, 7], [46, 131, 26, 145]]
    )
    x1, n1, x2, n2 = (np.concatenate([v, edges[:, j]]) for j, v in enumerate((x1, n1, x2, n2)))
    ours = fisher_two_sided_p(x1, n1, x2, n2)
    reference = np.array(
        [fisher_exact([[a, b - a], [c, d - c]]).pvalue for a, b, c, d in zip(x1, n1, x2, n2, strict=True)]
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
    assert ours[-1] == pytest.approx(0.002, abs=0.0005)  # Table 2: P = .002


@pytest.mark.requirement("STAT-01")
def test_equals_r_fisher_test(r_reference) -> None:  # type: ignore[no-untyped-def]
    """R: ``fisher.test(matrix(c(x1, n1 - x1, x2, n2 - x2), 2, byrow = TRUE))$p.value`` per case."""
    cases = r_reference("proportions")["cases"]
    x1, n1, x2, n2 = np.array([c["counts"] for c in cases]).T
    expected = [c["fisher_p"] for c in cases]
    assert fisher_two_sided_p(x1, n1, x2, n2) == pytest.approx(expected, rel=RTOL)
    # the scalar test of the analysis (scipy) and the vectorized one agree on the same tables
    scalar = [two_by_two_test(*c["counts"]).p for c in cases]
    assert fisher_two_sided_p(x1, n1, x2, n2) == pytest.approx(scalar, rel=1e-9)


def test_repeated_tables_keep_their_order() -> None:
    """Identical tables are computed once; each answer still goes back to its own position."""
    x1, n1, x2, n2 = [46, 3, 46, 0, 3], [131, 20, 131, 5, 20], [26, 9, 26, 5, 9], [145, 21, 145, 5, 21]
    p = fisher_two_sided_p(x1, n1, x2, n2)
    singles = [fisher_two_sided_p([a], [b], [c], [d])[0] for a, b, c, d in zip(x1, n1, x2, n2, strict=True)]
    assert p.tolist() == singles
    assert p[0] == p[2] and p[1] == p[4] and p[0] != p[1]
    assert fisher_two_sided_p([], [], [], []).shape == (0,)


@pytest.mark.parametrize("table", [([5], [4], [1], [3]), ([1], [4], [-1], [3]), ([1], [4], [4], [3])])
def test_rejects_impossible_tables(table: tuple[list[int], ...]) -> None:
    with pytest.raises(ImmunoSepError, match="0 <= x <= n"):
        fisher_two_sided_p(*table)


def test_equals_scipy_on_every_table_up_to_ten_per_group() -> None:
    """Every 2x2 table with 0..10 patients per group (4,356 tables, ties of probability included): the
    vectorized P is scipy's, whose "as or less probable" uses the same relative tolerance 1 + 1e-7."""
    n1, n2 = np.meshgrid(np.arange(11), np.arange(11), indexing="ij")
    tables = np.array(
        [
            (a, b, c, d)
            for b, d in zip(n1.ravel(), n2.ravel(), strict=True)
            for a in range(b + 1)
            for c in range(d + 1)
        ]
    )
    x1, m1, x2, m2 = tables.T
    ours = fisher_two_sided_p(x1, m1, x2, m2)
    reference = [fisher_exact([[a, b - a], [c, d - c]]).pvalue for a, b, c, d in tables]
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
