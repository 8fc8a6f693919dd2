"""Pages, menu and buttons ask ``conduct.permissions``: as every role, a page answers 403 exactly when ``can``
says no, the menu lists exactly the pages the role may use (each of which opens), and the buttons of a
patient record follow the same table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from immunosep.conduct.permissions import PERMISSIONS, role_can
from immunosep.web.pages._render import BEDSIDE, MENU

SRC = Path(__file__).resolve().parents[2] / "src" / "immunosep"
REQUIRE = re.compile(r"""\brequire\(actor, "([a-z_]+)"\)""")

#: One user of each role in the seeded test database.
USERS = {
    "investigator": "inv1",
    "pharmacist": "pharm1",
    "lab": "lab",
    "monitor": "mon1",
    "data_manager": "dm",
    "dsmb": "dsmb",
    "admin": "admin",
}
#: The page that checks each page-level action ({p}: a randomized patient of site S01).
PAGE_OF_ACTION = {
    "open_patient_record": "/patients/{p}",
    "review_missing_data": "/missing",
    "open_pharmacy_log": "/pharmacy/log",
    "manage_users": "/admin/users",
    "manage_sites": "/admin/sites",
    "print_casebook": "/patients/{p}/casebook.pdf",
}
NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)


def _required_in(folder: str) -> set[str]:
    return {a for f in (SRC / folder).glob("*.py") for a in REQUIRE.findall(f.read_text(encoding="utf-8"))}


def test_every_action_only_a_page_checks_is_called_here_as_every_role() -> None:
    pages, services = _required_in("web/pages"), _required_in("conduct")
    assert set(PAGE_OF_ACTION) == pages - services
    assert set(PAGE_OF_ACTION) <= set(PERMISSIONS)


@pytest.mark.parametrize("role", list(USERS))
def test_pages_refuse_exactly_when_can_says_no_and_the_menu_follows_the_table(
    login, api_enroll, role: str
) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    c = login(USERS[role])
    for action, url in PAGE_OF_ACTION.items():
        r = c.get(url.format(p=pseudonym))
        expected = 200 if role_can(role, action) else 403
        assert r.status_code == expected, (role, action, r.text[:300])
        if expected == 403:
            assert f"the {role} role may not {PERMISSIONS[action].says}" in r.text
    home = c.get("/bedside")
    menu = re.findall(r'href="([^"]+)"', NAV.search(home.text).group(1))  # type: ignore[union-attr]
    assert menu == [href for href, _, action in MENU if role_can(role, action)] + [BEDSIDE[0]]
    for href in menu:
        assert c.get(href).status_code == 200, (role, href)


def test_patient_record_buttons_follow_the_table(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    investigator = login("inv1").get(f"/patients/{pseudonym}").text
    monitor = login("mon1").get(f"/patients/{pseudonym}").text
    for link in ("/unblind", "/withdraw", "/ae", "/outcome"):
        assert f"/patients/{pseudonym}{link}" in investigator
        assert f"/patients/{pseudonym}{link}" not in monitor
    assert f"/patients/{pseudonym}/audit" in monitor and f"/patients/{pseudonym}/audit" not in investigator
    queries_inv, queries_mon = login("inv1").get("/queries").text, login("mon1").get("/queries").text
    assert 'data-testid="raise-query"' in queries_mon and 'data-testid="raise-query"' not in queries_inv
