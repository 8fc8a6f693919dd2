"""Shared database fixtures: the same tests run on a SQLite file and on a real PostgreSQL server.

Migrations are slow, so each xdist worker builds one initialized template per backend (trial seeded with
3 sites, fixed seed, one user per role) and every test gets a fresh copy: a file copy on SQLite,
``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. The PostgreSQL admin URL comes from
``IMMUNOSEP_TEST_PG_URL`` (default: local trust-auth server); an unreachable server FAILS the tests,
it never skips them.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TEST_SEED = "immunosep-test-seed"
TEST_SITES = 3
#: Enough slots at one site for the 200-concurrent-allocations test.
TEST_SLOTS_PER_SITE = 210
TEST_PASSWORD = "correct horse battery"
#: username -> (role, site codes)
TEST_USERS: dict[str, tuple[str, list[str]]] = {
    "inv1": ("investigator", ["S01"]),
    "inv2": ("investigator", ["S02"]),
    "pharm1": ("pharmacist", ["S01"]),
    "pharm2": ("pharmacist", ["S02"]),
    "lab": ("lab", []),
    "mon1": ("monitor", ["S01"]),
    "dm": ("data_manager", []),
    "dsmb": ("dsmb", []),
    "admin": ("admin", []),
}


#: username -> the printed name of its electronic signatures
TEST_FULL_NAMES = {name: f"{name.capitalize()} Tester" for name in TEST_USERS}


def pg_admin_url() -> str:
    return os.environ.get("IMMUNOSEP_TEST_PG_URL") or DEFAULT_PG_URL


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_admin_engine() -> Engine:
    url = pg_admin_url()
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        pytest.fail(
            f"PostgreSQL at {make_url(url).render_as_string(hide_password=True)} is not reachable ({exc}); "
            "start it with `make services` or set IMMUNOSEP_TEST_PG_URL",
            pytrace=False,
        )
    return engine


def _pg_db_url(name: str) -> str:
    return make_url(pg_admin_url()).set(database=name).render_as_string(hide_password=False)


#: Protocol files of the templates other than the bundled protocol, by template kind.
TEMPLATE_PROTOCOLS: dict[str, str] = {"adaptive": "examples/immunosep_adaptive.toml"}


def _seed(url: str, kind: str = "block") -> None:
    from argon2 import PasswordHasher

    from immunosep.conduct import users
    from immunosep.conduct.trial import init_trial
    from immunosep.conduct.users import create_user
    from immunosep.store.db import make_engine, session_scope

    # Cheap argon2 parameters for the template users only (seeding speed); verification reads the
    # parameters from each hash, and the production hasher is restored below.
    production_hasher = users._HASHER
    users._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    from immunosep.protocol.loader import bundled_protocol_path

    protocol = bundled_protocol_path().parent / TEMPLATE_PROTOCOLS[kind] if kind != "block" else None
    init_trial(url, protocol, sites=TEST_SITES, seed=TEST_SEED, slots_per_site=TEST_SLOTS_PER_SITE)
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            for name, (role, sites) in TEST_USERS.items():
                create_user(session, None, name, TEST_PASSWORD, role, sites, full_name=TEST_FULL_NAMES[name])
    finally:
        users._HASHER = production_hasher
        engine.dispose()


class _Templates:
    """Lazily built per-worker templates; dropped at the end of the session."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sqlite_paths: dict[str, Path] = {}
        self.pg_names: dict[str, str] = {}
        self.pg_admin: Engine | None = None

    def sqlite(self, kind: str = "block") -> Path:
        if kind not in self.sqlite_paths:
            path = self.tmp / f"template_{kind}.db"
            _seed(f"sqlite:///{path}", kind)
            self.sqlite_paths[kind] = path
        return self.sqlite_paths[kind]

    def postgres(self, kind: str = "block") -> tuple[Engine, str]:
        if self.pg_admin is None:
            self.pg_admin = _pg_admin_engine()
        if kind not in self.pg_names:
            name = f"immunosep_tpl_{_worker()}_{secrets.token_hex(4)}"
            with self.pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            _seed(_pg_db_url(name), kind)
            self.pg_names[kind] = name
        return self.pg_admin, self.pg_names[kind]

    def close(self) -> None:
        if self.pg_admin is not None:
            for name in self.pg_names.values():
                with self.pg_admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.pg_admin.dispose()


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    t = _Templates(tmp_path_factory.mktemp("db_templates"))
    yield t
    t.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded_db_url(request: pytest.FixtureRequest, _templates: _Templates, tmp_path: Path) -> Iterator[str]:
    """A fresh, initialized and seeded trial database (see module docstring) on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "trial.db"
        shutil.copyfile(_templates.sqlite(), path)
        yield f"sqlite:///{path}"
        return
    admin, template = _templates.postgres()
    with _pg_database(admin, "t", template) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def adaptive_db_url(request: pytest.FixtureRequest, _templates: _Templates, tmp_path: Path) -> Iterator[str]:
    """As ``seeded_db_url``, the trial run under the response-adaptive example protocol."""
    if request.param == "sqlite":
        path = tmp_path / "adaptive_trial.db"
        shutil.copyfile(_templates.sqlite("adaptive"), path)
        yield f"sqlite:///{path}"
        return
    admin, template = _templates.postgres("adaptive")
    with _pg_database(admin, "t", template) as url:
        yield url


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """The trial database of a test, on each backend (``seeded_db_url``; a package may override this name)."""
    return seeded_db_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database (no schema, no trial) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    admin = _pg_admin_engine()
    try:
        with _pg_database(admin, "e") as url:
            yield url
    finally:
        admin.dispose()


@contextmanager
def _pg_database(admin: Engine, kind: str, template: str | None = None) -> Iterator[str]:
    """A scratch PostgreSQL database (a copy of ``template``, or empty), dropped afterwards."""
    name = f"immunosep_{kind}_{_worker()}_{secrets.token_hex(4)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield _pg_db_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from immunosep.store.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@dataclass
class Trial:
    """Test handle: the engine and an Actor per test user."""

    engine: Engine
    url: str
    actors: dict[str, object]


@pytest.fixture
def trial(engine: Engine, db_url: str) -> Trial:
    from sqlalchemy import select

    from immunosep.conduct.access import actor_for
    from immunosep.store.db import session_scope
    from immunosep.store.models import User

    with session_scope(engine) as session:
        users = session.execute(select(User)).scalars().all()
        actors: dict[str, object] = {u.username: actor_for(session, u) for u in users}
    return Trial(engine=engine, url=db_url, actors=actors)


def screening_input(**overrides: object) -> object:
    """An eligible patient's screening answers (onset 10 h ago), with overrides."""
    from datetime import UTC, datetime, timedelta

    from immunosep.conduct.screening import ScreeningInput

    values: dict[str, object] = {
        "age_years": 64,
        "sex": "male",
        "infection_type": "cap",
        "sepsis_onset_at": datetime.now(UTC) - timedelta(hours=10),
        "sofa_now": 7,
        "neutrophils_per_mm3": 9000.0,
        "weight_kg": 80.0,
        "height_cm": 175.0,
    }
    values.update(overrides)
    return ScreeningInput(**values)  # type: ignore[arg-type]


@pytest.fixture
def enroll(trial: Trial):  # type: ignore[no-untyped-def]
    """``enroll(investigator="inv1", ferritin=6000.0, hla_dr=None, **screening)`` -> randomized pseudonym."""
    from immunosep.conduct import biospecimens, classification, randomization, screening
    from immunosep.store.db import session_scope

    def _enroll(
        investigator: str = "inv1", ferritin: float = 6000.0, hla_dr: float | None = None, **kw: object
    ) -> str:
        inv, lab = trial.actors[investigator], trial.actors["lab"]
        with session_scope(trial.engine) as s:
            pseudonym = screening.screen(s, inv, screening_input(**kw)).pseudonym  # type: ignore[arg-type]
        with session_scope(trial.engine) as s:
            biospecimens.record_draw(
                s,
                lab,
                pseudonym,
                1,
                ferritin_ng_ml=ferritin,
                hla_dr_per_monocyte=hla_dr,  # type: ignore[arg-type]
            )
        with session_scope(trial.engine) as s:
            classification.classify_patient(s, inv, pseudonym)  # type: ignore[arg-type]
            screening.record_consent(s, inv, pseudonym, "relative")  # type: ignore[arg-type]
        with session_scope(trial.engine) as s:
            randomization.allocate(s, inv, pseudonym)  # type: ignore[arg-type]
        return pseudonym

    return _enroll


@pytest.fixture
def screening_answers():  # type: ignore[no-untyped-def]
    """``screening_answers(**overrides)`` -> an eligible patient's :class:`ScreeningInput`."""
    return screening_input
