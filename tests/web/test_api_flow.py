"""One patient through the JSON API: screening, lab, classification, consent, randomization, CRF, dosing."""

from __future__ import annotations


def test_patient_flow_through_the_api(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv, pharm = login("inv1"), login("pharm1")
    r = inv.post(
        f"/api/patients/{pseudonym}/crf/1",
        json={"gcs": 9, "platelets_1e3_ul": 90, "creatinine": 3.0, "weight_kg": 80, "pao2_fio2_mmhg": 250},
    )
    assert r.status_code == 200, r.text
    assert r.json()["sofa_total"] == 3 + 2 + 2 + 2  # CNS 3, coagulation 2, renal 2, respiration 2
    regimen = pharm.get(f"/api/patients/{pseudonym}/regimen/1").json()
    assert [d["route"] for d in regimen["doses"]] == ["iv", "sc"]
    # Cockcroft-Gault (140-64)*80/(72*3.0) = 28.1 mL/min < 30: the IV dose is halved
    # (docs/requirements.md "Patient pathway", renal rule).
    assert regimen["crcl_ml_min"] < 30 and regimen["doses"][0]["renal_adjusted"] is True
    assert (regimen["crcl_study_day"], regimen["held_routes"]) == (1, [])
    assert (
        regimen["clearance"]
        == "28.1 mL/min (below 30 mL/min: IV dose and volume x 0.5), from the CRF of day 1"
    )
    r = pharm.post(
        f"/api/patients/{pseudonym}/doses", json={"study_day": 1, "route": "iv", "hour": 0, "given": True}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["crcl_study_day"], r.json()["renal_adjusted"]) == (1, True)
    # No CRF on day 2: day 1's clearance stands (the dose stays halved), and the answer says so.
    day2 = pharm.get(f"/api/patients/{pseudonym}/regimen/2").json()
    assert (day2["crcl_ml_min"], day2["crcl_study_day"]) == (regimen["crcl_ml_min"], 1)
    assert day2["doses"] == regimen["doses"] and day2["clearance"].endswith(
        "carried forward (no newer clearance)"
    )
    r = pharm.post(
        f"/api/patients/{pseudonym}/doses", json={"study_day": 2, "route": "iv", "hour": 8, "given": True}
    )
    assert (r.json()["crcl_study_day"], r.json()["renal_adjusted"]) == (1, True)
    assert inv.get(f"/api/patients/{pseudonym}/doses").json() == [
        {"study_day": 1, "hour": 0, "route": "iv", "given": True, "missed_reason": ""},
        {"study_day": 2, "hour": 8, "route": "iv", "given": True, "missed_reason": ""},
    ]


def test_with_no_clearance_the_api_holds_the_iv_dose(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    pharm = login("pharm1")
    regimen = pharm.get(f"/api/patients/{pseudonym}/regimen/1").json()
    assert (regimen["crcl_ml_min"], regimen["crcl_study_day"], regimen["held_routes"]) == (None, None, ["iv"])
    assert regimen["clearance"].startswith("no creatinine clearance known on or before day 1")
    iv = {"study_day": 1, "route": "iv", "hour": 0, "given": True}
    refused = pharm.post(f"/api/patients/{pseudonym}/doses", json=iv)
    assert refused.status_code == 422 and refused.json()["field"] == "route"
    assert "cannot be logged as given before a clearance is known" in refused.json()["detail"]
    missed = pharm.post(
        f"/api/patients/{pseudonym}/doses", json={**iv, "given": False, "missed_reason": "no creatinine yet"}
    )
    assert missed.status_code == 200 and missed.json()["crcl_study_day"] is None
    sc = pharm.post(f"/api/patients/{pseudonym}/doses", json={**iv, "route": "sc"})
    assert sc.status_code == 200 and sc.json()["given"] is True


def test_rejected_crf_changes_nothing(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    assert inv.post(f"/api/patients/{pseudonym}/crf/2", json={"gcs": 12}).status_code == 200
    bad = inv.post(f"/api/patients/{pseudonym}/crf/2", json={"gcs": 25, "reason": "typo"})
    assert bad.status_code == 422 and bad.json()["field"]
    no_reason = inv.post(f"/api/patients/{pseudonym}/crf/2", json={"gcs": 8})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    days = inv.get(f"/api/patients/{pseudonym}/crf").json()
    assert [(d["study_day"], d["inputs"]["gcs"]) for d in days] == [(2, 12)]


def test_investigator_of_another_site_cannot_read_or_write(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    other, pharm2 = login("inv2"), login("pharm2")
    for r in (
        other.get(f"/api/patients/{pseudonym}/crf"),
        other.post(f"/api/patients/{pseudonym}/crf/2", json={"gcs": 12}),
        pharm2.get(f"/api/patients/{pseudonym}/regimen/1"),
        other.get("/api/patients/S01-9999/crf"),
    ):
        assert r.status_code == 403
    assert "S01" not in str(other.get("/api/screening").json())
    # Same answer for another site's patient and for a patient that does not exist.
    a = other.get(f"/api/patients/{pseudonym}/crf").json()["detail"].replace(pseudonym, "X")
    b = other.get("/api/patients/S01-9999/crf").json()["detail"].replace("S01-9999", "X")
    assert a == b


def test_meddra_search_and_adverse_event(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    terms = inv.get("/api/meddra?q=pneu").json()
    assert terms and all("pneu" in t["pt_name"].lower() or t["pt_code"] for t in terms)
    r = inv.post(
        f"/api/patients/{pseudonym}/adverse-events",
        json={
            "onset_day": 3,
            "term": terms[0]["pt_name"],
            "serious": True,
            "criteria": ["hospitalization"],
            "relatedness": "unrelated",
            "expected": False,
            "action": "DOSE NOT CHANGED",
            "outcome": "NOT RECOVERED/NOT RESOLVED",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["susar"] is False
    bad = inv.post(
        f"/api/patients/{pseudonym}/adverse-events",
        json={
            "onset_day": 3,
            "term": "no such term",
            "serious": True,
            "criteria": ["hospitalization"],
            "relatedness": "unrelated",
            "expected": False,
            "action": "DOSE NOT CHANGED",
            "outcome": "NOT RECOVERED/NOT RESOLVED",
        },
    )
    assert bad.status_code == 422 and bad.json()["field"] == "term"
    assert len(inv.get(f"/api/patients/{pseudonym}/adverse-events").json()) == 1


def test_queries_lock_and_audit(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv, mon, dm = login("inv1"), login("mon1"), login("dm")
    inv.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12})
    q = mon.post(
        f"/api/patients/{pseudonym}/queries",
        json={"table_name": "daily_crf", "field": "gcs", "text": "GCS 12?"},
    )
    assert q.status_code == 201, q.text
    qid = q.json()["id"]
    assert dm.post(f"/api/patients/{pseudonym}/lock").status_code == 422  # an open query blocks the lock
    assert inv.post(f"/api/queries/{qid}/answer", json={"answer": "confirmed"}).json()["status"] == "answered"
    assert mon.post(f"/api/queries/{qid}/close").json()["status"] == "closed"
    assert dm.post(f"/api/patients/{pseudonym}/lock").status_code == 200
    assert inv.post(f"/api/patients/{pseudonym}/crf/2", json={"gcs": 12}).status_code == 422
    trail = mon.get(f"/api/patients/{pseudonym}/audit").json()
    assert any(e["table_name"] == "daily_crf" for e in trail)
    assert not any(e["table_name"] in {"dose_log", "randomization_slots", "unblindings"} for e in trail)


def test_dsmb_sees_counts_by_arm_and_admin_manages_users(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    api_enroll()
    arms = login("dsmb").get("/api/dsmb").json()
    assert sorted(a["arm"] for a in arms) == ["placebo", "precision"]
    assert sum(a["randomized"] for a in arms) == 1
    guesses = login("dsmb").get("/api/dsmb/predictability").json()
    assert guesses["pooled"]["allocations"] == 1 and guesses["pooled"]["share"] == 0.5  # the first is a tie
    assert login("inv1").get("/api/dsmb/predictability").status_code == 403
    page = login("dsmb").get("/dsmb").text
    assert 'data-testid="dsmb-predictability"' in page and "All sites" in page
    assert "dsmb-looks" not in page  # a fixed design has no interim looks to list
    admin = login("admin")
    r = admin.post(
        "/api/users",
        json={"username": "inv3", "password": "long enough pw", "role": "investigator", "sites": ["S03"]},
    )
    assert r.status_code == 201, r.text
    assert (
        admin.post("/api/users", json={"username": "x", "password": "short", "role": "lab"}).json()["field"]
        == "password"
    )
    assert (
        login("inv1")
        .post("/api/users", json={"username": "y", "password": "long enough pw", "role": "lab"})
        .status_code
        == 403
    )


def test_withdrawal_with_erasure_through_the_api_leaves_the_database_file(login, api_enroll, app) -> None:  # type: ignore[no-untyped-def]
    """The web path erases like the CLI's withdraw_and_erase: values leave the SQLite file, not only tables."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    keep, gone = api_enroll(), api_enroll()
    inv = login("inv1")
    assert inv.post(f"/api/patients/{gone}/crf/1", json={"weight_kg": 71.2345, "gcs": 12}).status_code == 200
    assert inv.post(f"/api/patients/{keep}/crf/1", json={"weight_kg": 66.5432, "gcs": 12}).status_code == 200
    r = inv.post(f"/api/patients/{gone}/withdraw", json={"erase_data": True})
    assert r.status_code == 200 and r.json()["data_erased"] is True
    path = Path(str(make_url(str(app.state.engine.url)).database))
    raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert b"71.2345" not in raw and b"66.5432" in raw
    assert inv.get(f"/api/patients/{keep}/crf").status_code == 200


def test_screening_api_takes_the_baseline_scores_the_analysis_needs(login, app, web) -> None:  # type: ignore[no-untyped-def]
    """APACHE II and CCI given at screening reach ADSL's covariates (adjusted model, Youden subgroups)."""
    from immunosep.analysis.extract import read_trial

    inv, lab = login("inv1"), login("lab")
    body = {**web.screening_body(), "apache2": 19, "cci": 4}
    assert inv.post("/api/screening", json={**body, "apache2": 90}).status_code == 422
    r = inv.post("/api/screening", json=body)
    assert r.status_code == 200, r.text
    p = r.json()["pseudonym"]
    draw = {"study_day": 1, "ferritin_ng_ml": 6000.0, "hla_dr_per_monocyte": None}
    assert lab.post(f"/api/patients/{p}/draws", json=draw).status_code == 200
    assert inv.post(f"/api/patients/{p}/classify").status_code == 200
    assert inv.post(f"/api/patients/{p}/consent", json={"given_by": "patient"}).status_code == 204
    assert inv.post(f"/api/patients/{p}/randomize").status_code == 200
    raw, _ = read_trial(app.state.engine)
    row = raw.patients.set_index("usubjid").loc[p]
    assert (row["apache2"], row["cci"]) == (19, 4)


def test_worklist_and_the_pharmacists_list_as_json(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv, mon, pharm = login("inv1"), login("mon1"), login("pharm1")
    work = inv.get("/api/worklist").json()
    [line] = work["patients"]
    assert (line["pseudonym"], line["status"], line["study_day"]) == (pseudonym, "randomized", None)
    assert line["due_today"] == ["CRF day 1 (baseline SOFA before the first dose)"]
    assert work["tasks"] == [f"{pseudonym}: CRF day 1 (baseline SOFA before the first dose)"]
    assert mon.get("/api/worklist").json() == work  # the monitor of the site sees the same list
    assert "arm" not in str(work).lower() and "placebo" not in str(work).lower()
    assert pharm.get("/api/worklist").status_code == 403
    assert inv.post(f"/api/patients/{pseudonym}/crf/1", json={"creatinine": 1.0}).status_code == 200
    dose = {"study_day": 1, "route": "iv", "hour": 0, "given": True}
    assert pharm.post(f"/api/patients/{pseudonym}/doses", json=dose).status_code == 200
    assert pharm.get("/api/pharmacy/on-treatment").json() == [
        {
            "pseudonym": pseudonym,
            "study_day": 1,
            "first_dose_logged": True,
            "due": 4,
            "logged": 1,
            "renal_hold": False,
        }
    ]
    assert login("pharm2").get("/api/pharmacy/on-treatment").json() == []
    assert inv.get("/api/pharmacy/on-treatment").status_code == 403
