"""Beta-binomial posterior probability of benefit and response-adaptive allocation (pure).

Two independent beta posteriors of an event (success) rate, one per arm; ``P(p_trt > p_ctl | data)``
(:func:`prob_benefit`) and the allocation probability to treatment it implies,
``P^c / (P^c + (1 - P)^c)`` bounded by minimum shares (:func:`rar_allocation`; Thall and Wathen 2007).
Used by the adaptive design simulator (:mod:`immunosep.simulate.adaptive`) and by the randomization
service of a trial run under an adaptive design, so the two compute the same numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

from immunosep.errors import ImmunoSepError

FloatArray = npt.NDArray[np.float64]

#: Gauss-Legendre nodes of the quadrature (non-integer posteriors): errors of 2e-12 on a random grid of
#: 400 posteriors of up to 280 patients, 1e-8 on the worst case of the tests.
QUADRATURE_NODES = 48
#: Tail mass left out of the quadrature window on each side of the narrower posterior.
QUADRATURE_TAIL = 1e-13
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)


def prob_benefit(
    a_trt: npt.ArrayLike, b_trt: npt.ArrayLike, a_ctl: npt.ArrayLike, b_ctl: npt.ArrayLike
) -> FloatArray:
    """``P(p_trt > p_ctl)`` for independent ``p_trt ~ Beta(a_trt, b_trt)``, ``p_ctl ~ Beta(a_ctl, b_ctl)``.

    Elementwise over broadcast arrays. When every ``a_trt`` is a whole number the exact finite sum is
    used (:func:`prob_benefit_exact`), otherwise the quadrature (:func:`prob_benefit_quadrature`).
    """
    a_t, b_t, a_c, b_c = (
        np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a_trt, b_trt, a_ctl, b_ctl)
    )
    if (
        min(
            float(a_t.min(initial=1)),
            float(b_t.min(initial=1)),
            float(a_c.min(initial=1)),
            float(b_c.min(initial=1)),
        )
        <= 0
    ):
        raise ImmunoSepError("beta parameters must be positive")
    if np.all(a_t == np.round(a_t)):
        return prob_benefit_exact(a_t, b_t, a_c, b_c)
    return prob_benefit_quadrature(a_t, b_t, a_c, b_c)


def prob_benefit_exact(a_t: FloatArray, b_t: FloatArray, a_c: FloatArray, b_c: FloatArray) -> FloatArray:
    """The closed form for a whole-number ``a_t`` (any positive ``b_t``, ``a_c``, ``b_c``).

    ``P(p_t > p_c) = sum_{i=0}^{a_t-1} B(a_c+i, b_c+b_t) / ((b_t+i) B(1+i, b_t) B(a_c, b_c))``
    (from ``1 - I_x(a, b) = sum_{i<a} x^i (1-x)^b / (i B(i, b))`` for whole ``a``; J. Cook, "Exact
    calculation of beta inequalities", 2005; E. Miller, "Formulas for Bayesian A/B testing", 2015).
    Successive terms differ by the factor ``(a_c+i)(b_t+i) / ((a_c+b_c+b_t+i)(1+i))``, so the sum runs
    in log space with one logarithm per term, vectorized over the elements.
    """
    log_term = special.betaln(a_c, b_c + b_t) - special.betaln(a_c, b_c)
    total = np.exp(log_term)
    total_b = a_c + b_c + b_t
    for i in range(1, int(a_t.max(initial=1))):
        log_term = log_term + np.log((a_c + i - 1) * (b_t + i - 1) / ((total_b + i - 1) * i))
        total += np.where(i < a_t, np.exp(log_term), 0.0)
    return np.asarray(np.clip(total, 0.0, 1.0), dtype=np.float64)


def prob_benefit_quadrature(a_t: FloatArray, b_t: FloatArray, a_c: FloatArray, b_c: FloatArray) -> FloatArray:
    """``P(p_t > p_c)`` by Gauss-Legendre quadrature, for any positive parameters (borrowing).

    Integrates the density ``f_1`` of the narrower posterior times ``F_2`` (treatment narrower) or
    ``1 - F_2`` (control narrower), the other posterior's CDF or survival, over the narrower posterior's
    central ``1 - 2e-13`` quantile range with :data:`QUADRATURE_NODES` Gauss-Legendre nodes, divided by
    the same rule's integral of ``f_1`` alone (its error cancels). Tested against ``scipy.integrate.quad`` to 1e-8. A density unbounded at an end
    (a parameter below 1, as with a Jeffreys prior) is integrated by QUADPACK's algebraic-weight rule,
    element by element (rare).
    """
    var_t = a_t * b_t / ((a_t + b_t) ** 2 * (a_t + b_t + 1))
    var_c = a_c * b_c / ((a_c + b_c) ** 2 * (a_c + b_c + 1))
    swap = var_t > var_c
    a1, b1 = np.where(swap, a_c, a_t), np.where(swap, b_c, b_t)
    a2, b2 = np.where(swap, a_t, a_c), np.where(swap, b_t, b_c)
    low = special.betaincinv(a1, b1, QUADRATURE_TAIL)
    high = special.betaincinv(a1, b1, 1.0 - QUADRATURE_TAIL)
    half, mid = (high - low) / 2.0, (high + low) / 2.0  # the window (its width cancels below)
    x = mid[..., None] + half[..., None] * _GL_NODES
    x = np.clip(x, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
    log_density = (
        (a1[..., None] - 1.0) * np.log(x)
        + (b1[..., None] - 1.0) * np.log1p(-x)
        - special.betaln(a1, b1)[..., None]
    )
    density = _GL_WEIGHTS * np.exp(log_density)
    # P = int f1 F2 (treatment narrower) or int f1 (1 - F2) (control narrower), each divided by the
    # quadrature's own mass of f1, so that the error of that mass cancels and small P keep their digits
    cdf = np.empty_like(x)
    keep = ~swap
    cdf[keep] = special.betainc(a2[keep][:, None], b2[keep][:, None], x[keep])
    cdf[swap] = special.betaincc(a2[swap][:, None], b2[swap][:, None], x[swap])
    prob = np.sum(density * cdf, axis=-1) / np.sum(density, axis=-1)
    # x^(a-1) or (1-x)^(b-1) not smooth at an end (a or b below 3 and not whole: (almost) no events in an arm and
    # little borrowed, or a Jeffreys prior): Gauss-Legendre converges slowly there, so QUADPACK's
    # algebraic-weight rule takes these (rare) elements one by one
    singular = ((a1 < 3) & (a1 != np.round(a1))) | ((b1 < 3) & (b1 != np.round(b1)))
    if singular.any():
        prob = np.array(prob, dtype=np.float64, copy=True)
        for i in zip(*np.nonzero(singular), strict=True):
            q = _singular_quadrature(float(a1[i]), float(b1[i]), float(a2[i]), float(b2[i]))
            prob[i] = 1.0 - q if swap[i] else q
    return np.asarray(np.clip(prob, 0.0, 1.0), dtype=np.float64)


def _singular_quadrature(a1: float, b1: float, a2: float, b2: float) -> float:
    """``int_0^1 x^(a1-1) (1-x)^(b1-1) I_x(a2, b2) dx / B(a1, b1)`` by QUADPACK's QAWS (algebraic weight)."""
    from scipy import integrate

    value, _ = integrate.quad(
        lambda x: special.betainc(a2, b2, x),
        0.0,
        1.0,
        weight="alg",
        wvar=(a1 - 1.0, b1 - 1.0),
        epsabs=1e-13,
        limit=200,
    )
    return float(value / special.beta(a1, b1))


def rar_allocation(prob: FloatArray, power: float, min_control: float, min_treatment: float) -> FloatArray:
    """Allocation probability to treatment: ``P^c / (P^c + (1-P)^c)``, within ``[min_treatment, 1 - min_control]``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        up, down = prob**power, (1.0 - prob) ** power
        share = np.where(up + down > 0, up / (up + down), 0.5)
    return np.asarray(np.clip(share, min_treatment, 1.0 - min_control), dtype=np.float64)
