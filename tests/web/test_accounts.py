"""Sessions and accounts over HTTP: server-side logout, revocation, password change and reset, four eyes,
and a login throttle that counts exactly and never locks an account's owner out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Literal

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select

from immunosep.conduct import users
from immunosep.store.db import session_scope
from immunosep.store.models import UserSession
from immunosep.web.app import create_app
from immunosep.web.security import SESSION_COOKIE, LoginThrottle, TooManyAttempts

NEW = "a fresh passphrase 7"


def _cookie(c) -> str:  # type: ignore[no-untyped-def]
    return str(c.http.cookies.get(SESSION_COOKIE))


def _replay(app, cookie: str) -> TestClient:  # type: ignore[no-untyped-def]
    thief = TestClient(app, base_url="https://testserver")
    thief.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    return thief


@pytest.mark.parametrize("logout", ["/api/logout", "/logout"])
@pytest.mark.requirement("ACC-03")
def test_a_cookie_replayed_after_logout_gets_401(login, app, logout) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    stolen = _cookie(c)
    assert _replay(app, stolen).get("/api/me").status_code == 200  # a copy works while the session lives
    assert c.post(logout, follow_redirects=False).status_code in (204, 303)
    replayed = _replay(app, stolen)
    assert replayed.get("/api/me").status_code == 401
    page = replayed.get("/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    with session_scope(app.state.engine) as s:
        ended = s.execute(select(UserSession.end_reason).where(UserSession.ended_at.is_not(None))).scalars()
        assert list(ended) == ["logout"]


def test_logging_out_ends_only_that_session(login) -> None:  # type: ignore[no-untyped-def]
    a, b = login("inv1"), login("inv1")
    assert a.post("/api/logout").status_code == 204
    assert b.get("/api/me").status_code == 200


def test_deactivating_a_user_revokes_its_sessions_on_the_server(login, app) -> None:  # type: ignore[no-untyped-def]
    c, admin = login("inv1"), login("admin")
    stolen = _cookie(c)
    assert admin.post("/api/users/inv1/deactivate").status_code == 204
    with session_scope(app.state.engine) as s:
        assert s.execute(select(UserSession).where(UserSession.ended_at.is_(None))).scalars().all() != []
        live = s.execute(select(UserSession.user_id).where(UserSession.ended_at.is_(None))).scalars().all()
        uid = users._user_named(s, "inv1").id
        assert uid not in live
    assert _replay(app, stolen).get("/api/me").status_code == 401


def test_password_change_over_the_api_keeps_this_session_and_ends_the_others(login, app, anon) -> None:  # type: ignore[no-untyped-def]
    here, other = login("inv1"), login("inv1")
    r = here.post("/api/me/password", json={"old_password": "wrong one!!", "new_password": NEW})
    assert r.status_code == 422
    r = here.post(
        "/api/me/password", json={"old_password": "correct horse battery", "new_password": "          "}
    )
    assert r.status_code == 422 and "spaces" in r.json()["detail"]
    r = here.post("/api/me/password", json={"old_password": "correct horse battery", "new_password": NEW})
    assert r.status_code == 204
    assert here.get("/api/me").status_code == 200 and other.get("/api/me").status_code == 401
    assert anon.post("/api/login", json={"username": "Inv1", "password": NEW}).status_code == 200


def test_admin_reset_and_four_eyes_over_the_api(login, app, anon) -> None:  # type: ignore[no-untyped-def]
    admin = login("admin")
    body = {"password": NEW, "reason": "forgot it; identity checked by phone"}
    assert admin.post("/api/users/inv1/password", json={**body, "reason": ".........."}).status_code == 422
    r = admin.post("/api/users/inv1/password", json=body)
    assert r.status_code == 200 and r.json() == {"username": "inv1", "pending_approval": False}
    assert anon.post("/api/login", json={"username": "inv1", "password": NEW}).status_code == 200
    # an unblinded account: created inactive, waits for a second administrator
    r = admin.post(
        "/api/users", json={"username": "nightpharm", "password": NEW, "role": "pharmacist", "sites": ["S01"]}
    )
    assert r.status_code == 201 and r.json()["pending_approval"] is True
    anon.cookies.clear()
    assert anon.post("/api/login", json={"username": "nightpharm", "password": NEW}).status_code == 401
    [pending] = admin.get("/api/approvals").json()
    assert admin.post(f"/api/approvals/{pending['id']}/approve").status_code == 422  # not the requester
    with session_scope(app.state.engine) as s:
        users.create_user(s, None, "admin2", NEW, "admin")
    second = login_as(app, "admin2", NEW)
    assert second.post(f"/api/approvals/{pending['id']}/approve").status_code == 204
    assert anon.post("/api/login", json={"username": "nightpharm", "password": NEW}).status_code == 200
    # the administrators' page lists nothing pending any more and cannot deactivate the last admin ...
    assert login("admin").post("/api/users/admin2/deactivate").status_code == 204
    assert second.get("/api/me").status_code == 401
    r = login("admin").post("/api/users/admin/deactivate")
    assert r.status_code == 422 and "last active administrator" in r.json()["detail"]


def login_as(app, username: str, password: str):  # type: ignore[no-untyped-def]
    c = TestClient(app, base_url="https://testserver")
    r = c.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


# -- throttling without a denial of service ----------------------------------------------------------------


@pytest.mark.requirement("ACC-03")
def test_a_guesser_elsewhere_cannot_keep_the_owner_out() -> None:
    """No hard lockout: after 1000 wrong guesses from elsewhere, the owner logs in from its own terminal at
    once, and from a new address after at most the (short) account delay."""
    now = [0.0]
    t = LoginThrottle(clock=lambda: now[0])
    t.succeeded(t.admit("inv1", "10.1.1.1"))  # the ward's terminal: a successful login earlier today
    for k in range(1000):
        try:
            t.failed(t.admit("inv1", f"203.0.113.{k % 250}"))
        except TooManyAttempts as exc:
            now[0] += exc.retry_after_s
    t.succeeded(t.admit("inv1", "10.1.1.1"))  # the owner, at once
    for _ in range(1000):
        try:
            t.failed(t.admit("inv1", "203.0.113.9"))
        except TooManyAttempts:
            break
    with pytest.raises(TooManyAttempts) as exc:
        t.admit("inv1", "192.0.2.7")  # a new address waits ...
    assert exc.value.retry_after_s <= t.max_account_delay_s
    now[0] += exc.value.retry_after_s
    t.succeeded(t.admit("inv1", "192.0.2.7"))  # ... then its correct password passes


def test_an_address_limit_is_a_delay_that_a_correct_password_passes() -> None:
    now = [0.0]
    t = LoginThrottle(max_failures_per_address=50, clock=lambda: now[0])
    for k in range(50):
        t.failed(t.admit(f"guess{k}", "10.9.9.9"))
    with pytest.raises(TooManyAttempts) as exc:
        t.admit("inv1", "10.9.9.9")
    assert 0 < exc.value.retry_after_s <= t.lockout_s
    now[0] += exc.value.retry_after_s
    t.succeeded(t.admit("inv1", "10.9.9.9"))


@pytest.fixture
def any_backend_app(seeded_db_url: str, web) -> Iterator[object]:  # type: ignore[no-untyped-def]
    application = create_app(seeded_db_url, secret_key=web.secret, secure_cookies=True)
    yield application
    application.state.engine.dispose()


def test_forty_parallel_wrong_tries_check_at_most_the_limit(any_backend_app, monkeypatch, web) -> None:  # type: ignore[no-untyped-def]
    """Exact counting under concurrency, on both backends: the attempts are reserved before argon2 runs."""
    app = any_backend_app
    checked: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checked.append(str(password))
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_HASHER", CountingHasher())
    limit = app.state.throttle.max_failures
    start = threading.Barrier(40)
    statuses: list[int] = []

    def guess() -> None:
        with TestClient(app, base_url="https://testserver") as c:
            start.wait()
            statuses.append(
                c.post("/api/login", json={"username": "inv1", "password": "wrong guess!"}).status_code
            )

    threads = [threading.Thread(target=guess) for _ in range(40)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(checked) == limit
    assert sorted(statuses) == [401] * limit + [429] * (40 - limit)


def test_emergency_unblinding_stays_reachable_during_a_guessing_attack(
    login, app, api_enroll, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from immunosep.web import auth as web_auth

    pseudonym = api_enroll()  # inv1 has logged in from this address (the ward)
    monkeypatch.setattr(web_auth, "client_address", lambda request: "203.0.113.66")
    attacker = TestClient(app, base_url="https://testserver")
    codes = {
        attacker.post("/api/login", json={"username": "inv1", "password": "bad guess!!"}).status_code
        for _ in range(30)
    }
    assert codes == {401, 429}
    monkeypatch.setattr(web_auth, "client_address", lambda request: "testclient")
    doctor = login("inv1")
    r = doctor.post(
        f"/api/patients/{pseudonym}/unblind", json={"reason": "anaphylaxis, treating physician asks"}
    )
    assert r.status_code == 200, r.text


def test_pages_change_a_password_and_let_a_second_admin_approve(login, app, anon, csrf_of) -> None:  # type: ignore[no-untyped-def]
    inv = login("inv1")
    form = inv.get("/account/password")
    assert form.status_code == 200 and 'name="old_password"' in form.text
    bad = {
        "old_password": "correct horse battery",
        "password": "aaaaaaaaaaaa",
        "password_again": "aaaaaaaaaaaa",
    }
    r = inv.post("/account/password", data=bad)
    assert r.status_code == 422 and "different characters" in r.text
    good = {"old_password": "correct horse battery", "password": NEW, "password_again": NEW}
    assert inv.post("/account/password", data=good, follow_redirects=False).status_code == 303
    assert anon.post("/api/login", json={"username": "inv1", "password": NEW}).status_code == 200

    admin = login("admin")
    r = admin.post(
        "/admin/users",
        data={"username": "dsmb2", "password": NEW, "role": "dsmb"},
        follow_redirects=True,
    )
    assert "waits for a second administrator" in r.text and 'data-testid="pending-approvals"' in r.text
    [pending] = users_pending(app)
    r = admin.post(
        "/admin/users", data={"action": "approve", "approval_id": str(pending)}, follow_redirects=True
    )
    assert "another administrator" in r.text
    with session_scope(app.state.engine) as s:
        users.create_user(s, None, "admin2", NEW, "admin")
    second = TestClient(app, base_url="https://testserver")
    token = csrf_of(second.get("/login").text)
    second.post("/login", data={"username": "admin2", "password": NEW, "csrf_token": token})
    token = csrf_of(second.get("/admin/users").text)
    r = second.post(
        "/admin/users", data={"action": "approve", "approval_id": str(pending), "csrf_token": token}
    )
    assert r.status_code == 200 and "approved" in r.text
    reset = {
        "action": "reset",
        "username": "inv2",
        "password": NEW,
        "reason": "forgot it; ID checked in person",
    }
    assert "was reset" in admin.post("/admin/users", data=reset, follow_redirects=True).text


def users_pending(app) -> list[int]:  # type: ignore[no-untyped-def]
    from immunosep.store.models import AccountApproval

    with session_scope(app.state.engine) as s:
        return list(
            s.execute(select(AccountApproval.id).where(AccountApproval.status == "pending")).scalars()
        )
