"""The hot routes without HTTP: server CPU and database statements per request, SQLite and PostgreSQL.

``bench_web.py`` measures what a client sees under load, and on a shared 2-core machine its numbers drift
by up to 2x from run to run. This one calls the ASGI application in-process, one request at a time (no
uvicorn, no sockets, no load generator), so it isolates what the application itself costs per request
and moves little between runs: for comparing two versions of a handler.

For each backend: a fresh trial with one site, ``--patients`` patients enrolled through the API, then
``--rounds`` rounds of ``--requests`` requests of each kind, interleaved (baseline, dashboard, CRF write,
...), reporting the median round:

* baseline: ``GET /openapi.json`` (middleware, routing and a cached schema: no database), as in
  ``bench_web.py``; the other kinds are also given as ratios to it, comparable across machines;
* dashboard: ``GET /dashboard`` of the investigator's site (worklist and page);
* crf: ``POST /api/patients/{p}/crf/{day}``, a new patient-day each time;
* crf-x8: the same, sent :data:`BATCH` at a time, so that they queue and commit as one group
  (``web.deps.CommitGroups``): the cost of a write inside a group, given per write.

CPU is this process's (``time.process_time``); statements are those the engine runs (its read-only pool
included), per request; database CPU is that of PostgreSQL's processes (all of them: the background
writers' share of the writes included). No target: a diagnostic to pair with ``bench_web.py``.

``--instructions`` counts instead the instructions this process executes per request, under valgrind's
callgrind (``_callgrind.py``): the same to about 1 % from run to run on a machine whose CPU time for the
same requests moves by 10 % or more, so the measure for comparing two versions of a handler there.

    .venv/bin/python benchmarks/bench_handlers.py [--backends sqlite postgres] [--requests 200] [--rounds 5]
    .venv/bin/python benchmarks/bench_handlers.py --instructions [--requests 40 --rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import event

import _callgrind
from bench_web import (
    DEFAULT_PG,
    PASSWORD,
    SECRET,
    Caller,
    crf_body,
    database_cpu_seconds,
    prepare,
    scratch_database,
    screening_body,
)
from immunosep.store.db import reader_of
from immunosep.web.app import create_app

KINDS = ("baseline", "dashboard", "crf", "crf-x8")
#: CRF writes sent at once by the ``crf-x8`` kind.
BATCH = 8


async def _enroll(client: httpx.AsyncClient, lab: httpx.AsyncClient, n: int) -> list[str]:
    rng = random.Random(7)

    async def post(c: httpx.AsyncClient, path: str, body: Any = None) -> Any:
        r = await c.post(path, json=body, headers={"X-CSRF-Token": c.headers["X-CSRF-Token"]})
        if r.status_code not in (200, 204):
            raise RuntimeError(f"{path}: {r.status_code} {r.text}")
        return r.json() if r.status_code == 200 else None

    names = []
    for _ in range(n):
        p = (await post(client, "/api/screening", screening_body(rng)))["pseudonym"]
        await post(lab, f"/api/patients/{p}/draws", {"study_day": 1, "ferritin_ng_ml": 6000.0})
        await post(client, f"/api/patients/{p}/classify")
        await post(client, f"/api/patients/{p}/consent", {"given_by": "relative"})
        await post(client, f"/api/patients/{p}/randomize")
        names.append(p)
    return names


async def _logged_in(app: Any, username: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    r = await c.post("/api/login", json={"username": username, "password": PASSWORD})
    r.raise_for_status()
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


async def bench_backend(url: str, args: argparse.Namespace, backend: str) -> dict[str, dict[str, float]]:
    accounts = prepare(url, 1, args.patients, 1)
    app = create_app(url, secret_key=SECRET, secure_cookies=False)
    try:
        async with app.router.lifespan_context(app):
            inv, lab = await _logged_in(app, accounts[0][0]), await _logged_in(app, "lab")
            patients = await _enroll(inv, lab, args.patients)
            cookie = "; ".join(f"{k}={v}" for k, v in inv.cookies.items())
            call = Caller(app, cookie, inv.headers["X-CSRF-Token"])
            await inv.aclose()
            await lab.aclose()
            slots = iter([(p, d) for d in range(1, 91) for p in patients])
            rng = random.Random(11)
            requests: dict[str, Callable[[], Awaitable[int]]] = {
                "baseline": lambda: call("GET", "/openapi.json"),
                "dashboard": lambda: call("GET", "/dashboard"),
                "crf": lambda: _write(call, slots, rng),
                "crf-x8": lambda: _batch(call, slots, rng),
            }
            statements = [0]

            def count(*_: Any) -> None:
                statements[0] += 1

            engines = {app.state.engine, reader_of(app.state.engine)}
            for e in engines:
                event.listen(e, "before_cursor_execute", count)
            rounds: dict[str, list[tuple[float, float, float]]] = {k: [] for k in KINDS}
            meter = None
            if _callgrind.in_child():  # a round uncounted first: caches filled, as in the others' median
                for kind in KINDS:
                    for _ in range(_calls(args.requests, kind)):
                        await requests[kind]()
                meter = _callgrind.Meter()
            for n in range(args.rounds):
                for kind in KINDS:
                    statements[0] = 0
                    db0, cpu0 = database_cpu_seconds(), time.process_time()
                    if meter is not None:
                        meter.zero()
                    calls = _calls(args.requests, kind)
                    for _ in range(calls):
                        status = await requests[kind]()
                        if status != 200:
                            raise RuntimeError(f"{kind}: HTTP {status}")
                    if meter is not None:
                        meter.dump(f"{backend}:{kind}:{n}")
                    done = _done(args.requests, kind)
                    cpu = (time.process_time() - cpu0) / done
                    db = (database_cpu_seconds() - db0) / done
                    rounds[kind].append((cpu, statements[0] / done, db))
    finally:
        app.state.engine.dispose()
    out = {}
    for kind in KINDS:
        out[kind] = {
            "cpu_ms": 1e3 * statistics.median(c for c, _, _ in rounds[kind]),
            "cpu_ms_min": 1e3 * min(c for c, _, _ in rounds[kind]),
            "statements": statistics.median(s for _, s, _ in rounds[kind]),
            "db_cpu_ms": 1e3 * statistics.median(d for _, _, d in rounds[kind]),
        }
    return out


async def _batch(call: Caller, slots: Any, rng: random.Random) -> int:
    """:data:`BATCH` CRF writes at once (one commit group); 200, or the first other status."""
    statuses = await asyncio.gather(*(_write(call, slots, rng) for _ in range(BATCH)))
    return next((s for s in statuses if s != 200), 200)


async def _write(call: Caller, slots: Any, rng: random.Random) -> int:
    try:
        pseudonym, day = next(slots)
    except StopIteration:
        raise RuntimeError("no new patient-days left: raise --patients") from None
    return await call("POST", f"/api/patients/{pseudonym}/crf/{day}", json.dumps(crf_body(rng)).encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backends", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--patients",
        type=int,
        default=None,
        help="enrolled patients (90 new days each; default: 15, or as many as the CRF writes need)",
    )
    parser.add_argument("--pg-url", default=None)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under valgrind's callgrind instead of CPU time (slow: "
        "use --requests 40 --rounds 3)",
    )
    args = parser.parse_args()
    needed = 2 * args.requests * (args.rounds + args.instructions)  # crf and crf-x8
    if args.patients is None:
        args.patients = max(15, -(-needed // 90))
    if needed > 90 * args.patients:
        parser.error(f"{needed} CRF writes need at least {needed // 90 + 1} --patients")
    pg_url = args.pg_url or os.environ.get("IMMUNOSEP_TEST_PG_URL") or DEFAULT_PG
    if args.instructions and not _callgrind.in_child():
        return _print_instructions(args, _callgrind.run_self_under_callgrind(sys.argv))
    if _callgrind.in_child():
        for backend in args.backends:
            with scratch_database(backend, pg_url) as url:
                asyncio.run(bench_backend(url, args, backend))
        return 0
    print(
        f"{'backend':<10} {'kind':<10} {'CPU ms/req':>10} {'(best)':>8} {'x baseline':>10} {'statements':>10}"
        f" {'db CPU ms':>9}"
    )
    for backend in args.backends:
        with scratch_database(backend, pg_url) as url:
            result = asyncio.run(bench_backend(url, args, backend))
        base = result["baseline"]["cpu_ms"]
        for kind, r in result.items():
            ratio = "" if kind == "baseline" else f"{r['cpu_ms'] / base:.2f}"
            print(
                f"{backend:<10} {kind:<10} {r['cpu_ms']:>10.2f} {r['cpu_ms_min']:>8.2f} {ratio:>10} "
                f"{r['statements']:>10.1f} {r['db_cpu_ms']:>9.2f}",
                flush=True,
            )
    print(
        f"median and best of {args.rounds} rounds of {args.requests} requests per kind, in-process (no HTTP)"
    )
    return 0


def _calls(requests: int, kind: str) -> int:
    """Calls a round of ``kind`` makes for ``requests`` requests (``crf-x8``: whole batches)."""
    return requests // BATCH if kind == "crf-x8" else requests


def _done(requests: int, kind: str) -> int:
    """Requests those calls make."""
    return _calls(requests, kind) * (BATCH if kind == "crf-x8" else 1)


def _print_instructions(args: argparse.Namespace, counts: dict[str, int]) -> int:
    """The table of ``--instructions``: median and spread over the rounds, per request."""
    print(f"{'backend':<10} {'kind':<10} {'M instr/req':>11} {'(range)':>17} {'x baseline':>10}")
    for backend in args.backends:
        per: dict[str, list[float]] = {}
        for kind in KINDS:
            per[kind] = [
                counts[f"{backend}:{kind}:{n}"] / _done(args.requests, kind) / 1e6
                for n in range(args.rounds)
                if f"{backend}:{kind}:{n}" in counts
            ]
            if len(per[kind]) != args.rounds:
                raise SystemExit(f"callgrind dumps missing for {backend} {kind}: {sorted(counts)}")
        base = statistics.median(per["baseline"])
        for kind in KINDS:
            m = statistics.median(per[kind])
            ratio = "" if kind == "baseline" else f"{m / base:.2f}"
            spread = f"{min(per[kind]):.3f}-{max(per[kind]):.3f}"
            print(f"{backend:<10} {kind:<10} {m:>11.3f} {spread:>17} {ratio:>10}", flush=True)
    print(
        f"median and range of {args.rounds} rounds of {args.requests} requests per kind, in-process (no HTTP); "
        "instructions of this process under callgrind (PostgreSQL's not counted)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
