"""Group-sequential designs: alpha- and beta-spending boundaries, stopping probabilities, sample sizes.

The test statistics ``Z_1..Z_K`` at information fractions ``t_1 < ... < t_K = 1`` are the canonical joint
normal process (Jennison & Turnbull 2000, ch. 3): ``cov(Z_j, Z_k) = sqrt(t_j / t_k)`` and, under a drift
``theta`` (the expected z at full information), ``E Z_k = theta sqrt(t_k)``. The boundaries come from the
Armitage-McPherson-Rowe (1969) recursion: the sub-density of ``Z_k`` on the continuation region is carried
from look to look on a grid, integrated by Gauss-Legendre panels (narrower than the step's kernel, so the
integrals are exact to about 1e-12), and each bound solves "probability of crossing it now = the spending
function's increment" (Lan & DeMets 1983).

Conventions follow R rpact's ``getDesignGroupSequential`` (validation/group_sequential.R compares every
number to 1e-6):

- alpha spending: ``obrien-fleming`` (Lan-DeMets, rpact "asOF": ``2 s (1 - Phi(z_{1-alpha/(2 s)} / sqrt t))``
  with ``s`` = sides), ``pocock`` (Lan-DeMets, "asP": ``alpha log(1 + (e - 1) t)``), ``hwang-shih-decani``
  ("asHSD": ``alpha (1 - exp(-gamma t)) / (1 - exp(-gamma))``, ``gamma = 0`` linear);
- ``sided = 2`` gives symmetric boundaries spending ``alpha`` over both tails; power counts the upper
  tail (rpact's ``twoSidedPower = FALSE``);
- futility by beta spending (one-sided designs; rpact "bsOF", "bsP", "bsHSD" with ``gammaB``): the drift
  is the one where the last futility bound meets the last critical value, so the design has power
  ``1 - beta`` exactly. Non-binding futility: the critical values ignore the futility bounds (type I error
  at most alpha whether or not the DSMB stops for futility); binding: the critical values are recomputed
  with the futility bounds (lower critical values, type I error alpha only if futility stops are obeyed).

Sample sizes (rpact ``getSampleSizeRates``/``getSampleSizeSurvival``): the fixed design's size times the
inflation factor ``theta^2 / (z_{1-alpha/s} + z_{1-beta})^2``; expected sizes under H0, under half the
effect and under H1 from the stopping probabilities (futility stops included).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import special as sc

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import SampleSize, SequentialDesign

ALPHA_SPENDING = ("obrien-fleming", "pocock", "hwang-shih-decani")
BETA_SPENDING = ("none", *ALPHA_SPENDING)
MAX_LOOKS = 10

_CLIP = 8.5
"""The grid of a look covers at most +-8.5 around the process's mean: the mass outside is below 1e-16."""
_NODES = 10
"""Gauss-Legendre nodes per panel."""
_PANEL = 2.0
"""Widest panel (z units): with 10 nodes a panel of two kernel SDs integrates to about 1e-12."""
_XTOL = 1e-12
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_NODES)
_SQRT_2PI = math.sqrt(2 * math.pi)
_METHOD = "Lan-DeMets alpha spending, Armitage-McPherson-Rowe recursion (Gauss-Legendre), as rpact"


def _phi(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(-0.5 * x * x) / _SQRT_2PI)


def _z(p: float) -> float:
    """The upper ``p`` quantile of the standard normal."""
    return float(-sc.ndtri(p))


def spending(
    kind: str,
    total: float,
    t: np.ndarray | Sequence[float],
    *,
    gamma: float | None = None,
    sided: int = 1,
    beta: bool = False,
) -> np.ndarray:
    """Cumulative error spent at information fractions ``t`` (``total`` at ``t = 1``), rpact's definitions.

    ``beta=True`` gives the beta-spending variant of O'Brien-Fleming (no factor for the sides).
    """
    tt = np.asarray(t, dtype=float)
    if kind == "obrien-fleming":
        s = 1 if beta else sided
        with np.errstate(divide="ignore"):
            return np.asarray(2 * s * sc.ndtr(-_z(total / (2 * s)) / np.sqrt(tt)))
    if kind == "pocock":
        return total * np.log1p((math.e - 1) * tt)
    if kind == "hwang-shih-decani":
        g = 0.0 if gamma is None else float(gamma)
        if g == 0:
            return total * tt
        return total * -np.expm1(-g * tt) / -math.expm1(-g)
    raise ImmunoSepError(f"unknown spending function {kind!r}; choose one of {', '.join(ALPHA_SPENDING)}")


class _Walk:
    """The sub-density of ``Z_k - drift sqrt(t_k)`` on the continuation region, carried look by look.

    ``nodes`` and ``mass`` (quadrature weight x density) describe look ``k - 1``; ``crossing`` gives the
    probability of leaving above or below at look ``k`` for candidate bounds, ``advance`` moves to look ``k``.
    """

    def __init__(self, t: np.ndarray, drift: float) -> None:
        self.t = t
        self.sqrt_t = np.sqrt(t)
        self.shift = drift * self.sqrt_t
        self.k = 0
        self.nodes = np.zeros(0)
        self.mass = np.zeros(0)

    def _args(self, bound: float) -> np.ndarray:
        k = self.k
        b = bound - self.shift[k]
        if k == 0:
            return np.array([b])
        dt = self.t[k] - self.t[k - 1]
        return np.asarray((b * self.sqrt_t[k] - self.nodes * self.sqrt_t[k - 1]) / math.sqrt(dt))

    def up(self, bound: float) -> float:
        """P(continue to look k - 1, then Z_k >= bound)."""
        if bound == math.inf:
            return 0.0
        a = self._args(bound)
        return float(sc.ndtr(-a[0])) if self.k == 0 else float(self.mass @ sc.ndtr(-a))

    def low(self, bound: float) -> float:
        """P(continue to look k - 1, then Z_k <= bound)."""
        if bound == -math.inf:
            return 0.0
        a = self._args(bound)
        return float(sc.ndtr(a[0])) if self.k == 0 else float(self.mass @ sc.ndtr(a))

    def d_up(self, bound: float) -> float:
        """Derivative of :meth:`up` in the bound (negative)."""
        a = self._args(bound)
        if self.k == 0:
            return -float(_phi(a)[0])
        scale = self.sqrt_t[self.k] / math.sqrt(self.t[self.k] - self.t[self.k - 1])
        return -float(self.mass @ _phi(a)) * float(scale)

    def d_low(self, bound: float) -> float:
        """Derivative of :meth:`low` in the bound (positive)."""
        return -self.d_up(bound)

    def advance(self, lower: float, upper: float) -> None:
        """Condition on ``lower < Z_k < upper`` and move to look ``k``."""
        k = self.k
        lo = max(lower - self.shift[k], -_CLIP)
        hi = min(upper - self.shift[k], _CLIP)
        if k + 1 < len(self.t):  # panels at most twice the next step's kernel SD in this look's scale
            width = min(_PANEL, _PANEL * math.sqrt((self.t[k + 1] - self.t[k]) / self.t[k]))
        else:
            width = _PANEL
        if hi <= lo:
            self.nodes, self.mass = np.zeros(1), np.zeros(1)
            self.k += 1
            return
        panels = max(1, math.ceil((hi - lo) / width))
        edges = np.linspace(lo, hi, panels + 1)
        half = 0.5 * (edges[1:] - edges[:-1])
        mid = 0.5 * (edges[1:] + edges[:-1])
        x = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
        w = (half[:, None] * _GL_W[None, :]).ravel()
        if k == 0:
            density = _phi(x)
        else:
            dt = self.t[k] - self.t[k - 1]
            sd = math.sqrt(dt)
            kernel = _phi((x[:, None] * self.sqrt_t[k] - self.nodes[None, :] * self.sqrt_t[k - 1]) / sd)
            density = kernel @ self.mass * (self.sqrt_t[k] / sd)
        self.nodes, self.mass = x, w * density
        self.k += 1


def _solve(f, df, target: float, start: float, lo: float, hi: float) -> float:  # type: ignore[no-untyped-def]
    """Root of the monotone ``f(x) = target`` on ``[lo, hi]``: Newton from ``start``, bisection as a net."""
    x = min(max(start, lo), hi)
    for _ in range(30):
        fx = f(x) - target
        d = df(x)
        if d == 0 or not math.isfinite(d):
            break
        step = fx / d
        nxt = x - step
        if not lo <= nxt <= hi:
            break
        x = nxt
        if abs(step) < _XTOL:
            return float(x)
    g_lo, g_hi = f(lo) - target, f(hi) - target
    if g_lo * g_hi > 0:
        return lo if abs(g_lo) < abs(g_hi) else hi
    return float(optimize.brentq(lambda v: f(v) - target, lo, hi, xtol=_XTOL, rtol=4 * np.finfo(float).eps))


def _bracketed_root(f, z_fixed: float) -> float:  # type: ignore[no-untyped-def]
    """The drift where the increasing, smooth ``f`` crosses 0: secant steps from the fixed design's drift (a
    group-sequential design needs about 1 to 1.2 times it), Brent's method on a bracket if they stray."""
    x0, x1 = 1.02 * z_fixed, 1.1 * z_fixed
    f0, f1 = f(x0), f(x1)
    for _ in range(20):
        if f1 == f0:
            break
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if not 0.2 * z_fixed < x2 < 5 * z_fixed:
            break
        if abs(x2 - x1) < _XTOL:
            return float(x2)
        x0, f0, x1 = x1, f1, x2
        f1 = f(x1)
    lo, hi = 0.5 * z_fixed, 2.0 * z_fixed
    while f(hi) < 0 and hi < 100:
        lo, hi = hi, 2 * hi
    return float(optimize.brentq(f, lo, hi, xtol=_XTOL))


@dataclass(frozen=True)
class StageProbabilities:
    """Per look: probability of stopping for efficacy (upper; ``lower`` is the lower efficacy tail of a
    two-sided design) and for futility, under one drift."""

    drift: float
    reject_upper: tuple[float, ...]
    reject_lower: tuple[float, ...]
    futility: tuple[float, ...]

    @property
    def stop(self) -> tuple[float, ...]:
        """Probability of stopping at each look for any reason (the last look takes the rest)."""
        k = len(self.reject_upper)
        stops = [self.reject_upper[i] + self.reject_lower[i] + self.futility[i] for i in range(k - 1)]
        return (*stops, 1.0 - sum(stops))

    def expected_fraction(self, t: Sequence[float]) -> float:
        """Expected information (or sample size) as a fraction of the maximum."""
        return float(sum(ti * si for ti, si in zip(t, self.stop, strict=True)))


@dataclass(frozen=True)
class GroupSequentialDesign:
    """A group-sequential design: boundaries on the z scale, spending, drift and operating characteristics.

    ``critical_values`` are the efficacy bounds (a two-sided design also rejects at ``-c``);
    ``futility_bounds`` the interim futility bounds (looks 1..K-1; empty without futility);
    ``nominal_p`` the one-sided nominal P of each critical value (rpact's stage levels); ``alpha_spent`` and
    ``beta_spent`` cumulative; ``drift`` the expected z at full information under H1 (rpact ``sqrt(shift)``);
    ``inflation_factor`` the maximum information over the fixed design's; ``asn_*`` the expected information
    as a fraction of the fixed design's (rpact ``averageSampleNumber0/01/1``).
    """

    information_rates: tuple[float, ...]
    alpha: float
    beta: float
    sided: int
    alpha_spending: str
    alpha_gamma: float | None
    beta_spending: str
    beta_gamma: float | None
    binding_futility: bool
    critical_values: tuple[float, ...]
    futility_bounds: tuple[float, ...]
    nominal_p: tuple[float, ...]
    alpha_spent: tuple[float, ...]
    beta_spent: tuple[float, ...]
    drift: float
    inflation_factor: float
    power: tuple[float, ...]
    h0: StageProbabilities
    h1: StageProbabilities
    asn_h0: float
    asn_h01: float
    asn_h1: float
    method: str = _METHOD

    @property
    def looks(self) -> int:
        """The number of looks, the final analysis included."""
        return len(self.information_rates)

    def probabilities(self, drift: float) -> StageProbabilities:
        """Stopping probabilities at each look under ``drift`` (futility stops obeyed)."""
        return _stage_probabilities(self, drift)


def _check_design(
    information_rates: Sequence[float],
    alpha: float,
    beta: float,
    sided: int,
    alpha_spending: str,
    alpha_gamma: float | None,
    beta_spending: str,
    beta_gamma: float | None,
) -> np.ndarray:
    try:
        t = np.asarray([float(v) for v in information_rates], dtype=float)
    except (TypeError, ValueError):
        raise ImmunoSepError(f"information rates must be numbers, got {information_rates!r}") from None
    if not 1 <= len(t) <= MAX_LOOKS:
        raise ImmunoSepError(f"a design has 1 to {MAX_LOOKS} looks, got {len(t)}")
    if not np.all(np.isfinite(t)) or t[0] <= 0 or np.any(np.diff(t) <= 0) or abs(t[-1] - 1) > 1e-12:
        raise ImmunoSepError(
            f"information rates must increase strictly from above 0 to exactly 1 at the last look, got {list(t)}"
        )
    for value, name, top in ((alpha, "alpha", 0.5), (beta, "beta", 0.5)):
        if not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value < top:
            raise ImmunoSepError(f"{name} must be strictly between 0 and {top}, got {value!r}")
    if sided not in (1, 2):
        raise ImmunoSepError(f"sided must be 1 or 2, got {sided!r}")
    if alpha_spending not in ALPHA_SPENDING:
        raise ImmunoSepError(
            f"unknown alpha spending {alpha_spending!r}; choose one of {', '.join(ALPHA_SPENDING)}"
        )
    if beta_spending not in BETA_SPENDING:
        raise ImmunoSepError(
            f"unknown beta spending {beta_spending!r}; choose one of {', '.join(BETA_SPENDING)}"
        )
    for kind, gamma, name in (
        (alpha_spending, alpha_gamma, "alpha_gamma"),
        (beta_spending, beta_gamma, "beta_gamma"),
    ):
        if kind == "hwang-shih-decani":
            if gamma is None or not isinstance(gamma, int | float) or not -40 <= gamma <= 40:
                raise ImmunoSepError(
                    f"{name}: Hwang-Shih-DeCani needs gamma between -40 and 40, got {gamma!r}"
                )
        elif gamma is not None:
            raise ImmunoSepError(f"{name} is only for hwang-shih-decani spending, not {kind!r}")
    if beta_spending != "none" and sided == 2:
        raise ImmunoSepError(
            "beta-spending futility is for one-sided designs; use sided = 1 (alpha halved) or no futility"
        )
    if beta_spending != "none" and len(t) < 2:
        raise ImmunoSepError("beta-spending futility needs at least 2 looks")
    return t


def _critical_values(t: np.ndarray, increments: np.ndarray, sided: int, lower: np.ndarray) -> np.ndarray:
    """Efficacy bounds spending ``increments`` under H0, with continuation below ``lower`` cut (binding)."""
    walk = _Walk(t, 0.0)
    c = np.empty(len(t))
    start = 2.0
    for k in range(len(t)):
        if increments[k] <= 0:
            c[k] = math.inf
        elif sided == 1:
            c[k] = _solve(walk.up, walk.d_up, increments[k], start, -_CLIP, 2 * _CLIP)
        else:
            c[k] = _solve(
                lambda b: walk.up(b) + walk.low(-b),
                lambda b: walk.d_up(b) - walk.d_low(-b),
                increments[k],
                start,
                0.0,
                2 * _CLIP,
            )
        start = c[k] if math.isfinite(c[k]) else start
        if k < len(t) - 1:
            walk.advance(-c[k] if sided == 2 else lower[k], c[k])
    return c


def _futility_walk(
    t: np.ndarray,
    drift: float,
    c: np.ndarray,
    beta_increments: np.ndarray,
    alpha_increments: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Futility bounds spending ``beta_increments`` under ``drift``; with ``alpha_increments`` (binding) the
    critical values are recomputed look by look with the futility bounds cut from H0's continuation."""
    k_max = len(t)
    h1 = _Walk(t, drift)
    h0 = _Walk(t, 0.0) if alpha_increments is not None else None
    c = c.copy()
    f = np.empty(k_max)
    for k in range(k_max):
        if h0 is not None and alpha_increments is not None:
            c[k] = _solve(h0.up, h0.d_up, alpha_increments[k], c[k], -_CLIP, 2 * _CLIP)
        centre = drift * math.sqrt(t[k])
        f[k] = _solve(
            h1.low,
            h1.d_low,
            beta_increments[k],
            centre + _z(1 - min(beta_increments[k], 0.5)),
            centre - _CLIP,
            centre + _CLIP,
        )
        if k < k_max - 1:
            if f[k] >= c[k]:  # only far above the answer, while the drift is searched
                f[k + 1 :] = math.inf
                return c, f
            h1.advance(f[k], c[k])
            if h0 is not None:
                h0.advance(f[k], c[k])
    return c, f


def _stage_probabilities(design: GroupSequentialDesign, drift: float) -> StageProbabilities:
    t = np.asarray(design.information_rates)
    c = design.critical_values
    k_max = len(t)
    lower = (*design.futility_bounds, -math.inf) if design.futility_bounds else (-math.inf,) * k_max
    walk = _Walk(t, drift)
    up, down, fut = [], [], []
    for k in range(k_max):
        up.append(walk.up(c[k]))
        if design.sided == 2:
            down.append(walk.low(-c[k]))
            fut.append(0.0)
            if k < k_max - 1:
                walk.advance(-c[k], c[k])
        else:
            down.append(0.0)
            fut.append(walk.low(lower[k]) if k < k_max - 1 else 0.0)
            if k < k_max - 1:
                walk.advance(lower[k], c[k])
    return StageProbabilities(float(drift), tuple(up), tuple(down), tuple(fut))


def group_sequential_design(
    information_rates: Sequence[float],
    *,
    alpha: float = 0.025,
    beta: float = 0.2,
    sided: int = 1,
    alpha_spending: str = "obrien-fleming",
    alpha_gamma: float | None = None,
    beta_spending: str = "none",
    beta_gamma: float | None = None,
    binding_futility: bool = False,
) -> GroupSequentialDesign:
    """The boundaries and operating characteristics of a group-sequential design (rpact conventions).

    ``alpha`` is one-sided for ``sided = 1`` and the two tails together for ``sided = 2`` (rpact's ``alpha``);
    ``beta = 1 - power``.
    """
    t = _check_design(
        information_rates, alpha, beta, sided, alpha_spending, alpha_gamma, beta_spending, beta_gamma
    )
    k_max = len(t)
    cum_alpha = spending(alpha_spending, alpha, t, gamma=alpha_gamma, sided=sided)
    cum_alpha[-1] = alpha
    alpha_inc = np.diff(cum_alpha, prepend=0.0)
    no_lower = np.full(k_max, -math.inf)
    c = _critical_values(t, alpha_inc, sided, no_lower)
    z_fixed = _z(alpha / sided) + _z(beta)
    futility: tuple[float, ...] = ()
    if beta_spending == "none":

        def power_gap(drift: float) -> float:
            walk = _Walk(t, drift)
            total = 0.0
            for k in range(k_max):
                total += walk.up(c[k])
                if k < k_max - 1:
                    walk.advance(-c[k] if sided == 2 else -math.inf, c[k])
            return total - (1 - beta)

        drift = _bracketed_root(power_gap, z_fixed)
        beta_spent: tuple[float, ...] = ()
    else:
        cum_beta = spending(beta_spending, beta, t, gamma=beta_gamma, beta=True)
        cum_beta[-1] = beta
        beta_inc = np.diff(cum_beta, prepend=0.0)
        binding_inc = alpha_inc if binding_futility else None

        def meet(drift: float) -> float:
            cc, ff = _futility_walk(t, drift, c, beta_inc, binding_inc)
            return float(
                min(ff[-1] - cc[-1], 50.0)
            )  # inf: an interim futility bound passed the critical value

        drift = _bracketed_root(meet, z_fixed)
        c, f = _futility_walk(t, drift, c, beta_inc, binding_inc)
        futility = tuple(float(v) for v in f[:-1])
    provisional = GroupSequentialDesign(
        information_rates=tuple(float(v) for v in t),
        alpha=float(alpha),
        beta=float(beta),
        sided=sided,
        alpha_spending=alpha_spending,
        alpha_gamma=alpha_gamma,
        beta_spending=beta_spending,
        beta_gamma=beta_gamma,
        binding_futility=bool(binding_futility),
        critical_values=tuple(float(v) for v in c),
        futility_bounds=futility,
        nominal_p=tuple(float(sc.ndtr(-v)) for v in c),
        alpha_spent=tuple(float(v) for v in cum_alpha),
        beta_spent=(),
        drift=drift,
        inflation_factor=drift**2 / z_fixed**2,
        power=(),
        h0=StageProbabilities(0.0, (), (), ()),
        h1=StageProbabilities(drift, (), (), ()),
        asn_h0=math.nan,
        asn_h01=math.nan,
        asn_h1=math.nan,
    )
    h0 = _stage_probabilities(provisional, 0.0)
    h01 = _stage_probabilities(provisional, drift / 2)
    h1 = _stage_probabilities(provisional, drift)
    if beta_spending != "none":
        fut = list(h1.futility[:-1])
        beta_spent = (*np.cumsum(fut).tolist(), float(beta))
    inflation = provisional.inflation_factor
    return GroupSequentialDesign(
        **{
            **provisional.__dict__,
            "beta_spent": tuple(float(v) for v in beta_spent),
            "power": tuple(float(v) for v in np.cumsum(h1.reject_upper)),
            "h0": h0,
            "h1": h1,
            "asn_h0": h0.expected_fraction(provisional.information_rates) * inflation,
            "asn_h01": h01.expected_fraction(provisional.information_rates) * inflation,
            "asn_h1": h1.expected_fraction(provisional.information_rates) * inflation,
        }
    )


@dataclass(frozen=True)
class GroupSequentialSampleSize:
    """The size of a group-sequential trial: patients (two proportions) or events (survival).

    ``fixed`` is the fixed design's size, ``maximum`` the group-sequential maximum (``fixed`` x inflation
    factor), ``per_look`` the cumulative size at each look, ``expected_*`` the expected size under H0, half
    the effect and H1 (futility stops obeyed). Survival also gives ``subjects_maximum`` when accrual and
    follow-up are given. Sizes are not rounded (as rpact); round up when planning.
    """

    endpoint: str
    unit: str
    fixed: float
    maximum: float
    per_look: tuple[float, ...]
    expected_h0: float
    expected_h01: float
    expected_h1: float
    subjects_maximum: float | None
    method: str


def _scaled(
    design: GroupSequentialDesign,
    fixed: float,
    endpoint: str,
    unit: str,
    method: str,
    subjects_per_unit: float | None = None,
) -> GroupSequentialSampleSize:
    maximum = fixed * design.inflation_factor
    return GroupSequentialSampleSize(
        endpoint=endpoint,
        unit=unit,
        fixed=fixed,
        maximum=maximum,
        per_look=tuple(maximum * t for t in design.information_rates),
        expected_h0=design.asn_h0 * fixed,
        expected_h01=design.asn_h01 * fixed,
        expected_h1=design.asn_h1 * fixed,
        subjects_maximum=None if subjects_per_unit is None else maximum * subjects_per_unit,
        method=method,
    )


def sample_size_rates(design: GroupSequentialDesign, p1: float, p2: float) -> GroupSequentialSampleSize:
    """Patients (both arms, 1:1) to detect ``p1 > p2`` (``p1`` the experimental arm) with ``design``.

    The fixed size is the normal approximation with the pooled variance under H0 and the unpooled one under
    H1 (rpact ``getSampleSizeRates``, ``normalApproximation = TRUE``; Fleiss eq. 4.14 with the design's
    one-sided ``alpha / sided``).
    """
    for value, name in ((p1, "p1"), (p2, "p2")):
        if not isinstance(value, int | float) or not 0 < value < 1:
            raise ImmunoSepError(f"{name} must be strictly between 0 and 1, got {value!r}")
    if p1 <= p2:
        raise ImmunoSepError(
            f"p1 ({p1}) must exceed p2 ({p2}): the design tests for a higher proportion in the experimental arm"
        )
    za, zb = _z(design.alpha / design.sided), _z(design.beta)
    pbar = (p1 + p2) / 2
    per_arm = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (
        p1 - p2
    ) ** 2
    return _scaled(
        design,
        2 * per_arm,
        "two proportions",
        "patients",
        "normal approximation, pooled variance under H0 (rpact getSampleSizeRates)",
    )


def sample_size_survival(
    design: GroupSequentialDesign,
    hazard_ratio: float,
    *,
    median_control: float | None = None,
    accrual_time: float | None = None,
    follow_up_time: float | None = None,
) -> GroupSequentialSampleSize:
    """Events (both arms, 1:1) for a log-rank test of ``hazard_ratio`` (Schoenfeld 1981) with ``design``.

    ``events_fixed = 4 (z_{1-alpha/s} + z_{1-beta})^2 / log(HR)^2``. With the control arm's median survival,
    a uniform accrual over ``accrual_time`` and ``follow_up_time`` after it (exponential survival, no
    dropout, same time unit), the patients are the events over the mean probability of an event by the end
    (rpact ``getSampleSizeSurvival``).
    """
    if (
        not isinstance(hazard_ratio, int | float)
        or not math.isfinite(hazard_ratio)
        or not 0 < hazard_ratio < 1
    ):
        raise ImmunoSepError(
            f"hazard_ratio must be strictly between 0 and 1 (the experimental arm's hazard is lower), "
            f"got {hazard_ratio!r}"
        )
    z = _z(design.alpha / design.sided) + _z(design.beta)
    events = 4 * z**2 / math.log(hazard_ratio) ** 2
    per_event = None
    given = [v is not None for v in (median_control, accrual_time, follow_up_time)]
    if any(given):
        if not all(given):
            raise ImmunoSepError("give median_control, accrual_time and follow_up_time together, or none")
        for value, name in (
            (median_control, "median_control"),
            (accrual_time, "accrual_time"),
            (follow_up_time, "follow_up_time"),
        ):
            if (
                not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
                or (value == 0 and name != "follow_up_time")
            ):
                raise ImmunoSepError(f"{name} must be a positive time, got {value!r}")
        a, f = float(accrual_time), float(follow_up_time)  # type: ignore[arg-type]
        lam2 = math.log(2) / float(median_control)  # type: ignore[arg-type]

        def p_event(lam: float) -> float:
            return 1 - (math.exp(-lam * f) - math.exp(-lam * (a + f))) / (lam * a)

        per_event = 2 / (p_event(lam2 * hazard_ratio) + p_event(lam2))
    return _scaled(
        design,
        events,
        "survival (log-rank)",
        "events",
        "Schoenfeld events (rpact getSampleSizeSurvival); patients from uniform accrual and "
        "exponential survival",
        per_event,
    )


def planned_design(
    sequential: SequentialDesign | None, sample_size: SampleSize
) -> tuple[GroupSequentialDesign, GroupSequentialSampleSize]:
    """The protocol's design (``[design.sequential]``, or the fixed design when ``None``) and its size.

    Alpha and power come from ``[sample_size]``: a two-sided design spends ``alpha_two_sided`` over both
    tails, a one-sided one ``alpha_two_sided / 2``; the proportions are ``p_precision`` (experimental) and
    ``p_placebo``.
    """
    if sequential is None:
        design = group_sequential_design(
            [1.0], alpha=sample_size.alpha_two_sided, beta=1 - sample_size.power, sided=2
        )
        return design, sample_size_rates(design, sample_size.p_precision, sample_size.p_placebo)
    s = sequential
    alpha = sample_size.alpha_two_sided if s.sided == 2 else sample_size.alpha_two_sided / 2
    design = group_sequential_design(
        s.information_rates,
        alpha=alpha,
        beta=1 - sample_size.power,
        sided=s.sided,
        alpha_spending=s.alpha_spending,
        alpha_gamma=s.alpha_gamma,
        beta_spending="none" if s.futility == "none" else s.beta_spending,
        beta_gamma=None if s.futility == "none" else s.beta_gamma,
        binding_futility=s.futility == "binding",
    )
    if s.endpoint == "survival":
        assert s.hazard_ratio is not None  # the schema insists
        size = sample_size_survival(
            design,
            s.hazard_ratio,
            median_control=s.median_control_days,
            accrual_time=s.accrual_days,
            follow_up_time=s.follow_up_days,
        )
    else:
        size = sample_size_rates(design, sample_size.p_precision, sample_size.p_placebo)
    return design, size
