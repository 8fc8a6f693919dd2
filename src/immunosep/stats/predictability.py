"""Predictability of a randomization sequence: correct guesses by the convergence strategy.

An investigator who remembers the allocations of their site guesses that the next patient gets the arm
allocated least so far (relative to the allocation ratio), and flips a fair coin among tied arms: the
convergence strategy of Blackwell and Hodges (1957), randomizeR's ``corGuess("CS")``. The *correct guess
probability* of a sequence is the mean over its patients of the probability that this guess is right
(a tie between ``k`` arms, one of them the true one, counts ``1/k``); its excess over ``1/arms`` (0.5 for
two arms) is the selection bias the design leaves open (Rosenberger and Lachin, Randomization in
Clinical Trials, 2nd ed. 2016, ch. 7).

:func:`guess_share` is exact for a given sequence. :func:`expected_guess_share_blocks` is the exact
expectation for permuted blocks whose size is drawn uniformly from a list (as the sealed lists are made),
for the first ``n`` allocations, by propagating the distribution of the in-block state; with one block
size ``2b`` and 1:1 it gives Blackwell and Hodges' ``(b + 2^(2b-1) / C(2b, b) - 1/2) / (2b)`` per
complete block (0.75 for blocks of 2, 0.7083 for blocks of 4). :func:`expected_guess_share_adaptive` is
the expectation for a response-adaptive design, given the allocation probabilities each allocation was
drawn with: the convergence guess depends only on the allocations before it, so its chance of being right
is the probability of the guessed arm at that allocation. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from immunosep.errors import ImmunoSepError

METHOD = "convergence strategy (Blackwell-Hodges), ties split evenly; randomizeR corGuess('CS')"


@dataclass(frozen=True)
class GuessShare:
    """Correct guesses of a sequence of ``allocations`` patients by the convergence strategy.

    ``correct`` is the expected number of correct guesses (ties count fractionally), ``share`` the
    correct guess probability (``correct / allocations``; NaN for an empty sequence) and ``excess``
    its excess over chance (``share - 1/arms``).
    """

    allocations: int
    correct: float
    share: float
    excess: float
    method: str = METHOD


def _weights(arms: Sequence[Hashable], ratio: Sequence[int] | None) -> list[int]:
    weights = [1] * len(arms) if ratio is None else list(ratio)
    if len(weights) != len(arms) or len(arms) < 2 or min(weights) < 1:
        raise ImmunoSepError(f"need at least two arms with positive whole ratios, got {list(arms)} {weights}")
    return weights


def _product_except(weights: Sequence[int], i: int) -> int:
    product = 1
    for j, w in enumerate(weights):
        if j != i:
            product *= w
    return product


def guess_share(
    sequence: Sequence[Hashable], arms: Sequence[Hashable], ratio: Sequence[int] | None = None
) -> GuessShare:
    """The correct guess probability of one allocation sequence (one site, in allocation order).

    ``arms`` names every arm (so that an arm not yet allocated still counts as behind), ``ratio`` the
    allocation ratio (default equal). An arm in ``sequence`` that is not in ``arms`` is an error.
    """
    weights = _weights(arms, ratio)

    def allocated(_: int, arm: int) -> list[Fraction]:
        onehot = [Fraction(0)] * len(arms)
        onehot[arm] = Fraction(1)
        return onehot

    return _guesses_along(sequence, arms, weights, allocated)


def _guesses_along(
    sequence: Sequence[Hashable],
    arms: Sequence[Hashable],
    weights: Sequence[int],
    distribution: Callable[[int, int], list[Fraction]],
) -> GuessShare:
    """Walk ``sequence`` summing the probability that the convergence guess of allocation ``i`` is right,
    where ``distribution(i, arm index)`` is allocation ``i``'s distribution over the arms (one-hot for the
    realised arm, or the probabilities it was drawn with)."""
    index = {a: i for i, a in enumerate(arms)}
    counts = [0] * len(arms)
    correct = 0.0
    for i, arm in enumerate(sequence):
        if arm not in index:
            raise ImmunoSepError(f"allocation {arm!r} is not one of the arms {list(arms)}")
        correct += float(_p_correct(counts, weights, distribution(i, index[arm])))
        counts[index[arm]] += 1
    n = len(sequence)
    share = correct / n if n else float("nan")
    return GuessShare(n, correct, share, share - 1.0 / len(arms))


def expected_guess_share_adaptive(
    sequence: Sequence[Hashable],
    probabilities: Sequence[float],
    arms: Sequence[Hashable],
    treatment: Hashable,
    ratio: Sequence[int] | None = None,
) -> GuessShare:
    """Expected correct guesses of a response-adaptive sequence, from its allocation probabilities.

    ``probabilities[i]`` is the probability that allocation ``i`` went to ``treatment`` (two arms), as it
    was drawn. Given the allocations before it, the convergence guess is fixed, and it is right with the
    probability of the guessed arm (a tie: the mean of the tied arms'), so the expected number of correct
    guesses is the sum of these over the sequence: the exact expectation of :func:`guess_share` of
    allocation ``i`` given the allocations before it (a martingale difference: the realised share minus this
    expectation has mean zero), which needs no model of how the probabilities arose.
    """
    weights = _weights(arms, ratio)
    if len(arms) != 2 or treatment not in arms:
        raise ImmunoSepError(
            f"an adaptive sequence needs two arms, {treatment!r} among them; got {list(arms)}"
        )
    if len(probabilities) != len(sequence):
        raise ImmunoSepError(
            f"one allocation probability per allocation: {len(probabilities)} for {len(sequence)} allocations"
        )
    t = list(arms).index(treatment)

    def drawn_with(i: int, _: int) -> list[Fraction]:
        prob = probabilities[i]
        if not 0.0 <= prob <= 1.0:
            raise ImmunoSepError(f"an allocation probability must be between 0 and 1, got {prob}")
        probs = [Fraction(0)] * len(arms)
        probs[t] = Fraction(prob)
        probs[1 - t] = 1 - Fraction(prob)
        return probs

    return _guesses_along(sequence, arms, weights, drawn_with)


def expected_guess_share_blocks(
    block_sizes: Sequence[int], n: int, ratio: Sequence[int] = (1, 1)
) -> GuessShare:
    """Expected correct guesses among the first ``n`` allocations of a permuted-block list (exact).

    Each block's size is drawn uniformly from ``block_sizes`` (a size listed twice is twice as likely)
    and holds the arms in ``ratio``, in random order. Since every complete block is balanced, the
    convergence guess depends only on the counts inside the current block; the distribution of
    ``(block size, counts left per arm)`` is carried forward one allocation at a time, with exact
    fractions.
    """
    correct = _expected_correct(tuple(block_sizes), n, tuple(ratio))
    share = float(correct) / n if n else float("nan")
    return GuessShare(n, float(correct), share, share - 1.0 / len(ratio))


@lru_cache(maxsize=256)
def _expected_correct(block_sizes: tuple[int, ...], n: int, ratio: tuple[int, ...]) -> Fraction:
    weights = _weights(list(range(len(ratio))), ratio)
    unit = sum(weights)
    if not block_sizes or any(s < unit or s % unit for s in block_sizes):
        raise ImmunoSepError(
            f"every block size must be a positive multiple of {unit}, got {list(block_sizes)}"
        )
    if n < 0:
        raise ImmunoSepError(f"the number of allocations must not be negative, got {n}")
    pick = Fraction(1, len(block_sizes))
    State = tuple[int, tuple[int, ...]]
    dist: dict[State, Fraction] = {}
    end = (0, tuple(0 for _ in weights))  # between blocks
    dist[end] = Fraction(1)
    correct = Fraction(0)
    for _ in range(n):
        fresh: dict[State, Fraction] = {}
        for (size, left), p in dist.items():
            if sum(left) == 0:
                for s in block_sizes:
                    key = (s, tuple(w * s // unit for w in weights))
                    fresh[key] = fresh.get(key, Fraction(0)) + p * pick
            else:
                fresh[(size, left)] = fresh.get((size, left), Fraction(0)) + p
        dist = {}
        for (size, left), p in fresh.items():
            total = sum(left)
            probs = [Fraction(x, total) for x in left]
            done = [w * size // unit - x for w, x in zip(weights, left, strict=True)]
            correct += p * _p_correct(done, weights, probs)
            for i, q in enumerate(probs):
                if q:
                    nxt = list(left)
                    nxt[i] -= 1
                    key = (size, tuple(nxt))
                    dist[key] = dist.get(key, Fraction(0)) + p * q
    return correct


def _p_correct(done: Sequence[int], weights: Sequence[int], probs: Sequence[Fraction]) -> Fraction:
    """P(correct) of the convergence guess after in-block counts ``done``, the next arm drawn from ``probs``.

    Arm ``i`` is behind the most when ``done_i / w_i`` is smallest, compared in whole numbers.
    """
    scores = [d * _product_except(weights, i) for i, d in enumerate(done)]
    low = min(scores)
    guessed = [i for i, s in enumerate(scores) if s == low]
    return sum((probs[i] for i in guessed), Fraction(0)) / len(guessed)


def long_run_guess_share(block_sizes: Sequence[int], ratio: Sequence[int] = (1, 1)) -> float:
    """The share over a long list: expected correct guesses per block over the mean block size.

    (Renewal-reward: blocks are independent, so the share of a long list tends to this ratio.)
    """
    correct = Fraction(0)
    for s in block_sizes:
        correct += _expected_correct((s,), s, tuple(ratio))
    return float(correct / sum(block_sizes))
