"""Every route handler is a plain ``def``, so FastAPI runs it in a worker thread, unless it is marked inline.

An ``async def`` handler runs on the event loop: a blocking call in it (SQLAlchemy, argon2, a SQLite busy
wait of up to 60 s) freezes the whole server. Pages read their form through the ``form_data`` dependency
(on the event loop) instead of awaiting ``request.form()`` in the handler. The few hottest short handlers
are marked ``@inline`` (web.deps.inline) and run on the loop on purpose: the list is fixed here, so adding
one is a deliberate, reviewed choice.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from immunosep.web.deps import is_inline

#: Coroutine handlers that do their blocking work in a worker thread themselves.
ASYNC_ALLOWED = frozenset({"login_submit"})  # pages/auth.py: awaits run_in_threadpool(log_in, ...)
#: Short handlers of the hottest routes that run on the event loop (one small transaction each).
INLINE = frozenset({"post_daily_crf", "get_daily_crf", "dashboard"})


def test_no_route_handler_runs_on_the_event_loop(app) -> None:  # type: ignore[no-untyped-def]
    # app.routes holds the included routers; iter_route_contexts walks down to their APIRoutes.
    routes = [c.original_route for c in iter_route_contexts(app.routes)]
    endpoints = [r.endpoint for r in routes if isinstance(r, APIRoute)]
    names = {e.__name__ for e in endpoints}
    assert {"users_submit", "crf_submit", "log_dose", "login_submit"} <= names  # pages and API both seen
    assert any(e.__module__.startswith("immunosep.web.api") for e in endpoints)
    async_handlers = sorted(
        f"{e.__module__}.{e.__name__}"
        for e in endpoints
        if inspect.iscoroutinefunction(e) and e.__name__ not in ASYNC_ALLOWED | INLINE
    )
    assert async_handlers == []
    assert {e.__name__ for e in endpoints if is_inline(e)} == INLINE
    for e in endpoints:
        if is_inline(e):  # the marked handler itself stays a plain def with no awaits of its own
            assert not inspect.iscoroutinefunction(inspect.unwrap(e)), e.__name__


def test_every_route_is_a_transaction_route_and_get_db_refuses_any_other(app) -> None:  # type: ignore[no-untyped-def]
    """get_db leaves the end of the transaction and the writing turn to TransactionRoute (web.deps)."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from immunosep.web.deps import TransactionRoute, get_db

    routes = [c.original_route for c in iter_route_contexts(app.routes)]
    plain = [r.path for r in routes if isinstance(r, APIRoute) and not isinstance(r, TransactionRoute)]
    assert plain == []
    other = FastAPI()
    other.state.engine = app.state.engine

    @other.post("/x")
    def x(db=Depends(get_db)) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("must not run")

    with (
        TestClient(other, raise_server_exceptions=True) as client,
        pytest.raises(RuntimeError, match="TransactionRoute"),
    ):
        client.post("/x")
