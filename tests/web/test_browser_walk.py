"""One patient from screening to day 9 in headless Chromium, through the real HTML pages, as a person would.

The real application runs under uvicorn on a free loopback port against a copy of the seeded SQLite template;
three browser contexts (own cookies each) play the investigator, the central lab and the pharmacist:

* the investigator screens the patient (live eligibility while typing), the lab enters the baseline draw and
  sees the stratum, the investigator classifies, records consent and randomizes after the confirmation page;
* before any creatinine is entered the pharmacist's day 1 says the IV injection is on hold and offers no
  "Given" for it;
* for days 1..9 the investigator enters the daily CRF (the live SOFA total is checked as the fields fill in,
  through HTMX) and the pharmacist opens the day's preparations (active or dummy, the IV dose halved when the
  last known creatinine clearance is below 30 mL/min; the page says which clearance and from which day: day
  4 has no creatinine, so day 3's is carried forward) and logs every injection due (one is logged as missed);
* the investigator's and the lab's pages never show an arm or a drug; the pharmacist's do.

Days 1 and 2 are checked in detail, days 3..9 go through the same forms with fewer checks. Full-page
screenshots of the main pages go to ``$IMMUNOSEP_SCREENSHOTS`` if set, else to the test's tmp folder.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright import sync_api  # a dev dependency: missing means a broken set-up, never a skip
from sqlalchemy import select

from immunosep.clinical.sofa import sofa
from immunosep.report.html import CHROMIUM_FLAGS
from immunosep.store.db import make_engine, session_scope
from immunosep.store.models import Patient, RandomizationSlot
from immunosep.web.app import create_app

expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = list(CHROMIUM_FLAGS)
SECRET = "browser-walk-secret-key-with-at-least-32-characters"
PASSWORD = "correct horse battery"  # every test user's (tests/conftest.py)
#: What a blinded reader must never see: arm labels and codes, the drugs, the dummy.
ARM_WORDS = ("anakinra", "interferon", "placebo", "saline", "dummy", "precision")
AGE, WEIGHT = 64, 80.0


# -- the days of the walk ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Day:
    """The worst values of one day as the investigator types them (field name -> text)."""

    study_day: int
    values: dict[str, str]
    ventilated: bool = True

    @property
    def crcl(self) -> float | None:
        """Cockcroft-Gault for the screened man (64 y, 80 kg), worked out by hand here; None without a
        creatinine that day."""
        if "creatinine" not in self.values:
            return None
        return (140 - AGE) * WEIGHT / (72 * float(self.values["creatinine"]))

    def sofa_total(self) -> int:
        v = self.values

        def num(name: str) -> float | None:
            return float(v[name]) if name in v else None

        return sofa(
            pao2_fio2_mmhg=num("pao2_fio2_mmhg"),
            ventilated=self.ventilated,
            platelets_1e3_ul=num("platelets_1e3_ul"),
            bilirubin_mg_dl=num("bilirubin"),
            map_mmhg=num("map_mmhg"),
            norepinephrine_ug_kg_min=num("norepinephrine_ug_kg_min"),
            gcs=num("gcs"),
            creatinine_mg_dl=num("creatinine"),
            urine_ml_day=num("urine_ml_day"),
        ).total


DAY1 = Day(
    1,
    {
        "pao2_fio2_mmhg": "180",
        "platelets_1e3_ul": "90",
        "bilirubin": "1.5",
        "map_mmhg": "62",
        "norepinephrine_ug_kg_min": "0.2",
        "gcs": "12",
        "creatinine": "1.0",
        "urine_ml_day": "1500",
        "weight_kg": "80",
    },
)
DAY2 = Day(
    2,
    {
        "pao2_fio2_mmhg": "220",
        "platelets_1e3_ul": "110",
        "bilirubin": "1.0",
        "map_mmhg": "68",
        "norepinephrine_ug_kg_min": "0.05",
        "gcs": "13",
        "creatinine": "4.0",  # clearance 21 mL/min: the IV dose is halved
        "urine_ml_day": "900",
        "weight_kg": "80",
    },
)
LATER_DAYS = [
    Day(
        d,
        {
            "pao2_fio2_mmhg": str(240 + 25 * (d - 3)),
            "platelets_1e3_ul": str(120 + 12 * (d - 3)),
            "map_mmhg": str(70 + d),
            "gcs": str(min(15, 13 + (d - 3) // 2)),
            # day 3: 28 mL/min (halved); day 4: no creatinine (day 3's carried: still halved); recovering
            **({} if d == 4 else {"creatinine": f"{3.0 - 0.3 * (d - 3):.1f}"}),
            "weight_kg": "80",
        },
        ventilated=d < 6,
    )
    for d in range(3, 10)
]
DAYS = [DAY1, DAY2, *LATER_DAYS]


def clearance_line(day: Day) -> tuple[str, bool]:
    """The pharmacist's clearance line on ``day`` and whether the IV dose is halved: the last clearance
    measured on or before the day stands (here one decimal is enough: no value is near 30)."""
    source = max(d.study_day for d in DAYS if d.study_day <= day.study_day and d.crcl is not None)
    crcl = DAYS[source - 1].crcl
    assert crcl is not None and abs(crcl - 30) > 0.05
    rule = (
        "below 30 mL/min: IV dose and volume x 0.5" if crcl < 30 else "30 mL/min or more: no renal adjustment"
    )
    carried = ", carried forward (no newer clearance)" if source < day.study_day else ""
    return f"{crcl:.1f} mL/min ({rule}), from the CRF of day {source}{carried}", crcl < 30


def due_hours(study_day: int) -> list[tuple[str, int]]:
    """(route, hour) of the injections due: IV every 8 h, SC every 48 h, from hour 0 of day 1."""
    due = [("iv", h) for h in (0, 8, 16)]
    if ((study_day - 1) * 24) % 48 == 0:
        due.append(("sc", 0))
    return due


def expected_preparations(arm: str, renal_adjusted: bool) -> dict[str, tuple[str, str, str, str]]:
    """route -> (active/dummy, drug, dose, volume) for a MALS patient, from the protocol as written.

    Below 30 mL/min the IV injection is halved, dose and volume, the dummy too (the syringe never tells).
    """
    half = 0.5 if renal_adjusted else 1.0
    volume = f"{20 * half:g} mL"
    if arm == "precision":
        iv = ("active", "anakinra", f"{200 * half:g} mg", volume)
    else:
        iv = ("dummy", "saline 0.9%", f"{20 * half:g} mL", volume)
    return {"IV": iv, "SC": ("dummy", "saline 0.9%", "0.5 mL", "0.5 mL")}


# -- the server and the browser -------------------------------------------------------------------------
@pytest.fixture
def live_url(db_url: str) -> Iterator[str]:
    """The application under uvicorn in a background thread on a free 127.0.0.1 port."""
    # Plain HTTP on loopback: the cookie's Secure flag is dropped (create_app documents this for tests).
    app = create_app(db_url, secret_key=SECRET, secure_cookies=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", workers=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.engine.dispose()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("IMMUNOSEP_SCREENSHOTS") or tmp_path / "walk-shots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("walk_*.png"):
        old.unlink()
    return folder


@dataclass
class Person:
    """One user in their own browser context (own cookies); every page they see can be photographed."""

    username: str
    page: Any
    base: str
    shots: Path
    blinded: bool
    errors: list[str]

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"walk_{name}.png"), full_page=True)

    def sees(self, *texts: str) -> str:
        """Assert the visible text holds each of ``texts``; the blinded see no arm word anywhere."""
        body = self.page.inner_text("body")
        for t in texts:
            assert t in body, f"{self.username} at {self.page.url}: {t!r} not on the page:\n{body[:1500]}"
        if self.blinded:
            self.check_blinded()
        return body

    def check_blinded(self) -> None:
        html = self.page.content().lower()  # the whole DOM: hidden inputs, attributes, swapped fragments
        leaked = [w for w in ARM_WORDS if w in html]
        assert not leaked, f"{self.username} at {self.page.url} sees {leaked}"

    def refused(self, path: str) -> None:
        """Typing the address of another role's page gets the 403 page (and nothing else)."""
        before = len(self.errors)
        response = self.page.goto(path)
        assert response is not None and response.status == 403, (self.username, path)
        self.sees("Not allowed")
        del self.errors[before:]  # the browser logs the 403 as a failed load: expected here

    def submit(self, button: Any) -> None:
        """Click a button that submits a form, and wait for the page it leads to."""
        with self.page.expect_navigation():
            button.click()

    def nav(self, label: str) -> None:
        with self.page.expect_navigation():
            self.page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()


def log_in(browser: Any, base: str, shots: Path, username: str, home: str, *, blinded: bool) -> Person:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    context.set_default_timeout(8000)
    page = context.new_page()
    person = Person(username, page, base, shots, blinded, [])
    # Script errors and CSP violations land in the console: the walk must produce none.
    page.on("pageerror", lambda exc: person.errors.append(str(exc)))
    page.on("console", lambda msg: person.errors.append(msg.text) if msg.type == "error" else None)
    page.goto("/")  # not logged in: the start page sends everyone to the login form
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("#f-username", username)
    page.fill("#f-password", PASSWORD)
    person.submit(page.get_by_role("button", name="Sign in"))
    expect(page).to_have_url(base + home)
    person.sees(username)
    return person


def arm_of(db_url: str, pseudonym: str) -> str:
    """The test's oracle for the pharmacist's page: the allocation as stored."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            patient = s.execute(select(Patient).where(Patient.pseudonym == pseudonym)).scalar_one()
            return str(
                s.execute(
                    select(RandomizationSlot.arm).where(RandomizationSlot.patient_id == patient.id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


# -- the steps ------------------------------------------------------------------------------------------
def screen_patient(inv: Person) -> str:
    page = inv.page
    inv.nav("Screening")
    inv.sees("Screen a patient", "Fill in the form to check eligibility.")
    onset = (datetime.now(UTC) - timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M")
    page.fill("#f-age_years", "17")  # a typo first: the live check says why the patient is not eligible
    page.select_option("#f-sex", "male")
    page.fill("#f-weight_kg", "80")
    page.fill("#f-height_cm", "175")
    page.select_option("#f-infection_type", "cap")
    page.fill("#f-sepsis_onset_at", onset)
    page.fill("#f-sofa_now", "7")
    page.fill("#f-neutrophils_per_mm3", "9000")
    verdict = page.get_by_test_id("eligibility")
    expect(verdict).to_contain_text("Not eligible")
    expect(verdict).to_contain_text("age below 18")
    inv.shot("02_inv_screening_not_eligible")
    page.fill("#f-age_years", str(AGE))
    expect(verdict).to_contain_text("Eligible")
    expect(verdict).not_to_contain_text("Not eligible")
    inv.sees("Next: baseline blood sample to the central lab.")
    inv.shot("03_inv_screening_eligible")
    inv.submit(page.get_by_role("button", name="Screen and add to the log"))
    match = re.search(r"/patients/(S01-\d{4})$", page.url)
    assert match, (page.url, page.content()[:2000])
    pseudonym = match.group(1)
    inv.sees(f"{pseudonym} screened: eligible", f"Patient {pseudonym}", "Classify from the baseline draw")
    expect(page.get_by_test_id("status")).to_have_text("eligible")
    inv.shot("04_inv_patient_eligible")
    return pseudonym


def lab_baseline(lab: Person, pseudonym: str) -> None:
    page = lab.page
    lab.sees("Central lab results")
    page.fill("#f-pseudonym", pseudonym.lower())  # as typed from a sample label; the page upper-cases it
    page.select_option("#f-study_day", "1")
    page.fill("#f-ferritin_ng_ml", "6000")
    page.fill("#f-hla_dr_per_monocyte", "3000")
    lab.submit(page.get_by_role("button", name="Save result"))
    expect(page.get_by_test_id("receipt")).to_contain_text(f"Saved: {pseudonym} day 1")
    stratum = page.get_by_test_id("lab-stratum")
    expect(stratum).to_contain_text("Macrophage activation-like syndrome")
    expect(stratum).to_contain_text("ferritin > 4420 ng/mL")
    lab.sees("ferritin 6000", "mHLA-DR 3000")
    lab.shot("05_lab_baseline_stratum")
    # The lab has no patient record and no pharmacy to look at.
    lab.refused(f"/patients/{pseudonym}")
    lab.refused(f"/pharmacy?pseudonym={pseudonym}&study_day=1")


def classify_consent_randomize(inv: Person, pseudonym: str) -> str:
    page = inv.page
    page.reload()
    inv.submit(page.get_by_role("button", name="Classify from the baseline draw"))
    inv.sees("Stratum: mals. The patient can be randomized after consent.")
    expect(page.get_by_test_id("status")).to_have_text("classified")
    expect(page.get_by_test_id("stratum")).to_have_text("Macrophage activation-like syndrome")
    page.select_option("#f-given_by", "relative")
    inv.submit(page.get_by_role("button", name="Record consent"))
    inv.sees("Consent recorded.")
    inv.shot("06_inv_patient_classified")
    with page.expect_navigation():
        page.get_by_role("link", name="Randomize…").click()
    inv.sees(f"Randomize {pseudonym}?", "The allocation cannot be undone.")
    inv.shot("07_inv_randomize_confirm")
    inv.submit(page.get_by_test_id("confirm-randomize"))
    inv.sees(f"{pseudonym} is randomized", "treatment is blinded")
    kit = page.get_by_test_id("kit").inner_text().strip()
    assert kit, "no kit number shown"
    inv.shot("08_inv_randomized_kit")
    with page.expect_navigation():
        page.get_by_role("link", name="Back to the patient").click()
    expect(page.get_by_test_id("status")).to_have_text("randomized")
    inv.sees("No day entered yet.", "No injection logged yet.")
    return kit


def enter_crf(inv: Person, pseudonym: str, day: Day, *, detailed: bool) -> None:
    page = inv.page
    with page.expect_navigation():
        page.get_by_test_id("next-crf").click()
    expect(page).to_have_url(f"{inv.base}/patients/{pseudonym}/crf/{day.study_day}")
    total = page.get_by_test_id("sofa-total")
    live = page.get_by_test_id("sofa-result")
    if detailed:
        inv.sees(f"Daily CRF · {pseudonym} · day {day.study_day}", "Enter values to see the SOFA score.")
    typed: dict[str, str] = {}
    for name, value in day.values.items():
        page.fill(f"#f-{name}", value)
        typed[name] = value
        if name == "pao2_fio2_mmhg" and day.ventilated:
            # The score card above the fields grows when the first score arrives: wait for it (as the
            # investigator's eyes do) before ticking the boxes it pushes down.
            expect(total).to_have_text(str(Day(day.study_day, dict(typed), ventilated=False).sofa_total()))
            page.check("#f-ventilated")
            page.check("#f-mechanical_ventilation")
        if detailed and name != "weight_kg":
            # The live score (HTMX) after every field: what the investigator sees while typing.
            partial = Day(day.study_day, dict(typed), day.ventilated).sofa_total()
            expect(total).to_have_text(str(partial))
            if name == "map_mmhg":
                expect(live).to_contain_text("not measured")  # CNS and renal are still missing
                if day.study_day == 1:
                    inv.shot("09_inv_crf_day1_typing")
    if "norepinephrine_ug_kg_min" in day.values:
        page.check("#f-vasopressors")
    expected = day.sofa_total()
    expect(total).to_have_text(str(expected))
    if detailed:
        expect(live).not_to_contain_text("not measured")
        inv.check_blinded()
        inv.shot(f"{9 + 3 * (day.study_day - 1):02d}_inv_crf_day{day.study_day}")
    inv.submit(page.get_by_role("button", name=f"Save day {day.study_day}"))
    inv.sees(f"Day {day.study_day} saved: SOFA {expected}.")
    row = page.get_by_test_id("crf-days").locator("tbody tr").nth(day.study_day - 1)
    expect(row.locator("td").nth(1)).to_have_text(str(expected))


def pharmacy_day(pharm: Person, pseudonym: str, day: Day, arm: str, *, detailed: bool) -> None:
    page = pharm.page
    if page.url != f"{pharm.base}/pharmacy" and "/pharmacy?" not in page.url:
        pharm.nav("Preparations")
    page.fill("#f-pseudonym", pseudonym)
    page.fill("#f-study_day", str(day.study_day))
    pharm.submit(page.get_by_role("button", name="Show preparations"))
    line, halved = clearance_line(day)
    pharm.sees(f"{pseudonym} · day {day.study_day}", f"Creatinine clearance used: {line}")
    expect(page.get_by_test_id("crcl")).to_have_text(line)
    rows = page.get_by_test_id("preparations").locator("tbody tr")
    expected = expected_preparations(arm, halved)
    expect(rows).to_have_count(2)
    for i in range(2):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        route = cells[0]
        kind, drug, dose, volume = expected[route]
        assert cells[1] == f"{kind} {drug}", (day.study_day, cells)
        assert (cells[2], cells[3]) == (dose, volume), (day.study_day, cells)
        assert (cells[5] == "adjusted") == (route == "IV" and halved), (day.study_day, cells)
    body = page.inner_text("body")
    assert "saline 0.9%" in body  # the pharmacist is unblinded: the dummy is named
    assert ("anakinra" in body) == (arm == "precision")
    due = due_hours(day.study_day)
    expect(page.locator("[data-testid^=give-]")).to_have_count(len(due))
    if detailed:
        pharm.shot(f"{10 + 3 * (day.study_day - 1):02d}_pharm_day{day.study_day}_preparations")
    for route, hour in due:
        if day.study_day == 2 and route == "iv" and hour == 16:
            form = page.get_by_test_id(f"give-{route}-{hour}").locator("xpath=ancestor::form")
            form.get_by_label("Reason if missed").fill("line occluded, pump alarm")
            pharm.submit(form.get_by_role("button", name="Missed"))
            pharm.sees(f"{pseudonym} day 2 16:00 IV: missed.")
            continue
        pharm.submit(page.get_by_test_id(f"give-{route}-{hour}"))
        pharm.sees(f"{pseudonym} day {day.study_day} {hour:02d}:00 {route.upper()}: given.")
    expect(page.locator("[data-testid^=give-]")).to_have_count(0)
    if detailed:
        pharm.shot(f"{11 + 3 * (day.study_day - 1):02d}_pharm_day{day.study_day}_logged")


def pharmacy_before_any_creatinine(pharm: Person, pseudonym: str) -> None:
    """Day 1 before the investigator's CRF: no clearance is known, so the IV injection is on hold (in every
    arm alike): a warning, no dose amount and no "Given" for it; the SC injection may be given."""
    page = pharm.page
    page.fill("#f-pseudonym", pseudonym)
    page.fill("#f-study_day", "1")
    pharm.submit(page.get_by_role("button", name="Show preparations"))
    pharm.sees("Renal dose on hold.", "No creatinine clearance known on or before day 1")
    expect(page.get_by_test_id("clearance")).to_have_attribute("role", "alert")
    iv = page.get_by_test_id("preparations").locator("tbody tr", has_text="IV")
    expect(iv).to_contain_text("on hold: no clearance")
    expect(page.locator("[data-testid^=give-iv-]")).to_have_count(0)
    expect(page.locator("[data-testid^=held-iv-]")).to_have_count(3)
    expect(page.get_by_test_id("give-sc-0")).to_have_count(1)
    pharm.shot("09_pharm_day1_iv_on_hold")


# -- the walk -------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.slow
def test_one_patient_from_screening_to_day_9(live_url: str, db_url: str, shots: Path) -> None:
    started = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # The login form, once, as a picture.
            first = browser.new_page(viewport={"width": 1280, "height": 900})
            first.goto(live_url + "/login")
            first.screenshot(path=str(shots / "walk_01_login.png"), full_page=True)
            first.close()

            inv = log_in(browser, live_url, shots, "inv1", "/dashboard", blinded=True)
            inv.sees("Site dashboard", "No patients screened yet.")
            pseudonym = screen_patient(inv)

            lab = log_in(browser, live_url, shots, "lab", "/lab", blinded=True)
            lab_baseline(lab, pseudonym)

            kit = classify_consent_randomize(inv, pseudonym)
            arm = arm_of(db_url, pseudonym)
            assert arm in ("precision", "placebo")

            pharm = log_in(browser, live_url, shots, "pharm1", "/pharmacy", blinded=False)
            pharm.sees("Today's preparations", "Unblinded view")
            row = pharm.page.get_by_test_id("on-treatment").locator("tbody tr", has_text=pseudonym)
            expect(row).to_contain_text("1 (first dose)")
            expect(row).to_contain_text("0 of 4")
            expect(row.get_by_test_id("renal-hold")).to_have_text("renal dose on hold: no creatinine")
            pharmacy_before_any_creatinine(pharm, pseudonym)

            for day in DAYS:
                detailed = day.study_day <= 2
                enter_crf(inv, pseudonym, day, detailed=detailed)
                pharmacy_day(pharm, pseudonym, day, arm, detailed=detailed)
                if day.study_day == 2:
                    # The ward sees that a dose was missed and why, never what it was.
                    inv.page.reload()
                    inv.sees("Day 2, 16:00 IV — missed (line occluded, pump alarm)")

            # The investigator's record after nine days: every day's SOFA and every injection, blinded.
            inv.page.reload()
            days = inv.page.get_by_test_id("crf-days").locator("tbody tr")
            expect(days).to_have_count(9)
            doses = inv.page.get_by_test_id("administrations").locator("li")
            n_due = sum(len(due_hours(d)) for d in range(1, 10))
            expect(doses).to_have_count(n_due)
            expect(inv.page.get_by_test_id("next-crf")).to_have_text("Enter day 10")
            inv.sees("Day 9, 16:00 IV — given", "Day 9, 00:00 SC — given")
            inv.shot("15_inv_patient_day9")
            with inv.page.expect_navigation():
                inv.page.get_by_role("link", name="correct").nth(1).click()
            inv.sees("Reason for the correction")  # day 2 reopens as a correction, with its values
            expect(inv.page.locator("#f-creatinine")).to_have_value("4.0")
            expect(inv.page.get_by_test_id("sofa-total")).to_have_text(str(DAY2.sofa_total()))
            expect(inv.page.get_by_test_id("sofa-result")).not_to_contain_text("not measured")
            inv.shot("16_inv_crf_day2_correction")

            inv.nav("Dashboard")
            line = inv.page.get_by_test_id("patients").locator("tbody tr", has_text=pseudonym)
            expect(line).to_contain_text("randomized")
            expect(line).to_contain_text("1, 2, 3, 4, 5, 6, 7, 8, 9")
            expect(line).to_contain_text("biomarker draw day 2")  # next: nothing late, CRFs to day 9 entered
            inv.sees("Site dashboard")
            inv.shot("17_inv_dashboard")
            # The outcome: a day out of range is refused next to its field, then the ICU discharge is saved.
            with inv.page.expect_navigation():
                line.get_by_role("link", name=pseudonym).click()
            with inv.page.expect_navigation():
                inv.page.get_by_role("link", name="Enter outcome").click()
            inv.page.fill("#f-icu_discharge_day", "120")
            inv.page.select_option("#f-infection_day15", "resolution")
            before = len(inv.errors)
            inv.submit(inv.page.get_by_role("button", name="Save outcome"))
            assert [e for e in inv.errors[before:] if "422" not in e] == []
            del inv.errors[before:]  # the browser logs the refused form's 422 as a failed load: expected
            expect(inv.page.locator("#e-icu_discharge_day")).to_contain_text("must be a study day 1-90")
            expect(inv.page.locator("#f-infection_day15")).to_have_value("resolution")  # kept as typed
            inv.shot("19_inv_outcome_refused")
            inv.page.fill("#f-icu_discharge_day", "12")
            inv.submit(inv.page.get_by_role("button", name="Save outcome"))
            inv.sees(f"Outcome of {pseudonym} saved.")
            expect(inv.page.get_by_test_id("outcome")).to_contain_text("12")
            # The investigator cannot open the pharmacy's pages, even by typing the address.
            inv.refused(f"/pharmacy?pseudonym={pseudonym}&study_day=1")
            inv.refused(f"/pharmacy/log?pseudonym={pseudonym}")

            pharm.nav("Dosing log")
            with pharm.page.expect_navigation():
                pharm.page.get_by_role("link", name=pseudonym).click()
            log = pharm.page.get_by_test_id("dosing-log").locator("tbody tr")
            expect(log).to_have_count(n_due)
            expect(log.filter(has_text="missed")).to_have_count(1)
            pharm.shot("18_pharm_dosing_log")
            assert kit not in ("", "0")

            # Last, an emergency: the investigator unblinds, with a reason and a confirmation.
            inv.page.goto(f"/patients/{pseudonym}")
            with inv.page.expect_navigation():
                inv.page.get_by_role("link", name="Emergency unblinding…").click()
            inv.sees("This shows you the patient's allocated treatment.")  # and still no arm anywhere
            inv.page.fill("#f-reason", "anaphylaxis on day 9, need to know")
            before = len(inv.errors)
            inv.submit(inv.page.get_by_test_id("confirm-unblind"))
            expect(inv.page.locator("#e-confirm")).to_contain_text("tick to confirm")
            del inv.errors[before:]  # the refused form's 422, as above
            inv.page.check("#f-confirm")
            inv.submit(inv.page.get_by_test_id("confirm-unblind"))
            label = {"precision": "Precision immunotherapy", "placebo": "Placebo"}[arm]
            expect(inv.page.get_by_test_id("disclosed-arm")).to_have_text(label)
            inv.shot("20_inv_unblinded")

            for person in (inv, lab, pharm):
                assert not person.errors, (person.username, person.errors)
        finally:
            browser.close()
    shots_taken = sorted(p.name for p in shots.glob("walk_*.png"))
    assert len(shots_taken) == 22, shots_taken
    assert time.monotonic() - started < 120
