"""A monitor verifies a CRF day in headless Chromium, the site corrects it, the page shows it changed since
verified and the audit trail page shows the verification and its return to unverified (blinded throughout).

The patient is enrolled and its day 1 entered through the services (the browser walk covers those pages);
the application and the browser are those of ``test_browser_walk.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright import sync_api
from sqlalchemy import select

# The walk's module (tests/web is on sys.path: pytest's default "prepend" import mode, no __init__.py).
from test_browser_walk import CHROMIUM, CHROMIUM_ARGS, live_url, log_in, shots  # noqa: F401

from immunosep.conduct import biospecimens, classification, crf, randomization, screening
from immunosep.conduct.access import actor_for
from immunosep.store.db import make_engine, session_scope
from immunosep.store.models import User

expect = sync_api.expect


def _patient_with_day_1(db_url: str) -> tuple[str, dict[str, object]]:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            actors = {u.username: actor_for(s, u) for u in s.execute(select(User)).scalars()}
        inv, lab = actors["inv1"], actors["lab"]
        with session_scope(engine) as s:
            answers = screening.ScreeningInput(
                age_years=64,
                sex="male",
                infection_type="cap",
                sepsis_onset_at=datetime.now(UTC) - timedelta(hours=10),
                sofa_now=7,
                neutrophils_per_mm3=9000.0,
                weight_kg=80.0,
                height_cm=175.0,
            )
            p = screening.screen(s, inv, answers).pseudonym
        with session_scope(engine) as s:
            biospecimens.record_draw(s, lab, p, 1, ferritin_ng_ml=6000.0, hla_dr_per_monocyte=None)
        with session_scope(engine) as s:
            classification.classify_patient(s, inv, p)
            screening.record_consent(s, inv, p, "relative")
        with session_scope(engine) as s:
            randomization.allocate(s, inv, p)
            crf.record_day(s, inv, p, 1, crf.DailyInputs(gcs=12, creatinine=1.0, platelets_1e3_ul=90.0))
    finally:
        engine.dispose()
    return p, actors


@pytest.mark.requirement("SDV-01", "SDV-03", "SDV-04")
def test_a_monitor_verifies_a_day_in_the_browser_and_a_correction_returns_it_to_unverified(
    live_url: str,  # noqa: F811
    db_url: str,
    shots: Path,  # noqa: F811
) -> None:
    pseudonym, actors = _patient_with_day_1(db_url)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # A first page of its own takes the browser's one request for /favicon.ico (404), as in the walk.
            first = browser.new_page(viewport={"width": 1280, "height": 900})
            first.goto(live_url + "/login")
            first.screenshot(path=str(shots / "sdv_0_login.png"), full_page=True)
            first.close()
            mon = log_in(browser, live_url, shots, "mon1", "/dashboard", blinded=True)
            expect(mon.page.get_by_test_id("site-oversight")).to_contain_text("S01")
            mon.nav("Source verification")
            with mon.page.expect_navigation():
                mon.page.get_by_test_id("sdv-patients").get_by_role("link", name=pseudonym).click()
            day1 = mon.page.get_by_test_id("sdv-record").filter(has_text="daily crf · day 1")
            expect(day1).to_contain_text("to verify")
            mon.submit(day1.get_by_role("button", name="Verify the whole record"))
            mon.sees("daily crf/1 verified.")
            day1 = mon.page.get_by_test_id("sdv-record").filter(has_text="daily crf · day 1")
            expect(day1).not_to_contain_text("to verify")
            mon.page.screenshot(path=str(shots / "sdv_1_verified.png"), full_page=True)
            # the site corrects the GCS with a reason: the day returns to unverified
            engine = make_engine(db_url)
            try:
                with session_scope(engine) as s:
                    crf.record_day(
                        s,
                        actors["inv1"],  # type: ignore[arg-type]
                        pseudonym,
                        1,
                        crf.DailyInputs(gcs=9, creatinine=1.0, platelets_1e3_ul=90.0),
                        reason="GCS misread from the chart",
                    )
            finally:
                engine.dispose()
            mon.page.reload()
            day1 = mon.page.get_by_test_id("sdv-record").filter(has_text="daily crf · day 1")
            expect(day1).to_contain_text("changed since verified")
            expect(day1.locator("tr", has_text="platelets")).to_contain_text("changed since verified")
            mon.page.screenshot(path=str(shots / "sdv_2_changed.png"), full_page=True)
            mon.page.goto(f"/patients/{pseudonym}/audit")
            trail = mon.page.get_by_test_id("audit")
            expect(trail.locator("tr", has_text="sdv marks").first).to_be_visible()
            back = trail.locator("tr", has_text="returns to unverified")
            # the whole-record mark's update: one entry per field changed (when, and why)
            expect(back).to_have_count(2)
            expect(back.filter(has_text="invalidated_at")).to_have_count(1)
            expect(back.filter(has_text="invalidated_reason")).to_contain_text("GCS misread from the chart")
            mon.sees("GCS misread from the chart")
            assert not mon.errors, mon.errors
        finally:
            browser.close()
