"""The permission table is complete, names only real roles, and agrees with what the services do.

- Every action a service, page, template or menu asks for is in ``PERMISSIONS``, and every action in it is
  asked for somewhere (no dead row).
- No role-name literal lives outside ``conduct/permissions.py`` and ``conduct/blinding.py`` (and the role
  definitions themselves), so a new ``{"investigator"}`` in a page fails here.
- For every service and every role, the service refuses exactly when ``can`` says no, with the message
  ``require`` builds: the table cannot drift from behaviour.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from immunosep.conduct import (
    adverse_events,
    biospecimens,
    classification,
    crf,
    dosing,
    edit_checks,
    export,
    interim_looks,
    lock,
    odm,
    outcomes,
    queries,
    randomization,
    reports,
    screening,
    sdv,
    signatures,
    sites,
    unblinding,
    users,
    withdrawal,
    worklist,
)
from immunosep.conduct.access import Actor
from immunosep.conduct.blinding import UNBLINDED_ROLES
from immunosep.conduct.permissions import PERMISSIONS, REVEALING, SITE_SCOPE, can, require, role_can
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.store.models import ROLES

TEST_PASSWORD = "correct horse battery"  # the shared fixtures' password (tests/conftest.py)

SRC = Path(__file__).resolve().parents[2] / "src" / "immunosep"
#: Files allowed to spell a role name, and why.
ROLE_LITERALS_ALLOWED = {
    "conduct/permissions.py": "the one table of who may do what, and each role's site scope",
    "conduct/blinding.py": "the one rule of who is unblinded",
    "store/models.py": "ROLES, the definition of the roles",
    "simulate/runner.py": "the user accounts of a virtual trial's staff (one per role and site)",
}
#: Module-level assignments allowed to spell role names (a display label per role is a role definition).
ROLE_LITERAL_ASSIGNMENTS_ALLOWED = {("web/pages/_render.py", "ROLE_LABELS")}
#: Actions used by the menu only: the menu shows the page to these roles, the page itself lets the
#: services behind it decide (so nothing refuses on this action's behalf).
MENU_ONLY = {"review_unblindings"}
#: One user of each role in the seeded test database (tests/conftest.py).
USER_OF_ROLE = {
    "investigator": "inv1",
    "pharmacist": "pharm1",
    "lab": "lab",
    "monitor": "mon1",
    "data_manager": "dm",
    "dsmb": "dsmb",
    "admin": "admin",
}


def _python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _actions_asked_in_python() -> dict[str, set[str]]:
    """action -> files, for every ``require(x, "a")``, ``can(x, "a")`` and ``role_can(r, "a")`` call and every
    ``(href, label, "a")`` entry of the menu."""
    asked: dict[str, set[str]] = {}
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in {"require", "can", "role_can", "_can"} and len(node.args) == 2:
                    arg = node.args[1]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        asked.setdefault(arg.value, set()).add(_rel(path))
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MENU" for t in node.targets):
                for entry in getattr(node.value, "elts", []):
                    action = entry.elts[2]
                    asked.setdefault(action.value, set()).add(_rel(path))
            if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MENU" and node.value:
                for entry in getattr(node.value, "elts", []):
                    asked.setdefault(entry.elts[2].value, set()).add(_rel(path))
    return asked


def _templates() -> list[Path]:
    return sorted(SRC.rglob("*.html")) + sorted(SRC.rglob("*.j2"))


def _actions_asked_in_templates() -> dict[str, set[str]]:
    asked: dict[str, set[str]] = {}
    for path in _templates():
        for action in re.findall(r"""\bcan\(\s*["']([a-z_]+)["']\s*\)""", path.read_text(encoding="utf-8")):
            asked.setdefault(action, set()).add(_rel(path))
    return asked


def test_every_action_asked_for_is_in_the_table_and_every_row_is_used() -> None:
    asked = _actions_asked_in_python()
    for action, files in _actions_asked_in_templates().items():
        asked.setdefault(action, set()).update(files)
    unknown = {a: sorted(f) for a, f in asked.items() if a not in PERMISSIONS}
    assert not unknown, f"actions missing from conduct.permissions.PERMISSIONS: {unknown}"
    # the scan is meaningful: services, pages, templates and the menu all ask
    where = {f for files in asked.values() for f in files}
    assert {"conduct/randomization.py", "web/pages/screening.py", "web/pages/_render.py"} <= where
    assert any(f.endswith(".html") for f in where)
    unused = sorted(set(PERMISSIONS) - set(asked))
    assert not unused, f"actions nobody asks for (remove them): {unused}"


@pytest.mark.requirement("ACC-01", "BLIND-02")
def test_the_table_names_real_roles_and_shows_allocations_to_unblinded_roles_only() -> None:
    assert set(SITE_SCOPE) == set(ROLES)
    assert set(ROLES) >= UNBLINDED_ROLES
    for action, permission in PERMISSIONS.items():
        assert permission.roles <= set(ROLES), action
        assert permission.says and permission.says == permission.says.strip(), action
        if action in REVEALING:
            assert permission.roles <= UNBLINDED_ROLES, action
    assert set(PERMISSIONS) >= REVEALING
    # the roles with a page of their own can reach one: every role is allowed at least one action
    assert {r for p in PERMISSIONS.values() for r in p.roles} == set(ROLES)
    assert not role_can("superuser", "screen")


#: Who may do what before the table existed (the role sets of the former ``require_role`` calls), by role
#: initial: i investigator, p pharmacist, l lab, m monitor, d data_manager, s dsmb, a admin. A change of
#: the table must change this line on purpose.
BEFORE = {
    "screen": "i", "record_consent": "i", "read_screening_log": "imd", "classify": "i", "randomize": "i",
    "see_allocation": "p", "read_list_usage": "imd", "open_patient_record": "imd", "read_worklist": "imd",
    "enter_crf": "i", "read_crf": "imd", "enter_biomarkers": "l", "see_regimen": "p", "record_dose": "p",
    "list_on_treatment": "p", "read_dosing_log": "imdp", "open_pharmacy_log": "p", "record_ae": "i",
    "read_ae": "imd", "read_susars": "imd", "record_outcome": "i", "read_outcomes": "imd",
    "record_withdrawal": "i", "unblind_emergency": "i", "read_unblinding_report": "imd",
    "review_unblindings": "md", "raise_query": "md", "answer_query": "i", "close_query": "md",
    "read_queries": "imd", "reopen_query": "md", "run_edit_checks": "d", "verify_source": "m",
    "read_sdv": "md", "review_missing_data": "md", "read_audit_trail": "md", "lock": "d",
    "lock_trial": "d", "export": "d", "export_odm": "imd", "export_unblinded": "", "read_dsmb_report": "s", "record_interim_look": "s", "manage_users": "a",
    "sign_casebook": "i", "review_casebook": "d", "sign_lock": "d", "read_signatures": "imd", "print_casebook": "imd",
    "create_user": "a", "deactivate_user": "a", "reset_password": "a", "approve_account": "a", "manage_sites": "a", "edit_sites": "a", "list_sites": "admsi",
}  # fmt: skip
INITIAL = {
    "i": "investigator",
    "p": "pharmacist",
    "l": "lab",
    "m": "monitor",
    "d": "data_manager",
    "s": "dsmb",
    "a": "admin",
}


def test_the_table_keeps_who_may_do_what_as_before() -> None:
    assert {a: {INITIAL[c] for c in who} for a, who in BEFORE.items()} == {
        a: set(p.roles) for a, p in PERMISSIONS.items()
    }


@pytest.mark.requirement("ACC-01")
def test_require_refuses_with_the_message_shape_of_before() -> None:
    lab = Actor(user_id=1, role="lab")
    with pytest.raises(
        AccessDenied, match=r"^the lab role may not randomize a patient; allowed: investigator$"
    ):
        require(lab, "randomize")
    with pytest.raises(
        AccessDenied,
        match=r"^the lab role may not read the daily CRF; allowed: data_manager, investigator, monitor$",
    ):
        require(lab, "read_crf")
    require(Actor(user_id=1, role="investigator"), "randomize")  # allowed: no error
    with pytest.raises(AccessDenied, match="the ghost role may not"):
        require(Actor(user_id=1, role="ghost"), "list_sites")
    with pytest.raises(KeyError, match="no action 'fly'"):
        can(lab, "fly")


def _role_literals(source: str, rel: str) -> list[tuple[int, str]]:
    """(line, role) of every string constant that is a role name, outside the allowed assignments."""
    tree = ast.parse(source)
    allowed_nodes: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any((rel, getattr(t, "id", "")) in ROLE_LITERAL_ASSIGNMENTS_ALLOWED for t in targets):
                allowed_nodes |= {id(n) for n in ast.walk(node)}
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in ROLES and id(node) not in allowed_nodes
    ]


def test_no_role_name_literal_outside_permissions_and_blinding() -> None:
    found = [
        f"{_rel(path)}:{line}: {role!r}"
        for path in _python_files()
        if _rel(path) not in ROLE_LITERALS_ALLOWED
        for line, role in _role_literals(path.read_text(encoding="utf-8"), _rel(path))
    ]
    # templates: no role compared in a Jinja expression (ask can("action") instead)
    roles = "|".join(ROLES)
    jinja = re.compile(r"\{[%{](.*?)[%}]\}", re.S)
    for path in _templates():
        for expr in jinja.findall(path.read_text(encoding="utf-8")):
            if re.search(rf"""["']({roles})["']|\b(user|actor)\.role\b(?!_)""", expr):
                found.append(f"{_rel(path)}: {expr.strip()}")
    assert not found, "role names outside conduct/permissions.py and conduct/blinding.py:\n" + "\n".join(
        found
    )


def test_the_role_literal_scan_catches_a_new_literal() -> None:
    page = 'def page(actor):\n    require_role(actor, {"pharmacist"}, "x")\n'
    assert _role_literals(page, "web/pages/new.py") == [(2, "pharmacist")]
    labels = 'ROLE_LABELS = {"lab": "Central lab"}\nOTHER = {"lab": 1}\n'
    assert _role_literals(labels, "web/pages/_render.py") == [(2, "lab")]


# -- behaviour: every service, as every role, refuses exactly when `can` says no --------------------------
def _now() -> datetime:
    return datetime.now(UTC) - timedelta(hours=2)


def _services(pseudonym: str, out_dir: Path) -> dict[str, list[Callable[[Any, Any], Any]]]:
    """action -> the services that check it (called on one randomized patient of site S01)."""
    return {
        "screen": [
            lambda s, a: screening.screen(
                s,
                a,
                screening.ScreeningInput(
                    age_years=50,
                    sex="female",
                    infection_type="cap",
                    sepsis_onset_at=_now(),
                    sofa_now=5,
                    neutrophils_per_mm3=5000.0,
                ),
            )
        ],
        "record_consent": [lambda s, a: screening.record_consent(s, a, pseudonym, "patient")],
        "read_screening_log": [lambda s, a: screening.screening_log(s, a)],
        "enter_biomarkers": [
            lambda s, a: biospecimens.record_draw(
                s, a, pseudonym, 2, ferritin_ng_ml=800.0, hla_dr_per_monocyte=4000.0
            )
        ],
        "classify": [lambda s, a: classification.classify_patient(s, a, pseudonym)],
        "randomize": [lambda s, a: randomization.allocate(s, a, pseudonym)],
        "see_allocation": [lambda s, a: randomization.arm_of(s, a, pseudonym)],
        "read_list_usage": [lambda s, a: randomization.list_status(s, a, 1)],
        "read_worklist": [lambda s, a: worklist.worklist(s, a)],
        "enter_crf": [lambda s, a: crf.record_day(s, a, pseudonym, 3, crf.DailyInputs(gcs=14))],
        "read_crf": [lambda s, a: crf.daily_records(s, a, pseudonym)],
        "see_regimen": [lambda s, a: dosing.day_regimen(s, a, pseudonym, 1)],
        "record_dose": [lambda s, a: dosing.record_dose(s, a, pseudonym, 2, "iv", 8, given=True)],
        "list_on_treatment": [lambda s, a: dosing.patients_on_treatment(s, a)],
        "read_dosing_log": [lambda s, a: dosing.administrations(s, a, pseudonym)],
        "record_outcome": [lambda s, a: outcomes.record_outcome(s, a, pseudonym, icu_discharge_day=12)],
        "read_outcomes": [lambda s, a: outcomes.get_outcome(s, a, pseudonym)],
        "record_ae": [
            lambda s, a: adverse_events.record_adverse_event(
                s,
                a,
                pseudonym,
                onset_day=3,
                term="Anaemia",
                serious=False,
                relatedness="not related",
                expected=True,
                action="DOSE NOT CHANGED",
                outcome="NOT RECOVERED/NOT RESOLVED",
            )
        ],
        "read_ae": [lambda s, a: adverse_events.adverse_events(s, a, pseudonym)],
        "read_susars": [lambda s, a: adverse_events.susar_report(s, a)],
        "record_withdrawal": [lambda s, a: withdrawal.withdraw(s, a, pseudonym, erase_data=False)],
        "unblind_emergency": [
            lambda s, a: unblinding.emergency_unblind(s, a, pseudonym, "anaphylaxis, treating physician asks")
        ],
        "read_unblinding_report": [lambda s, a: unblinding.unblinding_report(s, a)],
        "raise_query": [
            lambda s, a: queries.raise_query(s, a, pseudonym, table_name="daily_crf", text="check GCS")
        ],
        "answer_query": [lambda s, a: queries.answer_query(s, a, 1, "checked")],
        "close_query": [lambda s, a: queries.close_query(s, a, 1)],
        "read_queries": [lambda s, a: queries.list_queries(s, a), lambda s, a: queries.aging(s, a)],
        "reopen_query": [lambda s, a: queries.reopen_query(s, a, 1, "the answer does not match the source")],
        "run_edit_checks": [lambda s, a: edit_checks.run_checks(s, a)],
        "verify_source": [
            lambda s, a: sdv.verify(s, a, pseudonym, table_name="biomarker_draws", row_id=1),
            lambda s, a: sdv.verify_record(s, a, pseudonym, "biomarker_draws/1"),
        ],
        "read_sdv": [lambda s, a: sdv.patient_plan(s, a, pseudonym), lambda s, a: sdv.progress(s, a)],
        "read_audit_trail": [lambda s, a: reports.audit_trail(s, a, pseudonym)],
        "lock": [lambda s, a: lock.lock_patient(s, a, pseudonym)],
        "lock_trial": [lambda s, a: lock.lock_trial(s, a)],
        "export": [lambda s, a: export.export_sdtm(s, a, out_dir)],
        "export_unblinded": [lambda s, a: export.export_sdtm(s, a, out_dir, unblinded=True)],
        "export_odm": [lambda s, a: odm.odm_document(s, a)],
        "read_dsmb_report": [
            lambda s, a: reports.dsmb_summary(s, a),
            lambda s, a: reports.predictability_report(s, a),
            lambda s, a: interim_looks.list_looks(s, a),
        ],
        "record_interim_look": [lambda s, a: interim_looks.record_look(s, a, {})],
        "create_user": [lambda s, a: users.create_user(s, a, "newuser", "long enough pw", "lab")],
        "deactivate_user": [lambda s, a: users.deactivate_user(s, a, "mon1")],
        "reset_password": [
            lambda s, a: users.reset_password(
                s, a, "mon1", "a fresh passphrase 7", "forgot it; identity checked"
            )
        ],
        "approve_account": [lambda s, a: users.pending_approvals(s, a)],
        "list_sites": [lambda s, a: sites.list_sites(s, a)],
        "edit_sites": [lambda s, a: sites.rename_site(s, a, "S01", "Attikon")],
        "sign_casebook": [
            lambda s, a: signatures.sign_casebook(
                s, a, pseudonym, "approved as investigator", signatures.Credentials(TEST_PASSWORD, a.username)
            )
        ],
        "review_casebook": [
            lambda s, a: signatures.sign_casebook(
                s, a, pseudonym, "reviewed as data manager", signatures.Credentials(TEST_PASSWORD, a.username)
            )
        ],
        "sign_lock": [
            lambda s, a: signatures.sign_lock(s, a, signatures.Credentials(TEST_PASSWORD, a.username))
        ],
        "read_signatures": [lambda s, a: signatures.casebook_signatures(s, a, pseudonym)],
    }


#: Actions checked by pages, not services (tests/web/test_permission_pages.py calls those as each role).
PAGE_ACTIONS = {
    "open_patient_record",
    "review_missing_data",
    "open_pharmacy_log",
    "manage_users",
    "manage_sites",
    "print_casebook",
}


def _outcome(trial: Any, actor: Any, fn: Callable[[Any, Any], Any]) -> BaseException | None:
    """Run one service in a transaction that is rolled back; the exception it raised, if any."""
    with session_scope(trial.engine) as s:
        try:
            fn(s, actor)
        except Exception as exc:
            return exc
        finally:
            s.rollback()
    return None


def test_every_action_of_the_table_is_exercised_here_or_by_the_pages() -> None:
    services = set(_services("S01-0001", Path(".")))
    assert services | PAGE_ACTIONS | MENU_ONLY == set(PERMISSIONS)
    assert not services & PAGE_ACTIONS


@pytest.mark.requirement("ACC-01")
def test_can_agrees_with_what_every_service_allows_for_every_role(
    trial: Any, enroll: Any, tmp_path: Path
) -> None:
    pseudonym = enroll()
    mismatches = []
    allowed_somewhere = 0
    for action, calls in _services(pseudonym, tmp_path / "export").items():
        for role, username in USER_OF_ROLE.items():
            actor = trial.actors[username]
            assert actor.role == role
            for fn in calls:
                exc = _outcome(trial, actor, fn)
                refused = isinstance(exc, AccessDenied) and exc.message.startswith(f"the {role} role may")
                if refused == can(actor, action):
                    mismatches.append(f"{action} as {role}: can={can(actor, action)}, service raised {exc!r}")
                if (
                    refused and action != "export_unblinded"
                ):  # refused by "export" or, for exporters, as before
                    with pytest.raises(AccessDenied) as expected:
                        require(actor, action)
                    if exc is not None and str(exc) != str(expected.value):
                        mismatches.append(f"{action} as {role}: message {exc} != {expected.value}")
                allowed_somewhere += not refused
    assert not mismatches, "\n".join(mismatches)
    assert allowed_somewhere >= len(PERMISSIONS) - len(PAGE_ACTIONS) - len(MENU_ONLY) - 1
