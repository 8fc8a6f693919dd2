"""Bad input gets a clear 4xx, never a 5xx, on both backends (issue 17).

Each case is a finding of the hostile-user session: out-of-range integers, NUL bytes, over-long text,
a dose logged twice, duplicate sites. The answer is a 4xx in the API's error format and nothing stored.
"""

from __future__ import annotations

import pytest

BIG_IDS = [2**31, 2**63, 10**30]


@pytest.fixture
def db_url(seeded_db_url: str) -> str:
    """Both backends: PostgreSQL's int4 and text rules differ from SQLite's."""
    return seeded_db_url


def _client_error(r, field: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert body["detail"]
    if field is not None:
        fields = [body.get("field")] + [e["field"] for e in body.get("errors", [])]
        assert any(f is not None and f.endswith(field) for f in fields), body


@pytest.mark.parametrize("big", BIG_IDS)
def test_huge_ids_in_paths_and_bodies(login, api_enroll, big: int) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv, dm, admin, pharm = login("inv1"), login("dm"), login("admin"), login("pharm1")
    _client_error(inv.post(f"/api/queries/{big}/answer", json={"answer": "x"}), "query_id")
    _client_error(dm.post(f"/api/queries/{big}/close"), "query_id")
    _client_error(admin.post(f"/api/approvals/{big}/approve"), "approval_id")
    _client_error(pharm.get(f"/api/patients/{pseudonym}/regimen/{big}"), "study_day")
    _client_error(inv.post(f"/api/patients/{pseudonym}/crf/{big}", json={}), "study_day")
    _client_error(
        dm.post(
            f"/api/patients/{pseudonym}/queries",
            json={"table_name": "daily_crf", "text": "check", "row_id": big},
        ),
        "row_id",
    )
    _client_error(
        pharm.post(
            f"/api/patients/{pseudonym}/doses",
            json={"study_day": big, "route": "sc", "hour": 0, "given": True},
        ),
        "study_day",
    )
    _client_error(inv.post(f"/api/patients/{pseudonym}/outcome", json={"death_day": big}), "death_day")


def test_ae_onset_day_is_bounded(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    ae = {
        "term": "Septic shock",
        "serious": True,
        "criteria": ["hospitalization"],
        "relatedness": "unrelated",
        "expected": True,
        "action": "DOSE NOT CHANGED",
        "outcome": "NOT RECOVERED/NOT RESOLVED",
    }
    _client_error(
        inv.post(f"/api/patients/{pseudonym}/adverse-events", json={**ae, "onset_day": 2**31}), "onset_day"
    )
    _client_error(
        inv.post(f"/api/patients/{pseudonym}/adverse-events", json={**ae, "onset_day": 100_000}), "onset_day"
    )
    assert inv.get(f"/api/patients/{pseudonym}/adverse-events").json() == []


def test_huge_numbers_in_the_crf(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    for field in ("platelets_1e3_ul", "pao2_fio2_mmhg", "gcs", "weight_kg"):
        r = inv.post(f"/api/patients/{pseudonym}/crf/2", json={field: 10**400})
        _client_error(r)
    for big in (2**31, 2**63, 10**400):
        _client_error(inv.get("/api/bedside/sofa", params={"gcs": str(big)}), "gcs")
    for raw in ('{"platelets_1e3_ul": 1e400}', '{"map_mmhg": NaN}', '{"urine_ml_day": -Infinity}'):
        r = inv.post(
            f"/api/patients/{pseudonym}/crf/2", content=raw, headers={"Content-Type": "application/json"}
        )
        _client_error(r)
    assert [d["study_day"] for d in inv.get(f"/api/patients/{pseudonym}/crf").json()] == []


@pytest.mark.parametrize("field", ["age_years", "sofa_now", "apache2", "cci"])
def test_huge_numbers_in_screening(login, web, field: str) -> None:  # type: ignore[no-untyped-def]
    inv = login("inv1")
    for big in (2**31, 2**63, 10**400):
        _client_error(inv.post("/api/screening", json=web.screening_body(**{field: big})), field)
    assert inv.get("/api/screening").json() == []


def test_a_dose_logged_twice_is_a_conflict(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    pharm = login("pharm1")
    dose = {"study_day": 1, "route": "sc", "hour": 0, "given": True}
    assert pharm.post(f"/api/patients/{pseudonym}/doses", json=dose).status_code == 200
    again = pharm.post(f"/api/patients/{pseudonym}/doses", json=dose)
    assert again.status_code == 409, again.text
    assert "already" in again.json()["detail"]
    assert len(login("inv1").get(f"/api/patients/{pseudonym}/doses").json()) == 1


def test_nul_bytes_and_over_long_text(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    pharm, inv, dm = login("pharm1"), login("inv1"), login("dm")
    missed = {"study_day": 1, "route": "sc", "hour": 0, "given": False}
    _client_error(
        pharm.post(f"/api/patients/{pseudonym}/doses", json={**missed, "missed_reason": "no\x00vial"}),
        "missed_reason",
    )
    _client_error(
        pharm.post(f"/api/patients/{pseudonym}/doses", json={**missed, "missed_reason": "x" * 201}),
        "missed_reason",
    )
    _client_error(
        dm.post(f"/api/patients/{pseudonym}/queries", json={"table_name": "daily_crf", "text": "a\x00b"}),
        "text",
    )
    _client_error(
        dm.post(
            f"/api/patients/{pseudonym}/queries",
            json={"table_name": "daily_crf", "text": "t", "field": "f" * 61},
        ),
        "field",
    )
    ae = {
        "onset_day": 2,
        "term": "Septic shock",
        "serious": True,
        "criteria": ["hospitalization"],
        "relatedness": "unrelated",
        "expected": True,
        "action": "DOSE NOT CHANGED",
        "outcome": "NOT RECOVERED/NOT RESOLVED",
    }
    _client_error(inv.post(f"/api/patients/{pseudonym}/adverse-events", json={**ae, "verbatim": "v\x00"}))
    _client_error(inv.post(f"/api/patients/{pseudonym}/adverse-events", json={**ae, "verbatim": "v" * 201}))
    _client_error(inv.get("/api/worklist", params={"site": "A\x00"}))
    assert (
        pharm.post(
            f"/api/patients/{pseudonym}/doses", json={**missed, "missed_reason": "x" * 200}
        ).status_code
        == 200
    )


def test_duplicate_sites_of_a_user(login) -> None:  # type: ignore[no-untyped-def]
    admin = login("admin")
    sites = admin.get("/api/sites").json()
    code = sites[0]["code"]
    r = admin.post(
        "/api/users",
        json={
            "username": "mon9",
            "password": "a long enough passphrase 9",
            "role": "monitor",
            "sites": [code, code],
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "site"


def test_the_pharmacy_form_submitted_twice(login, api_enroll, csrf_of) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    pharm = login("pharm1")
    token = csrf_of(pharm.get(f"/pharmacy?pseudonym={pseudonym}&study_day=1").text)
    form = {
        "csrf_token": token,
        "pseudonym": pseudonym,
        "study_day": "1",
        "hour": "0",
        "route": "sc",
        "given": "on",
    }
    first = pharm.http.post("/pharmacy/dose", data=form)
    again = pharm.http.post("/pharmacy/dose", data=form)
    assert first.status_code == again.status_code == 200  # redirected back to the pharmacy page
    assert "already logged" in again.text
    for day in ("2147483648", str(2**63), "1e400", "nan"):
        r = pharm.http.post("/pharmacy/dose", data={**form, "study_day": day})
        assert r.status_code < 500, (day, r.status_code)
    assert len(login("inv1").get(f"/api/patients/{pseudonym}/doses").json()) == 1
