"""Electronic signatures on the web: the sign form (CSRF, components per session), the patient page's
manifestation, the casebook PDF read back with pypdf, refusals audited and throttled, the signed lock."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from immunosep.store.db import session_scope
from immunosep.store.models import AuditEntry

APPROVED = "approved as investigator"


def pdf_text(data: bytes) -> str:
    """The text of every page of a PDF, as pypdf extracts it (whitespace collapsed)."""
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def refused_entries(app) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    with session_scope(app.state.engine) as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == "refused")).scalars())


@pytest.mark.requirement("SIG-03", "SIG-12")
def test_the_sign_form_takes_username_and_password_first_then_the_password(
    app, login, api_enroll, csrf_of, password
) -> None:  # type: ignore[no-untyped-def]
    a, b = api_enroll(), api_enroll()
    inv = login("inv1")
    form = inv.get(f"/patients/{a}/sign")
    assert form.status_code == 200 and 'name="username"' in form.text and "Inv1 Tester" in form.text
    token = csrf_of(form.text)
    # a forged CSRF token is refused before anything else
    r = inv.http.post(
        f"/patients/{a}/sign", data={"csrf_token": "x" * 43, "meaning": APPROVED, "password": password}
    )
    assert r.status_code == 403
    r = inv.http.post(
        f"/patients/{a}/sign", data={"csrf_token": token, "meaning": APPROVED, "password": password}
    )
    assert r.status_code == 422 and "first signing of a session" in r.text
    data = {"csrf_token": token, "meaning": APPROVED, "password": password, "username": "inv1"}
    r = inv.http.post(f"/patients/{a}/sign", data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{a}"
    page = inv.get(f"/patients/{a}").text
    assert "Inv1 Tester" in page and APPROVED in page and ">valid<" in page
    # the second signing of the session: the password only
    form = inv.get(f"/patients/{b}/sign")
    assert 'name="username"' not in form.text
    data = {"csrf_token": token, "meaning": APPROVED, "password": password}
    r = inv.http.post(f"/patients/{b}/sign", data=data, follow_redirects=False)
    assert r.status_code == 303
    signed = inv.get(f"/api/patients/{b}/signatures").json()
    assert [(s["components"], s["printed_name"], s["valid"]) for s in signed] == [
        ("password", "Inv1 Tester", True)
    ]


@pytest.mark.requirement("SIG-05")
def test_wrong_passwords_are_audited_and_throttled_like_logins(app, login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    inv = login("inv1")
    body = {"meaning": APPROVED, "password": "not my password", "username": "inv1"}
    codes = [inv.post(f"/api/patients/{p}/signatures", json=body).status_code for _ in range(7)]
    assert codes[:5] == [422] * 5 and codes[5:] == [429, 429]  # the login throttle's allowance
    entries = refused_entries(app)
    assert len(entries) == 5 and all(e.table_name == "signatures" for e in entries)
    assert inv.get(f"/api/patients/{p}/signatures").json() == []


@pytest.mark.requirement("SIG-01", "SIG-07", "SIG-13")
def test_the_casebook_pdf_shows_each_signature_and_its_status(app, login, api_enroll, password) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    inv, mon = login("inv1"), login("mon1")
    assert inv.post(f"/api/patients/{p}/crf/1", json={"gcs": 14}).status_code == 200
    r = inv.post(
        f"/api/patients/{p}/signatures", json={"meaning": APPROVED, "password": password, "username": "inv1"}
    )
    assert r.status_code == 201, r.text
    pdf = mon.get(f"/patients/{p}/casebook.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert f"Casebook of patient {p}" in text and "Inv1 Tester (inv1)" in text
    assert APPROVED in text and r.json()["signed_at"] in text and "valid" in text
    assert "Daily CRF, day 1" in text and "invalidated" not in text
    assert inv.post(f"/api/patients/{p}/crf/1", json={"gcs": 9, "reason": "typo"}).status_code == 200
    text = pdf_text(mon.get(f"/patients/{p}/casebook.pdf").content)
    assert "invalidated: record changed after signing: Daily CRF, day 1 changed" in text
    page = mon.get(f"/patients/{p}").text
    assert "invalidated: record changed after signing" in page and "Daily CRF, day 1 changed" in page
    casebook = mon.get(f"/api/patients/{p}/casebook").json()
    assert casebook["signatures"][0]["valid"] is False and casebook["digest"] != r.json()["digest"]
    # the same records give the same bytes
    assert mon.get(f"/patients/{p}/casebook.pdf").content == mon.get(f"/patients/{p}/casebook.pdf").content


@pytest.mark.requirement("SIG-11")
def test_the_data_manager_signs_the_trial_lock_on_the_web(app, login, api_enroll, password) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    dm = login("dm")
    assert dm.post(f"/api/patients/{p}/lock").status_code == 200
    assert dm.post("/api/lock", json={}).status_code == 422  # no password: not locked
    assert dm.post("/api/lock", json={"password": "wrong password", "username": "dm"}).status_code == 422
    assert len(refused_entries(app)) == 1
    r = dm.post("/api/lock", json={"password": password, "username": "dm"})
    assert r.status_code == 200, r.text
    assert r.json()["signature"]["meaning"] == "database lock approved"
    (sig,) = login("mon1").get("/api/lock/signatures").json()
    assert sig["valid"] and sig["printed_name"] == "Dm Tester"
    assert "Dm Tester" in dm.get("/lock").text
