"""An interim look of a group-sequential design: the statistic against the boundaries, conditional and
predictive power, repeated confidence intervals and repeated P-values (docs/design.md).

Pure functions on the canonical z scale (``immunosep.stats.group_sequential``). Conventions follow R rpact's
``getAnalysisResults`` (validation/group_sequential.R, ``interim``):

- the boundaries are recomputed at the information observed (the spending function at the observed
  fractions; look ``k`` replaces the planned look ``k``, the later looks as planned);
- conditional power: the probability of crossing a later efficacy bound given the current ``z``, under a
  drift (the expected z at full information): the design's H1, or the current trend ``z_k / sqrt(t_k)``;
  futility bounds are ignored (non-binding); the conditional rejection probability is the one under 0 (a
  two-sided design: twice the one on the side of ``z``, as rpact);
- predictive power: the conditional power averaged over the posterior of the drift under a flat prior,
  ``N(z_k / sqrt(t_k), 1 / t_k)`` (Spiegelhalter, Freedman & Blackburn 1986);
- repeated confidence interval at look ``k``: ``estimate +- c_k SE_k`` (Jennison & Turnbull 1989), with the
  look's efficacy bound ``c_k``; a one-sided design's bounds give a ``1 - 2 alpha`` interval;
- repeated P-value: the smallest overall alpha at which the look's bound would have been crossed (the same
  spending function and fractions), capped at 1 when it would need more than 0.5.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from immunosep.errors import ImmunoSepError
from immunosep.stats.group_sequential import (
    GroupSequentialDesign,
    _critical_values,
    _Walk,
    group_sequential_design,
    spending,
)

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(40)
_GH_W = _GH_W / math.sqrt(2 * math.pi)


def observed_design(planned: GroupSequentialDesign, observed_rates: Sequence[float]) -> GroupSequentialDesign:
    """The planned design recomputed at the information fractions observed so far (later looks as planned).

    ``observed_rates`` are the fractions of the maximum information at the looks done so far: the ``k``-th
    replaces the ``k``-th planned look; the later planned looks stay, except those at or before the last
    observed fraction; the final look stays at 1.
    """
    obs = [float(v) for v in observed_rates]
    if not obs or any(not 0 < v <= 1 for v in obs) or any(b <= a for a, b in itertools.pairwise(obs)):
        raise ImmunoSepError(
            f"observed information fractions must increase strictly within (0, 1], got {list(observed_rates)}"
        )
    # look k replaces the planned look k; the later planned looks stay (those the information passed are
    # dropped), as rpact's getDesignGroupSequential(informationRates = c(observed, later planned))
    later = [t for t in planned.information_rates[len(obs) :] if t > obs[-1] + 1e-9] or [1.0]
    rates = [*obs, *later] if obs[-1] < 1 - 1e-9 else [*obs[:-1], 1.0]
    return group_sequential_design(
        rates,
        alpha=planned.alpha,
        beta=planned.beta,
        sided=planned.sided,
        alpha_spending=planned.alpha_spending,
        alpha_gamma=planned.alpha_gamma,
        beta_spending=planned.beta_spending,
        beta_gamma=planned.beta_gamma,
        binding_futility=planned.binding_futility,
    )


def conditional_rejection_probability(design: GroupSequentialDesign, look: int, z: float) -> float:
    """The conditional power under H0 (the conditional type I error): one-sided as it is; a two-sided design
    reports twice the crossing probability on the side of ``z`` (rpact's convention)."""
    if design.sided == 1:
        return conditional_power(design, look, z, 0.0)
    return 2 * conditional_power(design, look, abs(z), 0.0, tails="upper")


def conditional_power(
    design: GroupSequentialDesign, look: int, z: float, drift: float, *, tails: str = "design"
) -> float:
    """P(crossing an efficacy bound at a later look | ``Z_look = z``) under ``drift`` (futility ignored).

    ``look`` counts from 1. Given ``Z_k = z``, ``Y_j = (Z_j sqrt(t_j) - z sqrt(t_k)) / sqrt(t_j - t_k)`` is the
    canonical process on the fractions ``(t_j - t_k) / (1 - t_k)`` with drift ``drift sqrt(1 - t_k)``.
    """
    t = np.asarray(design.information_rates)
    k = _look_index(design, look)
    if k == len(t) - 1:
        return 0.0
    tk = t[k]
    rest = t[k + 1 :]
    s = (rest - tk) / (1 - tk)
    walk = _Walk(s, drift * math.sqrt(1 - tk))
    total = 0.0
    for j, tj in enumerate(rest):
        c = design.critical_values[k + 1 + j]
        up = (c * math.sqrt(tj) - z * math.sqrt(tk)) / math.sqrt(tj - tk)
        total += walk.up(up)
        if design.sided == 2:
            low = (-c * math.sqrt(tj) - z * math.sqrt(tk)) / math.sqrt(tj - tk)
            if tails == "design":
                total += walk.low(low)
        else:
            low = -math.inf
        if j < len(rest) - 1:
            walk.advance(low, up)
    return float(total)


def predictive_power(design: GroupSequentialDesign, look: int, z: float) -> float:
    """Conditional power averaged over the flat-prior posterior of the drift, ``N(z/sqrt(t_k), 1/t_k)``."""
    k = _look_index(design, look)
    tk = design.information_rates[k]
    drifts = z / math.sqrt(tk) + _GH_X / math.sqrt(tk)
    return float(sum(w * conditional_power(design, look, z, d) for w, d in zip(_GH_W, drifts, strict=True)))


def repeated_p_value(design: GroupSequentialDesign, look: int, z: float) -> float:
    """The smallest alpha at which ``z`` crosses the look's bound, with the design's spending function and
    fractions (two-sided designs: ``|z|`` and the two-sided alpha); 1 when it would take more than 0.5
    (one-sided) or 0.999 (two-sided)."""
    k = _look_index(design, look)
    stat = abs(z) if design.sided == 2 else z
    top = 0.5 if design.sided == 1 else 0.999
    if stat <= _bound_at(design, top, k):
        return 1.0
    return float(
        optimize.brentq(lambda a: _bound_at(design, a, k) - stat, 1e-12, top, xtol=1e-15, rtol=1e-13)
    )


def _bound_at(design: GroupSequentialDesign, alpha: float, k: int) -> float:
    """The efficacy bound at look ``k`` (0-based) of the same design spending ``alpha`` instead."""
    t = np.asarray(design.information_rates)
    cum = spending(design.alpha_spending, alpha, t, gamma=design.alpha_gamma, sided=design.sided)
    cum[-1] = alpha
    inc = np.diff(cum, prepend=0.0)[: k + 1]
    lower = np.full(k + 1, -math.inf)
    if design.binding_futility and design.futility_bounds:
        lower[:k] = design.futility_bounds[:k]
    return float(_critical_values(t[: k + 1], inc, design.sided, lower)[k])


@dataclass(frozen=True)
class InterimResult:
    """One interim look: the statistic, the bounds, the decision and the monitoring quantities."""

    look: int
    information_rate: float
    z: float
    efficacy_z: float
    futility_z: float | None
    decision: str
    action: str
    conditional_power_h1: float
    conditional_power_trend: float
    conditional_rejection_probability: float
    predictive_power: float
    repeated_ci: tuple[float, float]
    repeated_p: float
    method: str = "rpact conventions: boundaries at the observed information, RCI estimate +- c_k SE"


def interim_look(
    planned: GroupSequentialDesign,
    observed_rates: Sequence[float],
    z: float,
    *,
    estimate: float,
    standard_error: float,
) -> InterimResult:
    """The analysis of the last observed look: ``z`` (positive favours the experimental arm), the effect
    ``estimate`` and its ``standard_error`` (same scale, for the repeated confidence interval)."""
    if not math.isfinite(z) or not math.isfinite(estimate) or not standard_error > 0:
        raise ImmunoSepError("z and the estimate must be finite numbers and the standard error positive")
    design = observed_design(planned, observed_rates)
    look = len(observed_rates)
    k = look - 1
    c = design.critical_values[k]
    f = design.futility_bounds[k] if design.futility_bounds and k < len(design.futility_bounds) else None
    crossed = (abs(z) if design.sided == 2 else z) >= c
    final = look == design.looks
    if crossed:
        decision = "stop: the efficacy boundary is crossed (reject H0)"
        action = "stop for efficacy"
    elif f is not None and z <= f:
        decision = (
            "stop for futility (binding bound)"
            if design.binding_futility
            else "the futility bound is crossed: stopping for futility is recommended (non-binding)"
        )
        action = "stop for futility"
    elif final:
        decision = "final analysis: H0 is not rejected"
        action = "final: H0 not rejected"
    else:
        decision = "continue to the next look"
        action = "continue"
    tk = design.information_rates[k]
    return InterimResult(
        look=look,
        information_rate=tk,
        z=float(z),
        efficacy_z=c,
        futility_z=f,
        decision=decision,
        action=action,
        conditional_power_h1=conditional_power(design, look, z, planned.drift),
        conditional_power_trend=conditional_power(design, look, z, z / math.sqrt(tk)),
        conditional_rejection_probability=conditional_rejection_probability(design, look, z),
        predictive_power=predictive_power(design, look, z),
        repeated_ci=(estimate - c * standard_error, estimate + c * standard_error),
        repeated_p=repeated_p_value(design, look, z),
    )


def _look_index(design: GroupSequentialDesign, look: int) -> int:
    if not isinstance(look, int) or not 1 <= look <= design.looks:
        raise ImmunoSepError(f"look must be between 1 and {design.looks}, got {look!r}")
    return look - 1
