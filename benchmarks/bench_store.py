"""Store throughput: allocations/s and daily-CRF writes/s on SQLite and PostgreSQL, 1/8/32 writers.

Each operation is one full service transaction (role check, audit-chain lock, audited flush, commit).
Ratios are against the single-writer rate of the same backend measured in the same run.

    .venv/bin/python benchmarks/bench_store.py [--per-config 120] [--pg-url URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from immunosep.conduct import biospecimens, classification, crf, randomization, screening
from immunosep.conduct.access import actor_for
from immunosep.conduct.trial import init_trial
from immunosep.conduct.users import create_user
from immunosep.store.db import make_engine, session_scope

WRITERS = (1, 8, 32)
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _prepare(url: str, n_patients: int) -> tuple[object, list[str], object]:
    init_trial(url, sites=1, seed="bench", slots_per_site=n_patients + 10)
    engine = make_engine(url)
    with session_scope(engine) as s:
        inv = actor_for(s, create_user(s, None, "inv", "benchmark password", "investigator", "S01"))
        lab = actor_for(s, create_user(s, None, "lab", "benchmark password", "lab"))
        onset = datetime.now(UTC) - timedelta(hours=5)
        answers = screening.ScreeningInput(
            age_years=60,
            sex="male",
            infection_type="cap",
            sepsis_onset_at=onset,
            sofa_now=6,
            neutrophils_per_mm3=8000.0,
            weight_kg=75.0,
        )
        names = [screening.screen(s, inv, answers).pseudonym for _ in range(n_patients)]
        for name in names:
            biospecimens.record_draw(s, lab, name, 1, ferritin_ng_ml=900.0, hla_dr_per_monocyte=3000.0)
            classification.classify_patient(s, inv, name)
            screening.record_consent(s, inv, name, "patient")
    return engine, names, inv


def _run(writers: int, jobs: list[Callable[[], None]]) -> float:
    """Run ``jobs`` on ``writers`` threads; operations per second (wall clock)."""
    q: queue.Queue[Callable[[], None]] = queue.Queue()
    for job in jobs:
        q.put(job)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            try:
                job = q.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return len(jobs) / elapsed


def bench_backend(url: str, per_config: int) -> dict[tuple[str, int], float]:
    engine, names, inv = _prepare(url, per_config * len(WRITERS))
    results: dict[tuple[str, int], float] = {}
    try:
        for k, writers in enumerate(WRITERS):
            batch = names[k * per_config : (k + 1) * per_config]

            def allocate(name: str) -> Callable[[], None]:
                def job() -> None:
                    with session_scope(engine) as s:  # type: ignore[arg-type]
                        randomization.allocate(s, inv, name)  # type: ignore[arg-type]

                return job

            results[("allocations/s", writers)] = _run(writers, [allocate(n) for n in batch])
        inputs = crf.DailyInputs(
            pao2_fio2_mmhg=220.0,
            platelets_1e3_ul=110.0,
            bilirubin=1.1,
            map_mmhg=68.0,
            gcs=14,
            creatinine=1.4,
            urine_ml_day=1500.0,
        )
        for writers in WRITERS:
            day = 1 + WRITERS.index(writers)

            def record(name: str, day: int = day) -> Callable[[], None]:
                def job() -> None:
                    with session_scope(engine) as s:  # type: ignore[arg-type]
                        crf.record_day(s, inv, name, day, inputs)  # type: ignore[arg-type]

                return job

            results[("CRF writes/s", writers)] = _run(writers, [record(n) for n in names[:per_config]])
    finally:
        engine.dispose()  # type: ignore[attr-defined]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-config", type=int, default=120, help="operations per (backend, writers) cell")
    parser.add_argument("--pg-url", default=os.environ.get("IMMUNOSEP_TEST_PG_URL") or DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    table: dict[str, dict[tuple[str, int], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        table["sqlite"] = bench_backend(f"sqlite:///{Path(tmp) / 'bench.db'}", args.per_config)
    if not args.no_postgres:
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        name = f"immunosep_bench_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
            table["postgresql"] = bench_backend(url, args.per_config)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    print(f"{'backend':<11} {'operation':<14} " + " ".join(f"{w:>3} writer(s) (ratio)" for w in WRITERS))
    for backend, res in table.items():
        for op in ("allocations/s", "CRF writes/s"):
            base = res[(op, 1)]
            cells = " ".join(f"{res[(op, w)]:10.1f} ({res[(op, w)] / base:4.2f})" for w in WRITERS)
            print(f"{backend:<11} {op:<14} {cells}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
