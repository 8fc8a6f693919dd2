"""Adaptive-design throughput: Bayesian response-adaptive virtual trials per second, serial and on Dask.

Each virtual trial: up to 280 patients in two immune strata (published rates), 3 looks (140, 210, 280
patients with outcome), the beta-binomial posterior probability of benefit per stratum at each look,
success/futility stopping and response-adaptive allocation with a minimum control share
(the bundled ``adaptive_design.toml``). A run simulates the design's scenario, its global null and its
two partial nulls (one stratum without effect): 4 x ``--trials`` trials.

Target (issue 20): 10,000 adaptive trials in under 30 s on this 2-core machine (wall clock of the
2-worker Dask run, cluster start-up included). The baseline is the same engine run serially in this
process; the ratios of the Dask runs against it are reported, and all runs must give identical results.

Usage: ``python benchmarks/bench_adaptive.py [--trials 10000]``. Exits 1 when a target is missed or the
results differ between runs.
"""

from __future__ import annotations

import argparse
import sys
import time

from _figures import figure
from immunosep.simulate.adaptive import adaptive_client_runner, load_design, resolve_scenario, run_design
from immunosep.simulate.montecarlo import dask_client

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20251208)
    args = parser.parse_args(argv)
    design = load_design()
    scenario = resolve_scenario(design.scenario)
    # run_design simulates the scenario, the global null and each partial null; the target is for
    # `trials` trials, so each run is timed as a whole and the rate is reported per simulated trial.
    started = time.perf_counter()
    baseline = run_design(design, trials=args.trials, seed=args.seed, scenario=scenario)
    serial_s = time.perf_counter() - started
    simulated = args.trials * (2 + len(baseline.get("partial_nulls", {})))
    print(f"serial (baseline, this process): {serial_s:6.2f} s  {simulated / serial_s:8.0f} trials/s")

    ok = True
    for workers in (1, 2):
        started = time.perf_counter()
        with dask_client(workers=workers) as client:
            ready = time.perf_counter()
            result = run_design(
                design,
                trials=args.trials,
                seed=args.seed,
                scenario=scenario,
                run=adaptive_client_runner(client),
            )
        elapsed = time.perf_counter() - started
        compute = elapsed - (ready - started)
        same = result == baseline
        ok &= same
        print(
            f"dask, {workers} worker(s):             {elapsed:6.2f} s  {simulated / elapsed:8.0f} trials/s  "
            f"(cluster start {ready - started:.2f} s, simulation {compute:.2f} s; x{serial_s / elapsed:.2f} vs "
            f"baseline; {'identical' if same else 'DIFFERENT'} results)"
        )
        if workers == 2:
            hit = elapsed < TARGET_SECONDS if args.trials >= 10_000 else None
            ok &= hit is not False
            print(
                f"target: {args.trials} adaptive trials (here {simulated} with the nulls) in < "
                f"{TARGET_SECONDS:.0f} s on 2 workers: "
                + ("not judged (fewer than 10,000 trials)" if hit is None else "met" if hit else "MISSED")
            )
            figure(
                f"{args.trials} adaptive trials (+ nulls), 2 Dask workers",
                f"{elapsed:.1f} s (cluster start {ready - started:.1f} s)",
                f"< {TARGET_SECONDS:.0f} s",
                f"serial {serial_s:.1f} s",
                hit,
            )
    for name, stratum in baseline["alternative"]["strata"].items():
        power, size = stratum["power"], stratum["expected_sample_size"]
        error = baseline["null"]["strata"][name]["type1_error"]
        print(
            f"{name}: power {power['estimate']:.4f} (MC SE {power['mcse']:.4f}), type I error "
            f"{error['estimate']:.4f} (MC SE {error['mcse']:.4f}), expected N {size['estimate']:.1f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
