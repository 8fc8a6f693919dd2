"""SOFA scoring throughput and the command line's start, each figure beside its target and its baseline.

Targets (issue 21; issue 2 had 20 M/s and 5 s): at least 50 million patient-days per second on one core
for the scoring itself with the plausibility checks on, ``immunosep sofa --input`` on a 1-million-row
Parquet file end to end (process start to file written) in under 1 s, and ``immunosep --help`` and
``immunosep classify`` in under 0.3 s each.

Baselines, measured in the same run:

- the kernel: the block kernel it replaced (kept in ``tests/fixtures/sofa_block_kernel.py``, with its own
  plausibility checks), run interleaved with the current one, and a row-by-row Python scorer (if/elif
  per organ, as a straightforward implementation would) on a subsample, extrapolated per row;
- ``sofa --input``: a fresh Python that only reads the same Parquet file with pyarrow and writes it back
  with the same writer settings (the I/O and imports no scorer can avoid);
- start-up: the interpreter's own start, ``python -c pass``.

The fresh processes start as an installed package does, from bytecode: the package is compiled first
(``compileall``, as pip does on install), since a shell with ``PYTHONDONTWRITEBYTECODE`` never caches it.

The machine is shared: every figure is the best of several runs (five: a call of the kernel pays 0-160 ms
of system time for the page faults of its fresh outputs, as the allocator happens to return memory to the
system or not, against about 180 ms of user time), and the kernel's "per core" rate is
patient-days per CPU second of the process (wall seconds are printed beside it; with more runnable
processes than cores the wall figures grow and say little about the code). The end-to-end and start-up
targets are judged on wall seconds as stated, with the CPU seconds and the load average printed beside.

Usage: ``python benchmarks/bench_sofa.py [--rows 10000000] [--baseline-rows 50000] [--e2e-rows 1000000]``.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import compileall
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import immunosep
from _figures import figure
from immunosep.clinical.sofa import SOFA_INPUT_COLUMNS, score_sofa_arrays

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the kernel it replaced
from fixtures.sofa_block_kernel import block_kernel

TARGET_ROWS_PER_S = 50e6
TARGET_E2E_S = 1.0
TARGET_START_S = 0.3


def patient_days(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` random, plausible patient-days with 5 % of every measurement missing."""
    rng = np.random.default_rng(seed)
    days: dict[str, np.ndarray] = {
        "pao2_fio2_mmhg": rng.uniform(50, 500, n),
        "ventilated": rng.random(n) < 0.5,
        "platelets_1e3_ul": rng.uniform(5, 400, n),
        "bilirubin_mg_dl": rng.uniform(0.1, 20, n),
        "map_mmhg": rng.uniform(40, 110, n),
        "dopamine_ug_kg_min": np.where(rng.random(n) < 0.2, rng.uniform(0, 20, n), 0.0),
        "dobutamine_ug_kg_min": np.where(rng.random(n) < 0.1, rng.uniform(0, 10, n), 0.0),
        "epinephrine_ug_kg_min": np.where(rng.random(n) < 0.1, rng.uniform(0, 0.3, n), 0.0),
        "norepinephrine_ug_kg_min": np.where(rng.random(n) < 0.4, rng.uniform(0, 0.6, n), 0.0),
        "gcs": rng.integers(3, 16, n).astype(np.float64),
        "creatinine_mg_dl": rng.uniform(0.3, 8, n),
        "urine_ml_day": rng.uniform(0, 3000, n),
    }
    for name, values in days.items():
        if name != "ventilated":
            values[rng.random(n) < 0.05] = np.nan
    return days


def _row_sofa(pf, vent, plt, bili, mapp, dopa, dobu, epi, ne, gcs, cr, uo):  # type: ignore[no-untyped-def]
    """The baseline: one patient-day in plain Python (NaN = missing, vasopressors count when > 0)."""
    nan = math.isnan
    resp = 0
    if not nan(pf):
        if vent and pf < 100:
            resp = 4
        elif vent and pf < 200:
            resp = 3
        elif pf < 300:
            resp = 2
        elif pf < 400:
            resp = 1
    coag = 0 if nan(plt) else 4 if plt < 20 else 3 if plt < 50 else 2 if plt < 100 else 1 if plt < 150 else 0
    liver = (
        0
        if nan(bili)
        else 4
        if bili >= 12
        else 3
        if bili >= 6
        else 2
        if bili >= 2
        else 1
        if bili >= 1.2
        else 0
    )
    dopa = 0.0 if nan(dopa) else dopa
    dobu = 0.0 if nan(dobu) else dobu
    epi = 0.0 if nan(epi) else epi
    ne = 0.0 if nan(ne) else ne
    if dopa > 15 or epi > 0.1 or ne > 0.1:
        cv = 4
    elif dopa > 5 or epi > 0 or ne > 0:
        cv = 3
    elif dopa > 0 or dobu > 0:
        cv = 2
    elif not nan(mapp) and mapp < 70:
        cv = 1
    else:
        cv = 0
    cns = 0 if nan(gcs) else 4 if gcs < 6 else 3 if gcs < 10 else 2 if gcs < 13 else 1 if gcs < 15 else 0
    r_cr = 0 if nan(cr) else 4 if cr >= 5 else 3 if cr >= 3.5 else 2 if cr >= 2 else 1 if cr >= 1.2 else 0
    r_uo = 0 if nan(uo) else 4 if uo < 200 else 3 if uo < 500 else 0
    renal = max(r_cr, r_uo)
    return resp + coag + liver + cv + cns + renal


def _best(fn: Callable[[], Any], best: dict[str, float], key: str) -> Any:
    """Run ``fn`` once; keep the best wall and CPU seconds under ``key``/``key_cpu``."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    best[key] = min(best.get(key, math.inf), time.perf_counter() - t0)
    best[f"{key}_cpu"] = min(best.get(f"{key}_cpu", math.inf), time.process_time() - cpu0)
    return result


def bench_kernel(days: dict[str, Any], repeats: int) -> tuple[dict[str, float], np.ndarray]:
    """Best wall and CPU seconds of the kernel and of the kernel it replaced, with and without checks,
    interleaved run by run (so that a burst of load falls on both); also the current kernel's totals."""
    cols = {c: v for c, v in days.items() if c != "ventilated"}
    vent = days["ventilated"]
    best: dict[str, float] = {}
    totals = np.empty(0)
    for _ in range(repeats):
        out = _best(lambda: score_sofa_arrays(**days), best, "checked")
        totals = out["sofa_total"]
        old = _best(lambda: block_kernel(cols, vent, validate=True), best, "old_checked")
        _best(lambda: score_sofa_arrays(**days, validate=False), best, "unchecked")
        _best(lambda: block_kernel(cols, vent), best, "old_unchecked")
        for key, values in old.items():
            if not np.array_equal(out[key], values):
                raise SystemExit(f"MISMATCH: {key} differs from the replaced kernel's")
    return best, totals


def bench_baseline(days: dict[str, np.ndarray], n: int) -> tuple[float, list[int]]:
    """Seconds per row of the row-by-row baseline on the first ``n`` rows, and its totals."""
    cols = [days[c][:n].tolist() for c in SOFA_INPUT_COLUMNS]
    t0 = time.perf_counter()
    totals = [_row_sofa(*row) for row in zip(*cols, strict=True)]
    return (time.perf_counter() - t0) / n, totals


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compile_package() -> None:
    """Write the package's bytecode beside its sources (``__pycache__``, ignored by git), as pip does when it
    installs a wheel: a shell with ``PYTHONDONTWRITEBYTECODE`` set (this machine's) never writes it, so
    without this every start would compile the package's sources again (30-45 ms of ``classify``)."""
    if not compileall.compile_dir(Path(immunosep.__file__).parent, quiet=1):
        raise SystemExit("compileall failed on the immunosep package")


def bench_startup(args: list[str], repeats: int = 5) -> tuple[float, float]:
    """Best wall and CPU seconds of ``python <args>`` in a fresh process, of ``repeats`` runs."""
    best_wall = best_cpu = math.inf
    for _ in range(repeats):
        cpu0, t0 = _child_cpu(), time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        best_wall, best_cpu = min(best_wall, time.perf_counter() - t0), min(best_cpu, _child_cpu() - cpu0)
    return best_wall, best_cpu


_COPY = """
import sys
import pyarrow as pa
import pyarrow.parquet as pq
pf = pq.ParquetFile(sys.argv[1])
writer = None
for batch in pf.iter_batches(batch_size=250_000):
    table = pa.Table.from_batches([batch])
    if writer is None:
        keep = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
        writer = pq.ParquetWriter(sys.argv[2], table.schema, use_dictionary=keep)
    writer.write_table(table)
writer.close()
"""


def bench_end_to_end(n: int, seed: int, repeats: int) -> dict[str, float]:
    """Best wall and CPU seconds of ``immunosep sofa --input X.parquet --output Y.parquet`` in a fresh
    process, and of the baseline: a fresh Python that only copies X to Y with pyarrow (runs interleaved)."""
    exe = shutil.which("immunosep", path=str(Path(sys.executable).parent)) or "immunosep"
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_sofa_") as tmp:
        inp, out, copy = Path(tmp) / "daily.parquet", Path(tmp) / "scored.parquet", Path(tmp) / "copy.parquet"
        frame = pd.DataFrame(patient_days(n, seed))
        frame.insert(0, "usubjid", np.arange(n) // 28)
        frame.insert(1, "study_day", np.arange(n) % 28 + 1)
        frame.to_parquet(inp, index=False)
        runs = {
            "e2e": [exe, "sofa", "--input", str(inp), "--output", str(out)],
            "copy": [sys.executable, "-c", _COPY, str(inp), str(copy)],
        }
        for _ in range(repeats):
            for key, cmd in runs.items():
                cpu0, t0 = _child_cpu(), time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                best[key] = min(best.get(key, math.inf), time.perf_counter() - t0)
                best[f"{key}_cpu"] = min(best.get(f"{key}_cpu", math.inf), _child_cpu() - cpu0)
        scored = pd.read_parquet(out, columns=["sofa_total"])
        if len(scored) != n:
            raise SystemExit(f"end-to-end run wrote {len(scored)} rows, expected {n}")
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--baseline-rows", type=int, default=50_000)
    ap.add_argument("--e2e-rows", type=int, default=1_000_000)
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="runs of each kernel (interleaved) and of the end-to-end pair; the best counts",
    )
    ap.add_argument("--seed", type=int, default=20251208)
    args = ap.parse_args()

    days = patient_days(args.rows, args.seed)
    k, totals = bench_kernel(days, args.repeats)
    per_row, base_totals = bench_baseline(days, min(args.baseline_rows, args.rows))
    if base_totals != totals[: len(base_totals)].tolist():
        print("MISMATCH: the kernel and the row-by-row baseline disagree", file=sys.stderr)
        return 1
    compile_package()  # the fresh processes below start as an installed package does
    e2e = bench_end_to_end(args.e2e_rows, args.seed + 1, args.repeats)
    bare, bare_cpu = bench_startup(["-c", "pass"])
    startup, startup_cpu = bench_startup(["-c", "import immunosep.cli"])
    helped, helped_cpu = bench_startup(["-m", "immunosep.cli", "--help"])
    classified, classified_cpu = bench_startup(["-m", "immunosep.cli", "classify", "--ferritin", "5000"])

    n = args.rows
    rate = n / k["checked_cpu"]  # patient-days per CPU second: per core

    def per_s(seconds: float) -> str:
        return f"{n / seconds / 1e6:7.1f} M/s"

    print(f"SOFA kernel, {n:,} patient-days, best of {args.repeats} (per core = per CPU second):")
    print(
        "                               per core   (wall)       baseline: replaced kernel, per core   ratio"
    )
    for label, key in (("with plausibility checks:", "checked"), ("without checks:", "unchecked")):
        new, old = k[f"{key}_cpu"], k[f"old_{key}_cpu"]
        print(
            f"  {label:27s} {per_s(new)}  ({per_s(k[key])})                   {per_s(old)}"
            f"       {old / new:4.2f} x"
        )
    print(f"  target with checks:          {TARGET_ROWS_PER_S / 1e6:7.1f} M/s per core")
    print(
        f"  row-by-row Python baseline:  {1 / per_row / 1e6:7.3f} M/s ({per_row * 1e6:.3f} us/row on "
        f"{len(base_totals):,} rows, same totals); the kernel is {rate * per_row:,.0f} x faster"
    )
    print(
        f"immunosep sofa --input, {args.e2e_rows:,}-row Parquet end to end (fresh process, best of {args.repeats}):"
    )
    print(
        f"  immunosep sofa --input:      {e2e['e2e']:.2f} s wall, {e2e['e2e_cpu']:.2f} s CPU   "
        f"(target < {TARGET_E2E_S:g} s wall)"
    )
    print(
        f"  baseline, pyarrow copy only: {e2e['copy']:.2f} s wall, {e2e['copy_cpu']:.2f} s CPU   "
        f"(read and write the same file, no scoring, no CLI)"
    )
    print(
        f"  of which starting the CLI (import immunosep.cli): {startup:.2f} s wall, {startup_cpu:.2f} s CPU"
    )
    print(
        "command line start-up (best of 5, fresh process each, the package's bytecode compiled as on install):"
    )
    print(f"  baseline, python -c pass:    {bare:.3f} s wall, {bare_cpu:.3f} s CPU")
    print(
        f"  immunosep --help:            {helped:.3f} s wall, {helped_cpu:.3f} s CPU   (target < {TARGET_START_S:g} s wall)"
    )
    print(
        f"  immunosep classify:          {classified:.3f} s wall, {classified_cpu:.3f} s CPU   "
        f"(target < {TARGET_START_S:g} s wall)"
    )
    print(
        f"  machine load average (1 min) during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    checks = {
        f"target >= {TARGET_ROWS_PER_S / 1e6:.0f} M patient-days/s per core with checks": rate
        >= TARGET_ROWS_PER_S,
        f"target end to end < {TARGET_E2E_S:g} s": e2e["e2e"] < TARGET_E2E_S,
        f"target immunosep --help < {TARGET_START_S:g} s": helped < TARGET_START_S,
        f"target immunosep classify < {TARGET_START_S:g} s": classified < TARGET_START_S,
    }
    for label, ok in checks.items():
        print(f"{label}: {'met' if ok else 'MISSED'}")
    old_rate = n / k["old_checked_cpu"]
    figure(
        "SOFA kernel with checks, per core",
        f"{rate / 1e6:.1f} M patient-days/s",
        f">= {TARGET_ROWS_PER_S / 1e6:.0f} M/s",
        f"replaced kernel {old_rate / 1e6:.1f} M/s ({rate / old_rate:.2f}x)",
        rate >= TARGET_ROWS_PER_S,
    )
    figure(
        f"sofa --input, {args.e2e_rows:,} Parquet rows",
        f"{e2e['e2e']:.2f} s wall ({e2e['e2e_cpu']:.2f} s CPU)",
        f"< {TARGET_E2E_S:g} s",
        f"pyarrow copy {e2e['copy']:.2f} s",
        e2e["e2e"] < TARGET_E2E_S,
    )
    for label, wall, cpu in (
        ("immunosep --help", helped, helped_cpu),
        ("immunosep classify", classified, classified_cpu),
    ):
        figure(
            label,
            f"{wall:.3f} s wall ({cpu:.3f} s CPU)",
            f"< {TARGET_START_S:g} s",
            f"python -c pass {bare:.3f} s",
            wall < TARGET_START_S,
        )
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
