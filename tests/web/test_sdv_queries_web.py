"""Source data verification and the query workflow through the API and the pages: a monitor verifies, a
change at the site invalidates it (and the audit trail shows both), automatic queries appear with their
check, the data manager runs the checks and re-opens, the dashboard shows SDV progress and query aging."""

from __future__ import annotations

import pytest


def _crf_row_id(c, pseudonym: str, day: int) -> int:  # type: ignore[no-untyped-def]
    plan = c.get(f"/api/patients/{pseudonym}/sdv").json()
    return next(i["row_id"] for i in plan["items"] if i["record"] == f"daily_crf/{day}")


@pytest.mark.requirement("SDV-01", "SDV-03", "SDV-04")
def test_a_monitor_verifies_through_the_api_and_a_correction_invalidates_it_in_the_trail(
    login, api_enroll
) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    inv, mon, dm = login("inv1"), login("mon1"), login("dm")
    assert inv.post(f"/api/patients/{p}/crf/1", json={"gcs": 12, "creatinine": 1.0}).status_code == 200
    row_id = _crf_row_id(mon, p, 1)
    r = mon.post(f"/api/patients/{p}/sdv", json={"table_name": "daily_crf", "row_id": row_id, "field": "gcs"})
    assert r.status_code == 200, r.text
    plan = mon.get(f"/api/patients/{p}/sdv").json()
    gcs = next(i for i in plan["items"] if i["record"] == "daily_crf/1" and i["field"] == "gcs")
    assert gcs["verified"] and gcs["critical"]
    # only the monitor verifies; an investigator may not even read the plan
    body = {"table_name": "daily_crf", "row_id": row_id}
    assert dm.post(f"/api/patients/{p}/sdv", json=body).status_code == 403
    assert inv.get(f"/api/patients/{p}/sdv").status_code == 403
    progress = dm.get("/api/sdv").json()
    assert [x["verified"] for x in progress["sites"] if x["name"] == "S01"] == [1]
    assert (
        inv.post(
            f"/api/patients/{p}/crf/1", json={"gcs": 9, "creatinine": 1.0, "reason": "misread"}
        ).status_code
        == 200
    )
    plan = mon.get(f"/api/patients/{p}/sdv").json()
    gcs = next(i for i in plan["items"] if i["record"] == "daily_crf/1" and i["field"] == "gcs")
    assert not gcs["verified"] and gcs["changed"]
    trail = mon.get(f"/api/patients/{p}/audit").json()
    marks = [e for e in trail if e["table_name"] == "sdv_marks"]
    assert marks[0]["action"] == "insert"
    assert any(e["field"] == "invalidated_at" and "returns to unverified" in e["reason"] for e in marks)


@pytest.mark.requirement("QRY-01", "QRY-03", "QRY-07", "QRY-09")
def test_automatic_queries_the_sweep_reopening_and_aging_through_the_api(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    inv, mon, dm = login("inv1"), login("mon1"), login("dm")
    assert inv.post(f"/api/patients/{p}/crf/1", json={"platelets_1e3_ul": 1.0}).status_code == 200
    (q,) = dm.get("/api/queries", params={"type": "automatic"}).json()
    assert (q["check_id"], q["status"], q["study_day"]) == ("RNG-02", "open", 1)
    assert {c["id"] for c in dm.get("/api/edit-checks").json()} >= {"RNG-02", "XF-04", "MV-01"}
    assert mon.post("/api/edit-checks/run").status_code == 403
    r = dm.post("/api/edit-checks/run")
    assert r.status_code == 200 and r.json()["opened"] == 0 and r.json()["kept"] == 1
    assert (
        inv.post(f"/api/queries/{q['id']}/answer", json={"answer": "confirmed, transfusion"}).status_code
        == 200
    )
    assert inv.post(f"/api/queries/{q['id']}/close", json={}).status_code == 403
    r = mon.post(f"/api/queries/{q['id']}/reopen", json={"reason": "no transfusion in the chart"})
    assert r.status_code == 200 and r.json()["status"] == "reopened"
    assert (
        mon.post(f"/api/queries/{q['id']}/reopen", json={"reason": "no transfusion in the chart"}).status_code
        == 422
    )
    ages = dm.get("/api/queries/aging").json()
    assert ages == [
        {
            "site": "S01",
            "buckets": {"0-7": 1, "8-14": 0, "15-30": 0, ">30": 0},
            "total": 1,
            "oldest_days": 0,
            "automatic": 1,
        }
    ]
    r = mon.post(f"/api/queries/{q['id']}/close", json={"reason": "value confirmed"})
    assert r.status_code == 200 and r.json()["close_reason"] == "value confirmed"
    assert dm.get("/api/queries/aging").json() == []


@pytest.mark.requirement("SDV-01", "SDV-04", "QRY-09")
def test_the_pages_verify_show_progress_and_aging_and_run_the_checks(login, api_enroll, csrf_of) -> None:  # type: ignore[no-untyped-def]
    p = api_enroll()
    inv, mon, dm = login("inv1"), login("mon1"), login("dm")
    assert inv.post(f"/api/patients/{p}/crf/1", json={"gcs": 12, "platelets_1e3_ul": 1.0}).status_code == 200
    page = mon.get(f"/patients/{p}/sdv")
    assert page.status_code == 200 and "to verify" in page.text and "Verify the whole record" in page.text
    r = mon.http.post(
        f"/patients/{p}/sdv",
        data={"csrf_token": csrf_of(page.text), "record": "daily_crf/1"},
        follow_redirects=True,
    )
    assert r.status_code == 200 and "daily crf/1 verified" in r.text
    day1 = r.text.split("daily crf · day 1</h2>")[1].split("</section>")[0]
    planned = [i for i in mon.get(f"/api/patients/{p}/sdv").json()["items"] if i["record"] == "daily_crf/1"]
    assert len(planned) >= 12 and all(i["verified"] for i in planned)  # at least the 12 SOFA inputs
    assert "to verify" not in day1 and day1.count(">verified<") == len(planned)
    dash = mon.get("/dashboard")
    assert 'data-testid="site-oversight"' in dash.text and ">S01<" in dash.text
    assert 'data-testid="oversight"' not in inv.get("/dashboard").text
    assert "Verify" not in dm.get(f"/patients/{p}/sdv").text  # the data manager reads, does not verify
    overview = dm.get("/sdv")
    assert overview.status_code == 200 and p in overview.text
    queries_page = dm.get("/queries")
    assert 'data-testid="query-aging"' in queries_page.text and "RNG-02" in queries_page.text
    r = dm.http.post(
        "/queries/run-checks", data={"csrf_token": csrf_of(queries_page.text)}, follow_redirects=True
    )
    assert "Edit checks run on 1 patients: 0 queries opened" in r.text
    assert 'action="/queries/run-checks"' not in mon.get("/queries").text
