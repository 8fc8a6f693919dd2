"""Writing turns (web.deps.get_db): one writer at a time per process, each turn given back exactly once.

Inline handlers wait for the writers' lock on the event loop; this module runs the web fixtures on both
backends (its own ``db_url``), since the lock differs: SQLite's write lock, PostgreSQL's advisory lock.
"""

from __future__ import annotations

import asyncio

import anyio
import anyio.to_thread
import httpx
import pytest
from sqlalchemy.engine import make_url

from immunosep.web.app import DB_WRITE_CONCURRENCY
from immunosep.web.deps import _TURNS, WritingTurn


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """Both backends here (tests/conftest.py), where the web package's own ``db_url`` has SQLite only.

    PostgreSQL gets a lock_timeout: a handler that wrongly waited for the advisory lock on the event loop
    would never see the other writer let go (the test holds it on the same loop); it fails after 10 s
    instead of hanging.
    """
    url = make_url(seeded_db_url)
    if url.get_backend_name() == "postgresql":
        url = url.update_query_dict({"options": "-c lock_timeout=10000"})
    return url.render_as_string(hide_password=False)


def test_a_turn_is_given_back_once_from_the_handler_thread_or_the_loop() -> None:
    async def scenario() -> list[int]:
        semaphore = anyio.Semaphore(1)
        values = []
        await semaphore.acquire()
        turn = WritingTurn(semaphore)
        await anyio.to_thread.run_sync(turn.give_back)  # the handler's thread, after its commit
        await asyncio.sleep(0)  # the release was handed to the loop
        values.append(semaphore.value)
        turn.give_back()  # the request's end: already given back, nothing more
        values.append(semaphore.value)
        await semaphore.acquire()
        WritingTurn(semaphore).give_back()  # a request that failed before its commit: on the loop
        values.append(semaphore.value)
        return values

    assert asyncio.run(scenario()) == [1, 1, 1]


def test_every_write_gives_its_turn_back_whether_it_commits_or_fails(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    url = f"/api/patients/{pseudonym}/crf"
    outcomes = [
        inv.post(f"{url}/1", json={"gcs": 12}).status_code,  # committed
        inv.post(f"{url}/1", json={"gcs": 11}).status_code,  # refused under the lock: no reason
        inv.post(f"{url}/0", json={"gcs": 11}).status_code,  # refused before the lock: no such day
        inv.post(f"{url}/2", json={"gcs": 99}).status_code,  # refused by validation
        inv.post(f"{url}/2", json={"gcs": 10}).status_code,  # still gets a turn
    ]
    assert outcomes == [200, 422, 422, 422, 200]

    async def free_turns() -> list[int]:
        return [s.value for s in _TURNS.get().values()]

    assert inv.http.portal.call(free_turns) == [DB_WRITE_CONCURRENCY]


def test_an_inline_writer_waits_for_the_lock_without_blocking_the_event_loop(
    app, api_enroll, password, another_writer
) -> None:  # type: ignore[no-untyped-def]
    """The daily CRF runs on the event loop (web.deps.inline): while it waits for another writer, pages load."""
    pseudonym = api_enroll()

    async def scenario() -> tuple[int, int, int, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            r = await c.post("/api/login", json={"username": "inv1", "password": password})
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            with another_writer(app.state.engine):
                write = asyncio.create_task(c.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12}))
                await asyncio.sleep(0.3)
                waited = not write.done()
                page = await asyncio.wait_for(c.get("/dashboard"), 5)  # inline too: the loop is free
                me = await asyncio.wait_for(c.get("/api/me"), 5)
            done = await asyncio.wait_for(write, 10)
            return page.status_code, me.status_code, done.status_code, waited

    assert asyncio.run(scenario()) == (200, 200, 200, True)
