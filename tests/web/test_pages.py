"""The pages render for their roles, forms validate on the server with messages next to the field, and a
rejected form changes nothing stored."""

from __future__ import annotations

import re

import pytest

PAGES = {
    "inv1": ["/dashboard", "/screening", "/ae", "/queries", "/bedside"],
    "pharm1": ["/pharmacy", "/pharmacy/log", "/bedside"],
    "lab": ["/lab", "/bedside"],
    "mon1": ["/dashboard", "/queries", "/missing", "/sdv", "/unblindings", "/bedside"],
    "dm": ["/dashboard", "/queries", "/missing", "/sdv", "/unblindings", "/lock", "/bedside"],
    "dsmb": ["/dsmb", "/bedside"],
    "admin": ["/admin/users", "/admin/sites", "/bedside"],
}


@pytest.mark.parametrize("username", list(PAGES))
def test_each_role_lands_on_its_pages(login, username: str) -> None:  # type: ignore[no-untyped-def]
    c = login(username)
    start = c.http.get("/", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"] == PAGES[username][0]
    for url in PAGES[username]:
        r = c.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert "<nav" in r.text and username in r.text


def test_pages_of_other_roles_are_refused(login) -> None:  # type: ignore[no-untyped-def]
    assert login("inv1").get("/pharmacy").status_code == 403
    assert login("pharm1").get("/dashboard").status_code == 403
    assert login("lab").get("/screening").status_code == 403
    assert login("inv1").get("/dsmb").status_code == 403
    assert login("dsmb").get("/admin/users").status_code == 403


def test_screening_form_shows_messages_next_to_fields_and_stores_nothing(login, api_enroll, csrf_of) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    page = c.get("/screening")
    form = {"csrf_token": csrf_of(page.text), "age_years": "sixty", "sex": "", "sofa_now": "7"}
    r = c.http.post("/screening", data=form)
    assert r.status_code == 422
    assert 'id="e-age_years"' in r.text and "not a number" in r.text
    assert 'id="e-sex"' in r.text and 'id="e-neutrophils_per_mm3"' in r.text
    assert c.get("/api/screening").json() == []


def test_screening_form_records_apache2_and_cci_for_the_analysis(login, csrf_of, app) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from immunosep.store.db import session_scope
    from immunosep.store.models import EligibilityAnswer

    c = login("inv1")
    onset = (datetime.now(UTC) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    form = {
        "csrf_token": csrf_of(c.get("/screening").text),
        "age_years": "70",
        "sex": "female",
        "infection_type": "cap",
        "sepsis_onset_at": onset,
        "sofa_now": "6",
        "neutrophils_per_mm3": "8000",
        "suspected_infection": "on",
        "apache2": "23",
        "cci": "40",
    }
    r = c.http.post("/screening", data=form)
    assert r.status_code == 422 and 'id="e-cci"' in r.text and "between 0 and 37" in r.text
    assert c.get("/api/screening").json() == []
    r = c.http.post("/screening", data={**form, "cci": "5"}, follow_redirects=False)
    assert r.status_code == 303
    assert len(c.get("/api/screening").json()) == 1
    with session_scope(app.state.engine) as s:
        answers = dict(s.query(EligibilityAnswer.question, EligibilityAnswer.answer).all())
    assert (answers["apache2"], answers["cci"]) == ("23", "5")


def test_live_eligibility_fragment(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    from datetime import UTC, datetime, timedelta

    onset = (datetime.now(UTC) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M")
    base = f"age_years=70&sex=female&infection_type=cap&sepsis_onset_at={onset}&sofa_now=6&neutrophils_per_mm3=8000&suspected_infection=on"
    assert "Eligible" in c.get(f"/fragments/eligibility?{base}").text
    r = c.get(f"/fragments/eligibility?{base}&exclusions=meningitis".replace("age_years=70", "age_years=17"))
    assert "Not eligible" in r.text and "age below 18" in r.text and "Meningitis" in r.text


def test_crf_page_rejects_bad_values_and_keeps_the_stored_day(login, api_enroll, csrf_of) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    c = login("inv1")
    page = c.get(f"/patients/{pseudonym}/crf/1")
    token = csrf_of(page.text)
    ok = c.http.post(
        f"/patients/{pseudonym}/crf/1",
        data={"csrf_token": token, "gcs": "13", "platelets_1e3_ul": "120"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    bad = c.http.post(
        f"/patients/{pseudonym}/crf/1",
        data={"csrf_token": token, "existing": "on", "gcs": "40", "reason": "fix"},
    )
    assert bad.status_code == 422 and 'id="e-gcs"' in bad.text
    no_reason = c.http.post(
        f"/patients/{pseudonym}/crf/1", data={"csrf_token": token, "existing": "on", "gcs": "9"}
    )
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    days = c.get(f"/api/patients/{pseudonym}/crf").json()
    assert [(d["study_day"], d["inputs"]["gcs"], d["sofa_total"]) for d in days] == [(1, 13, 2)]


def test_pharmacist_page_shows_preparations_and_logs_a_dose(login, api_enroll, csrf_of) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll(ferritin=8000.0)
    pharm = login("pharm1")
    crf = {"creatinine": 2.819}  # Cockcroft-Gault (140-64)*80/(72*2.819) = 29.955 mL/min
    assert login("inv1").post(f"/api/patients/{pseudonym}/crf/1", json=crf).status_code == 200
    page = pharm.get(f"/pharmacy?pseudonym={pseudonym}&study_day=1")
    assert 'data-testid="preparations"' in page.text
    line = re.search(r'<b data-testid="crcl">(.*?)</b>', page.text)
    assert line is not None  # enough digits: 29.955 is not printed as "30.0" under "below 30"
    assert line.group(1) == (
        "29.96 mL/min (below 30 mL/min: IV dose and volume x 0.5), from the CRF of day 1"
    )
    day2 = pharm.get(f"/pharmacy?pseudonym={pseudonym}&study_day=2").text
    assert "from the CRF of day 1, carried forward (no newer clearance)" in day2
    assert day2.count('<span class="pill warn">adjusted</span>') == 1  # the IV row, carried to day 2
    assert ("anakinra" in page.text) or ("saline" in page.text)
    r = pharm.http.post(
        "/pharmacy/dose",
        data={
            "csrf_token": csrf_of(page.text),
            "pseudonym": pseudonym,
            "study_day": "1",
            "hour": "8",
            "route": "iv",
            "given": "on",
        },
        follow_redirects=True,
    )
    assert "given" in r.text
    assert login("inv1").get(f"/api/patients/{pseudonym}/doses").json()[0]["hour"] == 8


def test_with_no_clearance_the_pharmacy_page_warns_and_holds_the_iv_injection_in_every_arm(
    login, api_enroll, csrf_of, app, web
) -> None:  # type: ignore[no-untyped-def]
    """No creatinine on any CRF: the page says so, offers no "Given" for the IV injections (only
    "Missed"), and a forged "given" is refused with the same words for either arm."""
    pharm, inv = login("pharm1"), login("inv1")
    by_arm: dict[str, str] = {}
    while len(by_arm) < 2:
        p = api_enroll()
        by_arm.setdefault(web.arm_of(app.state.engine, p), p)
    flashes = {}
    for arm, p in by_arm.items():
        page = pharm.get(f"/pharmacy?pseudonym={p}&study_day=1").text
        assert 'data-testid="clearance"' in page and "Renal dose on hold." in page
        assert "No creatinine clearance known on or before day 1" in page
        assert 'data-testid="give-iv-' not in page and 'data-testid="held-iv-0"' in page
        assert 'data-testid="give-sc-0"' in page  # SC is not renally adjusted
        form = {"csrf_token": csrf_of(page), "pseudonym": p, "study_day": "1", "route": "iv"}
        r = pharm.http.post(
            "/pharmacy/dose", data={**form, "hour": "0", "given": "on"}, follow_redirects=True
        )
        flash = re.search(r'<div class="flash bad"[^>]*>(.*?)</div>', r.text, re.S)
        assert flash is not None and "cannot be logged as given" in flash.group(1)
        flashes[arm] = flash.group(1).replace(p, "P")
        assert pharm.get(f"/api/patients/{p}/doses").json() == []
        missed = {**form, "hour": "0", "given": "off", "missed_reason": "waiting for creatinine"}
        assert "IV: missed." in pharm.http.post("/pharmacy/dose", data=missed, follow_redirects=True).text
        assert inv.post(f"/api/patients/{p}/crf/1", json={"creatinine": 1.0}).status_code == 200
        page = pharm.get(f"/pharmacy?pseudonym={p}&study_day=1").text
        assert "Renal dose on hold." not in page and 'data-testid="give-iv-8"' in page
    assert flashes["precision"] == flashes["placebo"]


def test_meddra_fragment_offers_terms(login) -> None:  # type: ignore[no-untyped-def]
    r = login("inv1").get("/fragments/meddra?term=sep")
    assert 'class="term"' in r.text


def test_dashboard_and_missing_data_list_overdue_days_and_outcomes_until_a_death_ends_them(
    login, api_enroll, app
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sqlalchemy import update

    from immunosep.store.db import session_scope
    from immunosep.store.models import Patient, utcnow

    pseudonym = api_enroll()
    inv, mon = login("inv1"), login("mon1")
    assert inv.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12}).status_code == 200
    with session_scope(app.state.engine) as s:  # the first dose 29 days ago: today is study day 30
        s.execute(
            update(Patient)
            .where(Patient.pseudonym == pseudonym)
            .values(first_dose_at=utcnow() - timedelta(days=29))
        )
    page = inv.get("/dashboard").text
    assert f"{pseudonym}</a>: CRF day {', '.join(str(d) for d in range(2, 16))}<" in page
    assert f"{pseudonym}</a>: infection state on day 15, vital status on day 28<" in page
    assert "CRF day 2 (overdue)" in page  # the next step
    missing = mon.get("/missing").text
    assert f"{pseudonym}</a>: draw day 2, 4, 7, 15, 21, 28<" in missing
    assert "infection state on day 15, vital status on day 28" in missing
    r = inv.post(f"/api/patients/{pseudonym}/outcome", json={"death_day": 3, "infection_day15": "failure"})
    assert r.status_code == 200, r.text
    page = inv.get("/dashboard").text
    assert f"{pseudonym}</a>: CRF day 2<" in page and f"{pseudonym}</a>: draw day 2<" in page
    assert "vital status" not in page and "infection state" not in page


def test_outcome_form_validates_next_to_the_field_and_a_change_needs_a_reason(
    login, api_enroll, csrf_of
) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    url = f"/patients/{pseudonym}/outcome"
    page = inv.get(url)
    assert page.status_code == 200 and 'id="f-death_day"' in page.text and "resolution" in page.text
    assert 'name="reason"' not in page.text  # nothing stored yet: nothing to correct
    token = csrf_of(page.text)
    blank = {"death_day": "", "last_known_alive_day": "", "icu_discharge_day": "", "infection_day15": ""}

    def post(**fields: str):  # type: ignore[no-untyped-def]
        return inv.http.post(url, data={"csrf_token": token, **blank, **fields}, follow_redirects=False)

    def stored():  # type: ignore[no-untyped-def]
        return inv.get(f"/api/patients/{pseudonym}/outcome").json()

    nothing = stored()
    for fields, field, message in [
        ({"death_day": "four"}, "death_day", "not a number"),
        ({"death_day": "120"}, "death_day", "study day 1-90"),
        ({"icu_discharge_day": "2.5"}, "icu_discharge_day", "whole number"),
        ({"infection_day15": "cured"}, "infection_day15", "one of"),
        ({"death_day": "5", "last_known_alive_day": "6"}, "last_known_alive_day", "before the day of death"),
    ]:
        r = post(**fields)
        assert r.status_code == 422, fields
        assert f'id="e-{field}"' in r.text and message in r.text, (fields, r.text[-2000:])
        assert stored() == nothing, fields
    assert post(icu_discharge_day="6", infection_day15="resolution").status_code == 303
    assert stored()["icu_discharge_day"] == 6
    page = inv.get(f"/patients/{pseudonym}").text
    assert "Day of ICU discharge</dt><dd>6</dd>" in page and "Enter outcome" in page
    form = inv.get(url).text
    assert 'value="6"' in form and 'name="reason"' in form
    r = post(icu_discharge_day="7", infection_day15="resolution", stored="on")
    assert r.status_code == 422 and 'id="e-icu_discharge_day"' in r.text and "needs a reason" in r.text
    assert stored()["icu_discharge_day"] == 6
    r = post(
        icu_discharge_day="7", infection_day15="resolution", stored="on", reason="source document says day 7"
    )
    assert r.status_code == 303
    assert stored() == {**nothing, "icu_discharge_day": 7, "infection_day15": "resolution"}
    for other in ("pharm1", "lab", "mon1"):
        assert login(other).get(url).status_code == 403
    inv2 = login("inv2")  # another site's patient is answered as one that does not exist
    theirs, missing = inv2.get(url), inv2.get("/patients/S01-9999/outcome")
    assert theirs.status_code == missing.status_code == 403
    assert theirs.text.replace(pseudonym, "<P>") == missing.text.replace("S01-9999", "<P>")


def test_the_patient_page_offers_the_next_crf_day_up_to_the_last_treatment_day(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    for day in range(1, 15):
        assert inv.post(f"/api/patients/{pseudonym}/crf/{day}", json={"gcs": 14}).status_code == 200
    assert 'data-testid="next-crf">Enter day 15<' in inv.get(f"/patients/{pseudonym}").text
    assert inv.post(f"/api/patients/{pseudonym}/crf/15", json={"gcs": 15}).status_code == 200
    page = inv.get(f"/patients/{pseudonym}").text
    assert "next-crf" not in page and "Report an adverse event" in page


def test_emergency_unblinding_page_asks_reason_and_confirmation_then_shows_the_arm_once(
    login, api_enroll, app, csrf_of, web
) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    arm = web.arm_of(app.state.engine, pseudonym)
    label = {"precision": "Precision immunotherapy", "placebo": "Placebo"}[arm]
    inv, mon = login("inv1"), login("mon1")
    url = f"/patients/{pseudonym}/unblind"
    assert "Emergency unblinding" in inv.get(f"/patients/{pseudonym}").text
    form = inv.get(url)
    assert form.status_code == 200 and 'name="reason"' in form.text and label not in form.text
    token = csrf_of(form.text)
    for data, field, message in [
        ({"reason": "anaphylaxis, need to know"}, "confirm", "tick to confirm"),
        ({"reason": "rash", "confirm": "on"}, "reason", "at least 10 characters"),
    ]:
        r = inv.http.post(url, data={"csrf_token": token, **data})
        assert r.status_code == 422 and f'id="e-{field}"' in r.text and message in r.text, data
        assert label not in r.text and arm not in r.text.lower()
    assert mon.get("/api/unblindings").json() == []  # nothing recorded by a refused form
    r = inv.http.post(url, data={"csrf_token": token, "reason": "anaphylaxis, need to know", "confirm": "on"})
    assert r.status_code == 200
    assert f'data-testid="disclosed-arm">{label}<' in r.text
    assert "flash" not in inv.http.cookies.get("immunosep_session", "")  # the arm is not kept in the cookie
    assert label not in inv.get(f"/patients/{pseudonym}").text  # shown once, on that response only
    report = mon.get("/unblindings")
    assert (
        report.status_code == 200 and pseudonym in report.text and "anaphylaxis, need to know" in report.text
    )
    assert label not in report.text and "anakinra" not in report.text.lower()
    for other in ("mon1", "pharm1", "lab", "dsmb"):
        assert login(other).get(url).status_code == 403
    inv2 = login("inv2")  # another site's investigator: refused as for a patient that does not exist
    r = inv2.post(url, data={"reason": "anaphylaxis, need to know", "confirm": "on"})
    assert r.status_code == 422 and "among the patients you may access" in r.text and label not in r.text
    assert len(mon.get("/api/unblindings").json()) == 1


def test_withdrawal_page_keeps_or_removes_the_data_only_when_confirmed(
    login, api_enroll, app, csrf_of
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from immunosep.store.db import session_scope
    from immunosep.store.models import DailyCrf, Patient, Withdrawal

    kept, erased = api_enroll(), api_enroll()
    inv = login("inv1")
    for pseudonym in (kept, erased):
        assert inv.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 12}).status_code == 200
    assert "Withdrawal of consent" in inv.get(f"/patients/{kept}").text
    token = csrf_of(inv.get(f"/patients/{kept}/withdraw").text)

    def post(pseudonym: str, **data: str):  # type: ignore[no-untyped-def]
        return inv.http.post(
            f"/patients/{pseudonym}/withdraw", data={"csrf_token": token, **data}, follow_redirects=False
        )

    def state() -> tuple[dict[str, str], int, int]:
        with session_scope(app.state.engine) as s:
            statuses = dict(s.execute(select(Patient.pseudonym, Patient.status)).all())
            return statuses, len(s.execute(select(DailyCrf)).all()), len(s.execute(select(Withdrawal)).all())

    before = state()
    for pseudonym, data, fields in [
        (kept, {}, ("choice", "confirm")),
        (kept, {"choice": "keep"}, ("confirm",)),
        (erased, {"choice": "erase", "confirm": "on"}, ("typed",)),
        (erased, {"choice": "erase", "confirm": "on", "typed": kept}, ("typed",)),
    ]:
        r = post(pseudonym, **data)
        assert r.status_code == 422, data
        assert all(f'id="e-{f}"' in r.text for f in fields), (data, fields)
        assert state() == before, data  # a refused form changes nothing
    assert mon_refused(login, kept)
    r = post(kept, choice="keep", confirm="on")
    assert r.status_code == 303 and r.headers["location"] == f"/patients/{kept}"
    statuses, crfs, withdrawals = state()
    assert statuses[kept] == "withdrawn" and crfs == 2 and withdrawals == 1
    r = post(erased, choice="erase", confirm="on", typed=erased.lower())
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    statuses, crfs, withdrawals = state()
    assert erased not in statuses and crfs == 1 and withdrawals == 2
    assert "its data were removed" in inv.get("/dashboard").text
    assert inv.get(f"/patients/{erased}").status_code == 403  # gone: as a patient that never existed


def mon_refused(login, pseudonym: str) -> bool:  # type: ignore[no-untyped-def]
    """Only the site's investigator records a withdrawal."""
    return all(
        login(u).get(f"/patients/{pseudonym}/withdraw").status_code == 403 for u in ("mon1", "pharm1", "dm")
    )


def test_the_pharmacy_page_lists_todays_patients_on_treatment_with_their_injections_logged(
    login, api_enroll
) -> None:  # type: ignore[no-untyped-def]
    pharm = login("pharm1")
    assert "No patient of your site is on study treatment today." in pharm.get("/pharmacy").text
    pseudonym = api_enroll()
    page = pharm.get("/pharmacy").text
    assert f'href="/pharmacy?pseudonym={pseudonym}&study_day=1">{pseudonym}</a>' in page
    assert "1 (first dose)" in page and "0 of 4" in page
    assert page.count('data-testid="renal-hold"') == 1  # no creatinine yet: the IV injection is held
    assert login("inv1").post(f"/api/patients/{pseudonym}/crf/1", json={"creatinine": 1.0}).status_code == 200
    dose = {"study_day": 1, "route": "iv", "hour": 0, "given": True}
    assert pharm.post(f"/api/patients/{pseudonym}/doses", json=dose).status_code == 200
    page = pharm.get("/pharmacy").text
    assert "1 of 4" in page and "(first dose)" not in page and 'data-testid="renal-hold"' not in page
    other = login("pharm2").get("/pharmacy").text  # another site's pharmacist
    assert "No patient of your site is on study treatment today." in other and f"{pseudonym}</a>" not in other


def test_the_dashboard_narrows_to_one_site_for_those_who_see_several(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    mine, theirs = api_enroll(), api_enroll(inv="inv2")
    dm, inv = login("dm"), login("inv1")
    page = dm.get("/dashboard").text
    assert 'data-testid="site-filter"' in page and '<option value="S02">S02</option>' in page
    assert f"{mine}</a>" in page and f"{theirs}</a>" in page
    page = dm.get("/dashboard?site=S02").text
    assert f"{theirs}</a>" in page and f"{mine}</a>" not in page and "Patients · S02" in page
    assert 'data-testid="site-filter"' not in inv.get("/dashboard").text  # one site: nothing to choose
    assert inv.get("/dashboard?site=S02").status_code == 403
    assert dm.get("/api/worklist?site=S01").json()["patients"][0]["pseudonym"] == mine


def test_ae_form_records_criteria_action_outcome_and_end_day_and_refuses_what_does_not_fit(
    login, api_enroll, csrf_of
) -> None:  # type: ignore[no-untyped-def]
    pseudonym = api_enroll()
    inv = login("inv1")
    url = f"/patients/{pseudonym}/ae"
    page = inv.get(url)
    assert page.status_code == 200 and 'data-testid="ae-criteria"' in page.text
    assert 'name="criterion_death"' in page.text and "RECOVERED/RESOLVED WITH SEQUELAE" in page.text
    token = csrf_of(page.text)
    base = {
        "csrf_token": token,
        "term": "Pneumothorax",
        "onset_day": "3",
        "relatedness": "unrelated",
        "serious": "on",
        "action": "DRUG INTERRUPTED",
        "outcome": "RECOVERED/RESOLVED",
        "end_day": "6",
    }

    def post(**fields: str):  # type: ignore[no-untyped-def]
        data = {k: v for k, v in {**base, **fields}.items() if v is not None}
        return inv.http.post(url, data=data, follow_redirects=False)

    def stored():  # type: ignore[no-untyped-def]
        return inv.get(f"/api/patients/{pseudonym}/adverse-events").json()

    for fields, field, message in [
        ({}, "criteria", "at least one seriousness criterion"),
        ({"serious": None, "criterion_hospitalization": "on"}, "serious", "marked not serious"),
        ({"criterion_hospitalization": "on", "action": ""}, "action", "choose one"),
        ({"criterion_hospitalization": "on", "outcome": "cured"}, "outcome", "choose one"),
        ({"criterion_hospitalization": "on", "end_day": "2"}, "end_day", "before the onset"),
        ({"criterion_hospitalization": "on", "end_day": ""}, "end_day", "needs its end day"),
        ({"criterion_death": "on", "outcome": "FATAL"}, "outcome", "death is not recorded"),
    ]:
        r = post(**fields)
        assert r.status_code == 422, fields
        assert f'id="e-{field}"' in r.text and message in r.text, (fields, r.text[-1500:])
        assert stored() == [], fields
    r = post(criterion_hospitalization="on", criterion_life_threatening="on")
    assert r.status_code == 303
    (ae,) = stored()
    assert (ae["criteria"], ae["action"], ae["outcome"], ae["end_day"], ae["serious"]) == (
        ["life_threatening", "hospitalization"],
        "DRUG INTERRUPTED",
        "RECOVERED/RESOLVED",
        6,
        True,
    )
    assert "recovered/resolved (day 6)" in inv.get(url).text


def test_admin_sets_a_sites_country_and_a_bad_code_changes_nothing(login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    admin = login("admin")
    page = admin.get("/admin/sites")
    assert page.status_code == 200 and 'value="GRC"' in page.text and 'name="country"' in page.text
    token = csrf_of(page.text)
    r = admin.http.post(
        "/admin/sites/S02", data={"csrf_token": token, "country": "nld"}, follow_redirects=True
    )
    assert r.status_code == 200 and "Site S02 is in NLD" in r.text
    r = admin.http.post(
        "/admin/sites/S02", data={"csrf_token": token, "country": "Holland"}, follow_redirects=True
    )
    assert "alpha-3" in r.text
    r = admin.http.post(
        "/admin/sites/S02", data={"csrf_token": token, "name": "Larissa"}, follow_redirects=True
    )
    assert "Site S02 renamed" in r.text
    rows = admin.get("/admin/sites").text
    s02 = rows[rows.index("<td>S02</td>") : rows.index("<td>S03</td>")]
    assert "Larissa" in s02 and 'value="NLD"' in s02
    inv = login("inv1")
    own = csrf_of(inv.get("/dashboard").text)
    r = inv.http.post("/admin/sites/S02", data={"csrf_token": own, "country": "DEU"}, follow_redirects=False)
    assert r.status_code == 403
    assert 'value="NLD"' in admin.get("/admin/sites").text
