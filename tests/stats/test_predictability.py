"""Correct guesses by the convergence strategy, against Blackwell-Hodges and brute-force enumeration."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.predictability import expected_guess_share_blocks, guess_share, long_run_guess_share


def blackwell_hodges_share(b: int) -> float:
    """Expected share of correct convergence guesses in one permuted block of size 2b (1:1).

    Blackwell and Hodges (1957), Ann. Math. Statist. 28:449-460; Rosenberger and Lachin (2016), 7.2:
    expected correct guesses per block ``b + 2^(2b-1) / C(2b, b) - 1/2``.
    """
    return (b + 2 ** (2 * b - 1) / math.comb(2 * b, b) - 0.5) / (2 * b)


@pytest.mark.requirement("RND-ADP-01")
def test_published_values_for_blocks_of_two_and_four():
    # Rosenberger and Lachin (2016), table 7.1: 0.75 for block size 2, 0.708 for block size 4
    assert expected_guess_share_blocks([2], 2).share == pytest.approx(0.75, abs=1e-12)
    assert expected_guess_share_blocks([4], 4).share == pytest.approx(0.7083, abs=5e-5)
    assert expected_guess_share_blocks([4], 40).excess == pytest.approx(0.2083, abs=5e-5)


@pytest.mark.requirement("RND-ADP-01")
@pytest.mark.parametrize("b", [1, 2, 3, 4, 5, 8])
def test_expectation_equals_blackwell_hodges_over_whole_blocks(b):
    for blocks in (1, 3):
        got = expected_guess_share_blocks([2 * b], 2 * b * blocks)
        assert got.share == pytest.approx(blackwell_hodges_share(b), abs=1e-12)
    assert long_run_guess_share([2 * b]) == pytest.approx(blackwell_hodges_share(b), abs=1e-12)


def _permutations(content: list[str]) -> list[tuple[str, ...]]:
    return sorted(set(itertools.permutations(content)))  # a shuffle makes every distinct order equally likely


def _brute_force(block_sizes: list[int], n: int, ratio: tuple[int, int]) -> float:
    """Mean correct guesses in the first n allocations over every block-size draw and every order."""
    unit = sum(ratio)
    total, weight = Fraction(0), Fraction(0)
    max_blocks = n // min(block_sizes) + 1

    def walk(prefix: list[str], p: Fraction, blocks_left: int) -> None:
        nonlocal total, weight
        if len(prefix) >= n or blocks_left == 0:
            total += p * Fraction(guess_share(prefix[:n], ["A", "B"], ratio).correct).limit_denominator(10**6)
            weight += p
            return
        for size in block_sizes:
            content = ["A"] * (ratio[0] * size // unit) + ["B"] * (ratio[1] * size // unit)
            orders = _permutations(content)
            for order in orders:
                walk(prefix + list(order), p / len(block_sizes) / len(orders), blocks_left - 1)

    walk([], Fraction(1), max_blocks)
    assert weight == 1
    return float(total) / n


@pytest.mark.requirement("RND-ADP-01")
@pytest.mark.parametrize(
    ("sizes", "n", "ratio"),
    [([2, 4], 5, (1, 1)), ([2, 4, 6], 6, (1, 1)), ([4], 6, (1, 1)), ([3, 6], 5, (1, 2)), ([3], 3, (2, 1))],
)
def test_expectation_equals_enumeration_of_every_list(sizes, n, ratio):
    assert expected_guess_share_blocks(sizes, n, ratio).share == pytest.approx(
        _brute_force(sizes, n, ratio), abs=1e-9
    )


@pytest.mark.requirement("RND-ADP-01")
def test_share_of_a_given_sequence_counts_ties_as_half():
    # ABBA: tie (1/2), guess B right (1), tie (1/2), guess A right (1): 3 of 4
    got = guess_share(["A", "B", "B", "A"], ["A", "B"])
    assert (got.allocations, got.correct, got.share, got.excess) == (4, 3.0, 0.75, 0.25)
    # AABB: tie (1/2), guess B wrong (0), guess B right (1), guess B right (1)
    assert guess_share(["A", "A", "B", "B"], ["A", "B"]).correct == 2.5
    # an arm never allocated is still behind: B guessed at every step after the first
    assert guess_share(["A", "A", "A"], ["A", "B"]).correct == 0.5
    # three arms: first guess is a three-way tie
    assert guess_share(["C"], ["A", "B", "C"]).correct == pytest.approx(1 / 3)
    empty = guess_share([], ["A", "B"])
    assert empty.allocations == 0 and math.isnan(empty.share)


def test_bad_input_is_refused():
    with pytest.raises(ImmunoSepError, match="not one of the arms"):
        guess_share(["A", "X"], ["A", "B"])
    with pytest.raises(ImmunoSepError, match="two arms"):
        guess_share(["A"], ["A"])
    with pytest.raises(ImmunoSepError, match="multiple of 2"):
        expected_guess_share_blocks([3], 4)
    with pytest.raises(ImmunoSepError, match="negative"):
        expected_guess_share_blocks([2], -1)


@pytest.mark.requirement("RND-ADP-01")
def test_adaptive_expectation_from_the_allocation_probabilities():
    """By hand: first allocation a tie (1/2); then the guess is the arm behind, right with its probability.
    And over random sequences drawn with the probabilities, the realised share averages the expectation."""
    import numpy as np

    from immunosep.stats.predictability import expected_guess_share_adaptive

    arms = ["t", "c"]
    # t then c, drawn with P(t) = 0.7 and 0.8: 1/2 (tie) + P(c) = 0.2 (c is behind after a t)
    assert expected_guess_share_adaptive(["t", "c"], [0.7, 0.8], arms, "t").correct == pytest.approx(0.7)
    assert expected_guess_share_adaptive(["c", "t", "t"], [0.5] * 3, arms, "t").share == pytest.approx(0.5)
    rng = np.random.default_rng(3)
    probs = list(rng.uniform(0.25, 0.9, 20))
    realised, expected = [], []
    for _ in range(1000):
        seq = ["t" if u < q else "c" for u, q in zip(rng.random(20), probs, strict=True)]
        realised.append(guess_share(seq, arms).share)
        expected.append(expected_guess_share_adaptive(seq, probs, arms, "t").share)
    diff = np.array(realised) - np.array(expected)
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(diff))
    with pytest.raises(ImmunoSepError, match="one allocation probability per allocation"):
        expected_guess_share_adaptive(["t"], [0.5, 0.5], arms, "t")
