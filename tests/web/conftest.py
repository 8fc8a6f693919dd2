"""Fixtures of the web tests: a seeded SQLite trial with one user per role, and logged-in clients.

The trial database comes from the shared ``db_url`` fixture (tests/conftest.py: a per-worker seeded
template copied for each test, one user per role), so tests stay independent and xdist-safe.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from immunosep.store.audit import CHAIN_LOCK_KEY
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


def screening_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "age_years": 64,
        "sex": "male",
        "infection_type": "cap",
        "sepsis_onset_at": (datetime.now(UTC) - timedelta(hours=10)).isoformat(),
        "sofa_now": 7,
        "neutrophils_per_mm3": 9000.0,
        "weight_kg": 80.0,
        "height_cm": 175.0,
    }
    body.update(overrides)
    return body


def enroll_patient(login, ferritin: float = 6000.0, hla_dr: float | None = None, inv: str = "inv1") -> str:  # type: ignore[no-untyped-def]
    """Screen, enter the baseline draw, classify, consent and randomize; returns the pseudonym."""
    investigator, lab = login(inv), login("lab")
    r = investigator.post("/api/screening", json=screening_body())
    assert r.status_code == 200, r.text
    pseudonym = r.json()["pseudonym"]
    r = lab.post(
        f"/api/patients/{pseudonym}/draws",
        json={"study_day": 1, "ferritin_ng_ml": ferritin, "hla_dr_per_monocyte": hla_dr},
    )
    assert r.status_code == 200, r.text
    assert investigator.post(f"/api/patients/{pseudonym}/classify").json()["enrolled"] is True
    assert (
        investigator.post(f"/api/patients/{pseudonym}/consent", json={"given_by": "relative"}).status_code
        == 204
    )
    r = investigator.post(f"/api/patients/{pseudonym}/randomize")
    assert r.status_code == 200, r.text
    return pseudonym


@pytest.fixture
def api_enroll(login):  # type: ignore[no-untyped-def]
    """``api_enroll(ferritin=6000.0, hla_dr=None, inv="inv1")`` -> pseudonym of a patient randomized via the API."""

    def _api_enroll(ferritin: float = 6000.0, hla_dr: float | None = None, inv: str = "inv1") -> str:
        return enroll_patient(login, ferritin, hla_dr, inv)

    return _api_enroll


@pytest.fixture
def csrf_of():  # type: ignore[no-untyped-def]
    """Extracts the CSRF token of a rendered form."""

    def _csrf_of(html: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match is not None
        return match.group(1)

    return _csrf_of


def arm_of(engine: Any, pseudonym: str) -> str:
    """The test's oracle: the patient's arm as stored (no page or API gives it to a blinded role)."""
    from sqlalchemy import select

    from immunosep.store.db import session_scope
    from immunosep.store.models import Patient, RandomizationSlot

    with session_scope(engine) as s:
        return str(
            s.execute(
                select(RandomizationSlot.arm)
                .join(Patient, Patient.id == RandomizationSlot.patient_id)
                .where(Patient.pseudonym == pseudonym)
            ).scalar_one()
        )


@dataclass(frozen=True)
class WebHelpers:
    """Constants and helpers for test modules (which cannot import this conftest under importlib mode)."""

    password: str = PASSWORD
    secret: str = SECRET
    enroll_patient: Callable[..., str] = enroll_patient
    screening_body: Callable[..., dict[str, Any]] = screening_body
    arm_of: Callable[[Any, str], str] = arm_of


@pytest.fixture(scope="session")
def web() -> WebHelpers:
    return WebHelpers()


@pytest.fixture
def another_writer() -> Callable[[Engine], AbstractContextManager[None]]:
    """A context manager holding the writers' lock of an engine's database from another connection, as a
    writer in another process would (SQLite's write lock, PostgreSQL's advisory lock on the audit chain)."""
    return _another_writer


@contextmanager
def _another_writer(engine: Engine) -> Iterator[None]:
    """Hold the writers' lock from another connection, as a writer in another process would."""
    if engine.dialect.name == "sqlite":
        other = sqlite3.connect(str(engine.url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK_KEY})
        try:
            yield
        finally:
            conn.rollback()
