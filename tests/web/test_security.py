"""The web layer's defences: session cookie flags, CSRF, login throttling, security headers, fixation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from immunosep.web.security import SESSION_COOKIE, LoginThrottle, TooManyAttempts


@pytest.mark.requirement("ACC-04")
def test_login_sets_strict_secure_httponly_cookie_and_me_reports_role_and_site(
    anon: TestClient, password: str
) -> None:
    r = anon.post("/api/login", json={"username": "inv1", "password": password})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE)
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    me = anon.get("/api/me").json()
    assert (me["username"], me["role"], me["site"], me["blinded"]) == ("inv1", "investigator", "S01", True)
    assert me["csrf_token"] == r.json()["csrf_token"]


def test_wrong_password_and_unknown_user_get_the_same_answer(anon: TestClient) -> None:
    a = anon.post("/api/login", json={"username": "inv1", "password": "wrong password!"})
    b = anon.post("/api/login", json={"username": "nobody", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
    assert "set-cookie" not in a.headers or "uid" not in a.headers["set-cookie"]
    assert anon.get("/api/me").status_code == 401


@pytest.mark.requirement("ACC-04")
def test_without_session_api_is_401_and_pages_redirect_to_login(anon: TestClient) -> None:
    assert anon.get("/api/me").status_code == 401
    assert anon.get("/api/bedside/sofa?gcs=15").status_code == 401
    r = anon.get("/bedside", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_forged_cookie_is_not_a_session(anon: TestClient) -> None:
    anon.cookies.set(SESSION_COOKIE, "eyJ1aWQiOiAxfQ==.forged.signature", domain="testserver")
    assert anon.get("/api/me").status_code == 401


@pytest.mark.requirement("ACC-04")
def test_state_changing_request_needs_the_session_csrf_token(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    # Logout is state-changing: without, with a forged, and with the right token.
    assert c.http.post("/api/logout").status_code == 403
    assert c.http.post("/api/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert c.http.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert c.get("/api/me").status_code == 200  # still logged in
    assert c.post("/api/logout").status_code == 204
    assert c.get("/api/me").status_code == 401


def test_csrf_token_of_another_session_is_rejected(login) -> None:  # type: ignore[no-untyped-def]
    a, b = login("inv1"), login("inv2")
    assert a.http.post("/api/logout", headers={"X-CSRF-Token": b.csrf}).status_code == 403


def test_form_login_requires_the_login_page_csrf_token(anon: TestClient, password: str) -> None:
    form = {"username": "inv1", "password": password}
    assert anon.post("/login", data=form).status_code == 403
    page = anon.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    r = anon.post("/login", data={**form, "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"


def test_login_rotates_the_csrf_token_against_session_fixation(anon: TestClient, password: str) -> None:
    page = anon.get("/login")
    before = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    after = anon.post("/api/login", json={"username": "inv1", "password": password}).json()["csrf_token"]
    assert before != after


def test_json_login_cannot_be_posted_as_a_form_without_token(anon: TestClient, password: str) -> None:
    r = anon.post("/api/login", data={"username": "inv1", "password": password})
    assert r.status_code == 403


def test_security_headers_on_pages_api_and_errors(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    for url in ("/bedside", "/api/me", "/api/nothing-here", "/login"):
        h = c.get(url).headers
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self'" in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["cache-control"] == "no-store"


@pytest.mark.requirement("ACC-03")
def test_login_throttle_delays_repeated_failures(app, anon: TestClient, password: str) -> None:  # type: ignore[no-untyped-def]
    # The throttle's clock stands still: the delay after the fifth failure (one second) must not run out
    # between two requests on a loaded machine (it did, and the sixth attempt was admitted).
    app.state.throttle.clock = lambda: 1000.0
    for _ in range(5):
        assert (
            anon.post("/api/login", json={"username": "inv1", "password": "bad password!"}).status_code == 401
        )
    r = anon.post("/api/login", json={"username": "inv1", "password": password})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # Colleagues behind the same hospital address can still log in: the address allowance is higher ...
    assert anon.post("/api/login", json={"username": "inv2", "password": password}).status_code == 200
    anon.cookies.clear()
    # ... but an address guessing across many usernames is slowed down too.
    for k in range(50):
        anon.post("/api/login", json={"username": f"guess{k}", "password": "bad password!"})
    assert anon.post("/api/login", json={"username": "pharm1", "password": password}).status_code == 429


def test_throttle_prunes_stale_entries() -> None:
    now = [0.0]
    t = LoginThrottle(max_failures=3, window_s=60, lockout_s=120, max_entries=100, clock=lambda: now[0])
    for k in range(60):
        t.failed(t.admit(f"user{k}", f"10.0.0.{k}"))
    assert len(t._counters) == 120
    now[0] = 1000.0
    t.failed(t.admit("late", "10.0.1.1"))
    assert set(t._counters) == {"user:late", "addr:10.0.1.1"}


def test_throttle_delays_grow_and_are_forgotten_after_a_quiet_window() -> None:
    now = [0.0]
    t = LoginThrottle(
        max_failures=3, window_s=600, lockout_s=120, max_account_delay_s=60, clock=lambda: now[0]
    )
    for _ in range(3):
        t.failed(t.admit("alice", "10.0.0.1"))
    waits = []
    for _ in range(8):
        with pytest.raises(TooManyAttempts) as exc:
            t.admit("ALICE", "10.0.0.2")  # usernames are case-insensitive; the address does not matter
        waits.append(exc.value.retry_after_s)
        now[0] += exc.value.retry_after_s
        t.failed(t.admit("alice", "10.0.0.2"))
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]  # doubling, capped: never a lockout
    now[0] += 601  # a quiet window: forgotten
    for _ in range(3):
        t.failed(t.admit("alice", "10.0.0.3"))


def test_deactivated_user_loses_the_session_at_once(login, app, api_enroll) -> None:  # type: ignore[no-untyped-def]
    """The user row is read in each request's own transaction: reads, writes and pages all stop at once."""
    from sqlalchemy import func, select, update

    from immunosep.conduct.access import actor_for
    from immunosep.conduct.users import deactivate_user
    from immunosep.store.db import session_scope
    from immunosep.store.models import DailyCrf, User

    pseudonym = api_enroll()
    reader, writer, browser = login("inv1"), login("inv1"), login("inv1")
    with session_scope(app.state.engine) as s:
        admin = s.query(User).filter_by(username="admin").one()
        deactivate_user(s, actor_for(s, admin), "inv1")
    assert reader.get("/api/me").status_code == 401
    write = writer.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12})
    assert write.status_code == 401
    page = browser.get("/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    with session_scope(app.state.engine) as s:
        assert s.scalar(select(func.count()).select_from(DailyCrf)) == 0
        s.execute(update(User).where(User.username == "inv1").values(active=True))
    # the refused requests ended their sessions: reactivating the account does not revive the old cookies
    for c in (reader, writer, browser):
        assert c.get("/api/me").status_code == 401
    assert login("inv1").get("/api/me").status_code == 200


def test_open_redirect_after_login_is_refused(anon: TestClient) -> None:
    page = anon.get("/login?next=//evil.example/")
    assert 'name="next" value=""' in page.text


def test_oversized_body_is_refused(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    r = c.post("/api/logout", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_openapi_schema_is_served_without_cdn_docs(anon: TestClient) -> None:
    schema = anon.get("/openapi.json").json()
    assert "/api/login" in schema["paths"] and "/api/me" in schema["paths"]
    assert anon.get("/docs").status_code == 404


def test_a_write_whose_commit_fails_is_not_answered_as_a_success(
    api_enroll, app, password, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """FastAPI closes yield dependencies after the response is sent: the commit must happen before it."""
    from fastapi.routing import APIRoute, iter_route_contexts

    from immunosep.store import db as store_db
    from immunosep.web.deps import TransactionRoute

    # app.routes holds the included routers; iter_route_contexts walks down to every APIRoute
    routes = [c.original_route for c in iter_route_contexts(app.routes)]
    api_routes = [r for r in routes if isinstance(r, APIRoute)]
    assert len(api_routes) > 50 and all(isinstance(r, TransactionRoute) for r in api_routes)
    pseudonym = api_enroll()
    c = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    c.headers["X-CSRF-Token"] = c.post("/api/login", json={"username": "inv1", "password": password}).json()[
        "csrf_token"
    ]

    def disk_full(self) -> None:  # type: ignore[no-untyped-def]
        raise OSError("disk full at commit")

    with monkeypatch.context() as m:
        m.setattr(store_db.TrialSession, "commit", disk_full)
        r = c.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12})
    assert r.status_code == 500
    assert c.get(f"/api/patients/{pseudonym}/crf").json() == []
    assert c.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12}).status_code == 200
