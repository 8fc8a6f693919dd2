"""Issue 19's walk in headless Chromium: the investigator signs a casebook, a monitor verifies a day against
source, a correction invalidates both (visibly, with what changed), and the study-wide audit report shows
all of it, the correction's reason included. Blinded throughout.

The patient is enrolled and its day 1 entered through the services (``test_sdv_browser`` does the same);
the application and the browser are those of ``test_browser_walk.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright import sync_api
from test_browser_walk import CHROMIUM, CHROMIUM_ARGS, PASSWORD, live_url, log_in, shots  # noqa: F401
from test_sdv_browser import _patient_with_day_1

from immunosep.conduct import crf
from immunosep.store.db import make_engine, session_scope

expect = sync_api.expect


def _correct_day_1(db_url: str, actor: object, pseudonym: str) -> None:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            crf.record_day(
                s,
                actor,  # type: ignore[arg-type]
                pseudonym,
                1,
                crf.DailyInputs(gcs=9, creatinine=1.0, platelets_1e3_ul=90.0),
                reason="GCS misread from the chart",
            )
    finally:
        engine.dispose()


@pytest.mark.browser
@pytest.mark.requirement("SIG-01", "SDV-01", "SDV-04", "AUD-REPORT-01")
def test_a_signed_and_verified_casebook_changes_and_the_audit_report_shows_it_all(
    live_url: str,  # noqa: F811
    db_url: str,
    shots: Path,  # noqa: F811
) -> None:
    pseudonym, actors = _patient_with_day_1(db_url)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # 1. the investigator signs: the first signing of the session asks username and password
            inv = log_in(browser, live_url, shots, "inv1", "/dashboard", blinded=True)
            inv.page.goto(f"/patients/{pseudonym}/sign")
            form = inv.page.get_by_test_id("sign-form")
            expect(form.get_by_test_id("printed-name")).to_have_text("Inv1 Tester")
            form.locator("#f-meaning").select_option("approved as investigator")
            form.locator("#f-username").fill("inv1")
            form.locator("#f-password").fill(PASSWORD)
            inv.submit(form.get_by_role("button", name="Sign"))
            signature = inv.page.get_by_test_id("signature").first
            expect(signature).to_contain_text("Inv1 Tester")
            expect(signature).to_contain_text("approved as investigator")
            expect(signature).to_contain_text("valid")
            inv.page.screenshot(path=str(shots / "regulated_1_signed.png"), full_page=True)

            # 2. the monitor verifies day 1 against source
            mon = log_in(browser, live_url, shots, "mon1", "/dashboard", blinded=True)
            mon.page.goto(f"/patients/{pseudonym}/sdv")
            day1 = mon.page.get_by_test_id("sdv-record").filter(has_text="daily crf · day 1")
            mon.submit(day1.get_by_role("button", name="Verify the whole record"))
            mon.sees("daily crf/1 verified.")

            # 3. the site corrects the GCS with a reason: both the signature and the verification fall
            _correct_day_1(db_url, actors["inv1"], pseudonym)
            inv.page.goto(f"/patients/{pseudonym}")
            signature = inv.page.get_by_test_id("signature").first
            expect(signature).to_contain_text("invalidated")
            expect(signature).to_contain_text("day 1")
            inv.page.screenshot(path=str(shots / "regulated_2_invalidated.png"), full_page=True)
            mon.page.reload()
            day1 = mon.page.get_by_test_id("sdv-record").filter(has_text="daily crf · day 1")
            expect(day1).to_contain_text("changed since verified")

            # 4. the study-wide audit report, filtered to the patient, shows every step
            mon.page.goto(f"/audit?patient={pseudonym}")
            report = mon.page.get_by_test_id("audit-report")
            expect(report.locator("tr", has_text="signatures").first).to_be_visible()
            expect(report.locator("tr", has_text="invalidated_at").first).to_be_visible()
            expect(report.locator("tr", has_text="sdv marks").first).to_be_visible()
            expect(report.locator("tr", has_text="GCS misread from the chart").first).to_be_visible()
            mon.sees("GCS misread from the chart")
            mon.page.screenshot(path=str(shots / "regulated_3_audit_report.png"), full_page=True)
            assert not inv.errors and not mon.errors, (inv.errors, mon.errors)
        finally:
            browser.close()
