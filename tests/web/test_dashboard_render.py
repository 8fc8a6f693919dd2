"""The dashboard's kept parts (each patient's row and overdue items, the worklist's lines, the menu and the
asset URLs) give the page a fresh rendering would: they follow the data, the day and the host, and never
carry one site's or one role's view into another's page."""

from __future__ import annotations

import re

import pytest

from immunosep.web.pages import patients


def _rows(page: str) -> str:
    return page[page.index('<table data-testid="patients">') : page.index("</table>", page.index("patients"))]


def test_a_kept_row_is_the_row_rendered_afresh_and_follows_the_data(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    first = inv.get("/dashboard").text
    patients._PARTS.clear()  # render every part again: the page must not change
    assert inv.get("/dashboard").text == first
    assert inv.get("/dashboard").text == first  # and from the kept parts
    assert inv.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12}).status_code == 200
    row = re.search(
        rf"<tr>\s*<td><a href=\"/patients/{pseudonym}\">.*?</tr>", inv.get("/dashboard").text, re.S
    )
    assert row is not None and "<td>1</td>" in row.group(0)  # the new CRF day, not the kept row


def test_kept_parts_do_not_cross_sites_or_roles(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = api_enroll(), api_enroll(inv="inv2")
    inv1, inv2, dm = login("inv1"), login("inv2"), login("dm")
    for _ in range(2):
        page1, page2 = inv1.get("/dashboard").text, inv2.get("/dashboard").text
        assert f"{mine}</a>" in page1 and theirs not in page1
        assert f"{theirs}</a>" in page2 and mine not in page2
        # the same line, with the data manager's SDV column and without it for the investigator
        assert f'/patients/{mine}/sdv"' in _rows(dm.get("/dashboard").text)
        assert "/sdv" not in _rows(page1)


def test_the_layout_asset_urls_follow_the_host(app) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    for host in ("https://one.example", "https://two.example", "https://one.example"):
        with TestClient(app, base_url=host) as c:
            page = c.get("/login").text
        assert f'href="{host}/static/app.css"' in page and f'src="{host}/static/htmx.min.js"' in page


def test_the_parts_are_joined_as_the_markup_they_are_and_plain_text_is_refused() -> None:
    from markupsafe import Markup

    items = [Markup("<li>P001 &amp; day 2</li>"), Markup("<li>P002</li>")]
    assert patients._concat(items) == Markup("").join(items)
    assert type(patients._concat(items)) is Markup
    assert patients._concat([]) == Markup("")
    # a plain string would be joined unescaped into the page: refused, not trusted
    with pytest.raises(TypeError, match="only Markup"):
        patients._concat([*items, "<script>alert(1)</script>"])  # type: ignore[list-item]
