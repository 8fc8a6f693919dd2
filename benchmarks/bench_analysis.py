"""Analysis throughput: ADSL/ADSOFA/ADTTE/ADAE derivation plus the whole statistical analysis plan.

Sizes: 280 (the trial), 10,000 and 100,000 randomized virtual patients, generated as raw frames by the
vectorized synthetic generator of the tests (``tests/fixtures/synthetic.py``, a test fixture, not part of the
package; generation is timed apart and not counted).
Target (issue 6): derivation + full plan for 100,000 patients in under 60 s on this 2-core machine.

The baseline is the 280-patient run in the same process: each larger run is reported as its time per
patient relative to the baseline's (below 1 = scales better than linearly), so the numbers compare across
machines. Usage: ``python benchmarks/bench_analysis.py [--sizes 280 10000 100000]``. Exits 1 when the target
is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from immunosep.analysis.datasets import derive_datasets
from immunosep.analysis.sap import run_sap
from immunosep.protocol import default_protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' data builders
from fixtures.synthetic import synthetic_raw_trial

TARGET_SECONDS = 60.0
TARGET_PATIENTS = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[280, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=20251208)
    args = parser.parse_args(argv)
    protocol = default_protocol()
    baseline_per_patient = None
    ok = True
    print(
        f"{'patients':>9} {'generate s':>10} {'derive s':>9} {'plan s':>8} {'total s':>8} {'patients/s':>11} {'per-patient vs 280':>19}"
    )
    for n in args.sizes:
        t0 = time.perf_counter()
        raw = synthetic_raw_trial(n, protocol, seed=args.seed)
        t1 = time.perf_counter()
        ds = derive_datasets(raw, protocol)
        t2 = time.perf_counter()
        results = run_sap(ds, protocol)
        t3 = time.perf_counter()
        total = t3 - t1
        per_patient = total / n
        if baseline_per_patient is None:
            baseline_per_patient = per_patient
        ratio = per_patient / baseline_per_patient
        print(
            f"{n:>9} {t1 - t0:>10.2f} {t2 - t1:>9.2f} {t3 - t2:>8.2f} {total:>8.2f} {n / total:>11.0f} {ratio:>19.3f}"
        )
        assert results["consort"]["randomized"] == n
        if n >= TARGET_PATIENTS:
            hit = total < TARGET_SECONDS
            ok &= hit
            print(
                f"target {TARGET_PATIENTS} patients < {TARGET_SECONDS:.0f} s: {'met' if hit else 'MISSED'} ({total:.1f} s)"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
