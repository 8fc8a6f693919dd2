"""The bedside calculators: open to every logged-in role, same results as ``clinical``, errors by field."""

from __future__ import annotations

import pytest

from immunosep.clinical.sofa import sofa

ROLES_USERS = ["inv1", "pharm1", "lab", "mon1", "dm", "dsmb", "admin"]


@pytest.mark.parametrize("username", ROLES_USERS)
def test_every_role_may_use_the_calculators(login, username: str) -> None:  # type: ignore[no-untyped-def]
    c = login(username)
    assert c.get("/api/bedside/classify?ferritin_ng_ml=5000").json()["stratum"] == "mals"
    assert c.get("/bedside").status_code == 200


@pytest.mark.parametrize(
    ("ferritin", "hla_dr", "stratum"),
    [
        # Boundaries exactly as written in the protocol (docs/requirements.md "Patient pathway", item 2).
        (4420.0, 4999.0, "immunoparalysis"),
        (4420.1, None, "mals"),
        (4420.0, 5000.0, "unclassified"),
        (100.0, 12000.0, "unclassified"),
    ],
)
def test_classify_api_follows_the_protocol_boundaries(login, ferritin, hla_dr, stratum) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    q = f"ferritin_ng_ml={ferritin}" + (f"&hla_dr={hla_dr}" if hla_dr is not None else "")
    body = c.get(f"/api/bedside/classify?{q}").json()
    assert body["stratum"] == stratum
    assert body["enrolled"] is (stratum != "unclassified")


def test_classify_rejects_implausible_values_with_the_field(login) -> None:  # type: ignore[no-untyped-def]
    r = login("inv1").get("/api/bedside/classify?ferritin_ng_ml=-3")
    assert r.status_code == 422
    assert r.json()["field"] == "ferritin_ng_ml"


def test_sofa_api_matches_clinical_sofa(login) -> None:  # type: ignore[no-untyped-def]
    c = login("lab")
    q = (
        "pao2_fio2_mmhg=150&ventilated=true&platelets_1e3_ul=45&bilirubin=40&bilirubin_unit=umol/L"
        "&map_mmhg=65&norepinephrine_ug_kg_min=0.2&gcs=9&creatinine=2.5&urine_ml_day=300"
    )
    body = c.get(f"/api/bedside/sofa?{q}").json()
    expected = sofa(
        pao2_fio2_mmhg=150,
        ventilated=True,
        platelets_1e3_ul=45,
        bilirubin_mg_dl=40,
        bilirubin_unit="umol/L",
        map_mmhg=65,
        norepinephrine_ug_kg_min=0.2,
        gcs=9,
        creatinine_mg_dl=2.5,
        urine_ml_day=300,
    )
    assert body["total"] == expected.total
    # By hand (docs/clinical.md SOFA table): resp 3 (<200 ventilated), coag 3 (<50), liver 2 (40 umol/L = 2.34 mg/dL),
    # cardio 4 (norepinephrine > 0.1), CNS 3 (GCS 6-9), renal 3 (urine < 500) = 18.
    assert (body["respiration"], body["coagulation"], body["liver"]) == (3, 3, 2)
    assert (body["cardiovascular"], body["cns"], body["renal"], body["total"]) == (4, 3, 3, 18)
    assert body["missing"] == []


def test_sofa_reports_missing_components(login) -> None:  # type: ignore[no-untyped-def]
    body = login("inv1").get("/api/bedside/sofa?gcs=15").json()
    assert body["total"] == 0
    assert set(body["missing"]) == {"respiration", "coagulation", "liver", "cardiovascular", "renal"}


def test_sofa_fragment_shows_total_and_field_errors(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    ok = c.get("/fragments/sofa?gcs=8&platelets_1e3_ul=90")
    assert ok.status_code == 200 and 'data-testid="sofa-total">5<' in ok.text
    bad = c.get("/fragments/sofa?gcs=abc")
    assert "not a number" in bad.text and "GCS" in bad.text
    implausible = c.get("/fragments/sofa?gcs=22")
    assert "GCS" in implausible.text and 'class="result bad"' in implausible.text


def test_bedside_page_without_javascript_computes_on_submit(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    page = c.get("/bedside?ferritin_ng_ml=6000&gcs=12")
    assert "Macrophage activation-like syndrome" in page.text
    assert 'data-testid="sofa-total">2<' in page.text
    bad = c.get("/bedside?ferritin_ng_ml=oops")
    assert 'id="e-ferritin_ng_ml"' in bad.text


def test_a_bare_lab_value_that_looks_like_umol_is_refused_until_its_unit_is_stated(login) -> None:  # type: ignore[no-untyped-def]
    c = login("inv1")
    r = c.get("/api/bedside/sofa?bilirubin=25")
    assert r.status_code == 422 and "looks like umol/L" in r.json()["detail"]
    assert r.json()["field"] == "bilirubin"
    assert c.get("/api/bedside/sofa?bilirubin=25&bilirubin_unit=mg/dL").json()["liver"] == 4
    assert c.get("/api/bedside/sofa?bilirubin=25&bilirubin_unit=umol/L").json()["liver"] == 1
    page = c.get("/fragments/sofa?creatinine=150")
    assert "looks like umol/L" in page.text
