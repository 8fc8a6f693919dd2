"""``immunosep serve`` as a real server process on loopback, with one and with two worker processes."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import httpx
import pytest

from fixtures.served import serving
from immunosep.web.app import SECRET_KEY_ENV, SERVE_ENV, app_from_environment


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_and_sessions_hold_across_workers(
    _templates,  # noqa: PT019 (its value is used: the underscore marks a fixture private to the test package)
    web,
    tmp_path: Path,
    workers: int,
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite(), db)
    env = {k: v for k, v in os.environ.items() if k != "IMMUNOSEP_SECRET_KEY"}
    with (
        serving(db, workers, env) as (_proc, base),
        httpx.Client(base_url=base, trust_env=False, timeout=5) as c,
    ):
        r = c.post("/api/login", json={"username": "inv1", "password": web.password})
        assert r.status_code == 200 and "server" not in r.headers
        # Many requests on fresh connections land on every worker: the session is valid in each.
        for _ in range(12):
            with httpx.Client(base_url=c.base_url, cookies=c.cookies, trust_env=False, timeout=5) as fresh:
                assert fresh.get("/api/me").json()["username"] == "inv1"


def test_the_app_runs_handlers_on_its_own_small_thread_pool(db_url) -> None:  # type: ignore[no-untyped-def]
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from immunosep.errors import ImmunoSepError
    from immunosep.web.app import WORKER_THREADS, create_app

    def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    for threads in (WORKER_THREADS, 3):
        app = create_app(db_url, secret_key="k" * 40, worker_threads=threads)
        try:
            with TestClient(app) as client:  # the lifespan runs: the loop's limiter is the app's
                assert client.portal is not None
                assert client.portal.call(tokens) == threads
                assert client.get("/openapi.json").status_code == 200
        finally:
            app.state.engine.dispose()
    with pytest.raises(ImmunoSepError, match="worker_threads"):
        create_app(db_url, secret_key="k" * 40, worker_threads=0)


def test_a_worker_freezes_what_it_made_before_serving(db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``serve --workers N``'s factory leaves the start-up objects out of the cyclic collector's full
    collections (``web.app.freeze_for_serving``), which stopped the event loop for 140 ms at a time."""
    monkeypatch.setenv(SERVE_ENV["db"], db_url)
    monkeypatch.setenv(SECRET_KEY_ENV, "a worker's shared session key, 32+ characters")
    gc.unfreeze()
    app = app_from_environment()
    try:
        assert gc.get_freeze_count() > 100_000  # the modules, the app and its protocol at least
    finally:
        gc.unfreeze()  # this test process goes on: let its collector see them again
        app.state.engine.dispose()
