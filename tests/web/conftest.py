"""Fixtures of the web tests: a seeded SQLite trial with one user per role, and logged-in clients.

The trial database comes from the shared ``db_url`` fixture (tests/conftest.py: a per-worker seeded
template copied for each test, one user per role), so tests stay independent and xdist-safe.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from immunosep.web.app import create_app

SECRET = "test-secret-key-with-at-least-32-characters"
#: The shared fixtures' password of every test user (tests/conftest.py).
PASSWORD = "correct horse battery"


@pytest.fixture
def db_url(_templates, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """The shared seeded SQLite template (tests/conftest.py), copied for this test.

    Overrides the two-backend ``db_url`` here: the services are tested on both backends by their own
    tests, and the web layer adds nothing backend-specific (the benchmark runs on both).
    """
    path = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def app(db_url: str):  # type: ignore[no-untyped-def]
    application = create_app(db_url, secret_key=SECRET, secure_cookies=True)
    yield application
    application.state.engine.dispose()


@dataclass
class Client:
    """A TestClient logged in as one user; ``csrf`` goes in the header of unsafe requests."""

    http: TestClient
    csrf: str
    username: str

    def get(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.http.get(url, **kw)

    def post(self, url: str, **kw):  # type: ignore[no-untyped-def]
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.post(url, headers=headers, **kw)


@pytest.fixture
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def login(app) -> Iterator[Callable[[str], Client]]:  # type: ignore[no-untyped-def]
    """``login("inv1")`` returns a fresh client logged in as that user."""
    opened: list[TestClient] = []

    def _login(username: str) -> Client:
        c = TestClient(app, base_url="https://testserver")
        c.__enter__()
        opened.append(c)
        r = c.post("/api/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return Client(c, r.json()["csrf_token"], username)

    yield _login
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def password() -> str:
    """Every test user's password."""
    return PASSWORD
