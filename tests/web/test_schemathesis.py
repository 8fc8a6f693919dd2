"""Property-based sweep of the JSON API with schemathesis: no input gives a 5xx (issue 17).

Every operation of the app's own OpenAPI schema is called in-process (ASGI) as each main role, with
positive (schema-valid) and negative (schema-violating) examples, on SQLite and PostgreSQL; the only
check is schemathesis's ``not_a_server_error``. Path parameters named ``pseudonym`` are half the time a
real randomized patient of the role's site, so the examples reach the services, not only the 404s.
The example count is bounded and the generation derandomized, so a run is reproducible and quick; the
coverage phase adds each operation's boundary values (deterministic).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from immunosep.web.security import SESSION_COOKIE

#: Examples per operation, role and generation mode (the sweep's cost grows linearly with it).
MAX_EXAMPLES = 3
#: The main roles, each with a user of the seeded trial (tests/conftest.py).
ROLE_USERS = {
    "investigator": "inv1",
    "pharmacist": "pharm1",
    "lab": "lab",
    "monitor": "mon1",
    "data_manager": "dm",
    "dsmb": "dsmb",
    "admin": "admin",
}
#: The roles swept on PostgreSQL too: the unblinded one, the one with the most forms and the administrator.
#: What differs between backends is the limits on numbers and text (the hostile-value tests below run on
#: both for every operation); which routes a role reaches is the same on both.
PG_ROLES = {"investigator", "dsmb", "admin"}
#: Operations that would end the sweep's own session (their 5xx-freedom is tested with the accounts).
SKIPPED = {("POST", "/api/logout")}


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """Both backends: their limits on numbers and text differ."""
    return seeded_db_url


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    return [op for op in operations if (op.method.upper(), op.path) not in SKIPPED]


@pytest.mark.parametrize("role", sorted(ROLE_USERS))
def test_no_server_error_on_any_input(app, login, api_enroll, db_url: str, role: str) -> None:  # type: ignore[no-untyped-def]
    if db_url.startswith("postgresql") and role not in PG_ROLES:
        pytest.skip(
            "on PostgreSQL the sweep runs as the roles of PG_ROLES (the backends differ in limits, not roles)"
        )
    pseudonym = api_enroll()
    client = login(ROLE_USERS[role])
    cookies = {SESSION_COOKIE: client.http.cookies[SESSION_COOKIE]}
    headers = {"X-CSRF-Token": client.csrf}
    operations = _operations(app)
    assert len(operations) > 30  # the whole API, not a handful

    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy, real_patient=st.booleans())
        def sweep(case: Any, real_patient: bool) -> None:
            if real_patient and "pseudonym" in (case.path_parameters or {}):
                case.path_parameters["pseudonym"] = pseudonym
            response = case.call(base_url="https://testserver", headers=headers, cookies=cookies)
            case.validate_response(response, checks=[not_a_server_error])

        sweep()


def test_no_server_error_on_the_boundaries(app, login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis's coverage phase: every operation's boundary and just-outside values (a bound + 1,
    the longest string and one longer, missing and wrong-typed fields), each case sent by the next
    role in turn, so every case is sent once per backend."""
    pseudonym = api_enroll()
    clients = [login(user) for user in ROLE_USERS.values()]
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    sent = 0
    for operation in _operations(app):
        schema = operation.schema
        config = schema.config.generation_for(operation=operation)
        for case in schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config):
            client = clients[sent % len(clients)]
            if sent % 2 and "pseudonym" in (case.path_parameters or {}):
                case.path_parameters["pseudonym"] = pseudonym
            response = case.call(
                base_url="https://testserver",
                headers={"X-CSRF-Token": client.csrf},
                cookies={SESSION_COOKIE: client.http.cookies[SESSION_COOKIE]},
            )
            case.validate_response(response, checks=[not_a_server_error])
            sent += 1
    assert sent > 1000


def _replace(value: Any, kind: type, new: Any) -> Any:
    """``value`` with every leaf of type ``kind`` (bool aside) replaced by ``new``."""
    if isinstance(value, dict):
        return {k: _replace(v, kind, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, kind, new) for v in value]
    return new if isinstance(value, kind) and not isinstance(value, bool) else value


@pytest.mark.parametrize(("kind", "hostile"), [(str, "x\x00y"), (int, 2**63), (int, -(2**63) - 1)])
def test_no_server_error_on_hostile_values(app, login, api_enroll, kind: type, hostile: Any) -> None:  # type: ignore[no-untyped-def]
    """A valid example of every operation with every string (or every integer) replaced by a value the
    earlier hostile-user session used (a NUL byte, an integer beyond 64 bits), sent as every role; the
    random and boundary sweeps above rarely draw these."""
    pseudonym = api_enroll()
    clients = [login(user) for user in ROLE_USERS.values()]
    sent = 0
    for operation in _operations(app):
        schema = operation.schema
        config = schema.config.generation_for(operation=operation)
        cases = schema.iter_coverage_cases(
            operation, generation_modes=[GenerationMode.POSITIVE], generation_config=config
        )
        case = next(iter(cases), None)
        if case is None:
            continue
        if "pseudonym" in (case.path_parameters or {}):
            case.path_parameters["pseudonym"] = pseudonym
        for name in ("path_parameters", "query"):  # their integers may come as strings already
            values = _replace(getattr(case, name), kind, hostile)
            if kind is int and values:
                values = {k: str(hostile) if str(v).lstrip("-").isdigit() else v for k, v in values.items()}
            setattr(case, name, values)
        if isinstance(case.body, (dict, list)):
            case.body = _replace(case.body, kind, hostile)
        for client in clients:
            response = case.call(
                base_url="https://testserver",
                headers={"X-CSRF-Token": client.csrf},
                cookies={SESSION_COOKIE: client.http.cookies[SESSION_COOKIE]},
            )
            case.validate_response(response, checks=[not_a_server_error])
            sent += 1
    assert sent > 30 * len(clients)


def test_no_server_error_in_stateful_sequences(app, login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis's stateful mode: sequences of calls along the links it infers from the schema (a
    value one response gives used in the next request), as the data manager; bounded and derandomized."""
    api_enroll()
    client = login("dm")
    call_kwargs = {
        "base_url": "https://testserver",
        "headers": {"X-CSRF-Token": client.csrf},
        "cookies": {SESSION_COOKIE: client.http.cookies[SESSION_COOKIE]},
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    machine = schema.as_state_machine()
    statuses: list[int] = []

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return dict(call_kwargs)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

    Workflow.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=5,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert len(statuses) >= 10 and any(s < 300 for s in statuses), statuses
