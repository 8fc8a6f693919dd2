"""Group-sequential boundaries: a 5-look design in under 50 ms (issue 20), against a baseline in the same run.

Ours: ``immunosep.stats.group_sequential.group_sequential_design`` (the Armitage-McPherson-Rowe recursion on
Gauss-Legendre panels, Newton steps for the bounds). The baseline computes the same 5-look efficacy bounds the
way one would with scipy alone: each bound by Brent's method on ``scipy.stats.multivariate_normal.cdf`` of the
look's joint distribution (Genz's quasi-Monte Carlo, its default accuracy 1e-5, so it is also less exact). The
ratio baseline / ours is the speed-up, comparable across machines. Times are the process's CPU time (median
of ``--repeat`` runs), not wall time: the machine is shared, and another process's load would otherwise count.

Usage: ``python benchmarks/bench_design.py [--repeat 20]``. Exits 1 when a design misses the 50 ms target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from scipy import optimize, stats

from _figures import figure
from immunosep.stats.group_sequential import group_sequential_design, spending

TARGET_MS = 50.0
RATES = [0.2, 0.4, 0.6, 0.8, 1.0]
DESIGNS = {
    "O'Brien-Fleming, efficacy only": dict(alpha_spending="obrien-fleming"),
    "Pocock, two-sided": dict(alpha_spending="pocock", sided=2, alpha=0.05),
    "OF + non-binding OF futility": dict(alpha_spending="obrien-fleming", beta_spending="obrien-fleming"),
    "HSD(-4) + binding HSD(-2) futility": dict(
        alpha_spending="hwang-shih-decani",
        alpha_gamma=-4.0,
        beta_spending="hwang-shih-decani",
        beta_gamma=-2.0,
        binding_futility=True,
    ),
}


def baseline_efficacy_bounds(t: list[float], alpha: float = 0.025) -> list[float]:
    """One-sided O'Brien-Fleming bounds with scipy's multivariate normal CDF (no recursion)."""
    tt = np.asarray(t)
    cov = np.sqrt(np.minimum.outer(tt, tt) / np.maximum.outer(tt, tt))
    cum = spending("obrien-fleming", alpha, tt)
    bounds: list[float] = []
    for k in range(len(t)):
        mvn = stats.multivariate_normal(mean=np.zeros(k + 1), cov=cov[: k + 1, : k + 1])

        def gap(c: float, k: int = k, mvn=mvn) -> float:  # type: ignore[no-untyped-def]
            upper = np.array([*bounds, c])
            return float(1 - mvn.cdf(upper) - cum[k]) if k else float(stats.norm.sf(c) - cum[k])

        bounds.append(float(optimize.brentq(gap, 0.5, 8.0, xtol=1e-6)))
    return bounds


def _median_ms(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(1000 * (time.process_time() - t0))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    group_sequential_design(RATES)  # warm-up (imports, first calls)
    baseline_ms = _median_ms(lambda: baseline_efficacy_bounds(RATES), max(3, args.repeat // 5))
    ours_bounds = group_sequential_design(RATES).critical_values
    diff = max(abs(a - b) for a, b in zip(ours_bounds, baseline_efficacy_bounds(RATES), strict=True))
    print(
        f"baseline (scipy multivariate_normal.cdf + brentq), 5-look OF efficacy bounds: {baseline_ms:.1f} ms"
        f" (largest difference from ours {diff:.1e} on the z scale)"
    )
    print(f"{'5-look design':<38} {'median CPU ms':>10} {'vs baseline':>12} {'target':>8}")
    ok = True
    slowest = 0.0
    for name, kwargs in DESIGNS.items():
        ms = _median_ms(lambda kwargs=kwargs: group_sequential_design(RATES, **kwargs), args.repeat)
        hit = ms < TARGET_MS
        ok &= hit
        slowest = max(slowest, ms)
        print(f"{name:<38} {ms:>13.1f} {baseline_ms / ms:>11.1f}x {'met' if hit else 'MISSED':>8}")
    print(f"target: every 5-look design < {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    figure(
        "group-sequential design, 5 looks (slowest of the designs)",
        f"{slowest:.1f} ms CPU",
        f"< {TARGET_MS:.0f} ms",
        f"scipy MVN {baseline_ms:.0f} ms ({baseline_ms / slowest:.0f}x)",
        ok,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
