"""Monte Carlo throughput: virtual trials per second on 1 and 2 Dask workers, same run.

Each virtual trial: 280 randomized patients enrolled by the protocol's classification, baseline SOFA
scored from its inputs, daily SOFA to day 15 with death, discharge and withdrawal, the primary endpoint
and 28-day mortality derived by the endpoint kernel, and two two-sided Fisher tests.

Target (issue 5): 10,000 trials in under 30 s on this 2-core machine (wall clock, Dask start-up
included). The baseline is the same engine run serially in this process; the ratios of the Dask runs
against it (speed-up) are reported alongside, and all three runs must give identical results.

Usage: ``python benchmarks/bench_simulate.py [--trials 10000] [--patients 280]``. Exits 1 when a target
is missed or the results differ between runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from immunosep.protocol import default_protocol
from immunosep.simulate.model import default_parameters
from immunosep.simulate.montecarlo import dask_runner, design

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=280)
    parser.add_argument("--seed", type=int, default=20251208)
    args = parser.parse_args(argv)
    protocol, params = default_protocol(), default_parameters()

    started = time.perf_counter()
    baseline = design(
        params, protocol, trials=args.trials, patients=args.patients, seed=args.seed, use_dask=False
    )
    serial_s = time.perf_counter() - started
    print(f"serial (baseline, this process): {serial_s:6.2f} s  {args.trials / serial_s:8.0f} trials/s")

    ok = True
    for workers in (1, 2):
        started = time.perf_counter()
        with dask_runner(workers=workers) as run:
            ready = time.perf_counter()
            result = design(
                params, protocol, trials=args.trials, patients=args.patients, seed=args.seed, runner=run
            )
        elapsed = time.perf_counter() - started
        same = result.as_dict() == baseline.as_dict()
        ok &= same
        print(
            f"dask, {workers} worker(s):             {elapsed:6.2f} s  {args.trials / elapsed:8.0f} trials/s  "
            f"(cluster start {ready - started:.2f} s; x{serial_s / elapsed:.2f} vs baseline; "
            f"{'identical' if same else 'DIFFERENT'} results)"
        )
        if workers == 2 and args.trials >= 10_000:
            hit = elapsed < TARGET_SECONDS
            ok &= hit
            print(
                f"target: {args.trials} trials in < {TARGET_SECONDS:.0f} s on 2 workers: {'met' if hit else 'MISSED'}"
            )
    power = baseline.endpoints["primary"]
    print(f"primary power {power.rejection_rate:.4f} (MC SE {power.mcse:.4f}) at {args.patients} patients")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
