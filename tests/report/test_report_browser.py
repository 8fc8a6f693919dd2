"""The report as a person sees it: report.html rendered in headless Chromium, each section to PNG.

The screenshots land in the test's tmp folder (``report-shots``); the test checks that every section is
present, has a real size, that every embedded figure decoded, and that the blinded version shows no arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import playwright.sync_api as playwright  # a dev dependency: missing is a failure, never a skip
import pytest

from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.protocol import default_protocol
from immunosep.report.html import CHROMIUM_FLAGS, render_report

CHROMIUM_ARGS = list(CHROMIUM_FLAGS)
SECTIONS = (
    "summary",
    "consort",
    "table1",
    "table2",
    "figure2",
    "survival",
    "subgroups",
    "table3",
    "table3_strata",
    "table_susars",
    "methods",
)


@pytest.mark.browser
@pytest.mark.slow
def test_report_renders_in_chromium(
    analysed_trial: tuple[AnalysisDatasets, dict[str, Any]], tmp_path: Path
) -> None:
    ds, results = analysed_trial
    p = default_protocol()
    pages = {
        "dsmb": render_report(ds, results, p, blinded=False),
        "blinded": render_report(ds, results, p, blinded=True),
    }
    shots = tmp_path / "report-shots"
    shots.mkdir()
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name, html in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, encoding="utf-8")
                page.goto(path.as_uri())
                broken = page.evaluate(
                    "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
                )
                assert broken == 0, f"{name}: {broken} figure(s) did not decode"
                for section in SECTIONS:
                    element = page.query_selector(f"#{section}")
                    if name == "blinded" and section == "subgroups":
                        assert element is None  # subgroup comparisons are by arm: DSMB only
                        continue
                    assert element is not None, f"{name}: section {section} missing"
                    box = element.bounding_box()
                    assert box is not None and box["height"] > 40 and box["width"] > 400, (name, section, box)
                    element.screenshot(path=str(shots / f"{name}_{section}.png"))
                text = page.inner_text("body")
                if name == "blinded":
                    assert "Precision immunotherapy" not in text and "Placebo" not in text
                    assert "Anakinra" not in text and "Interferon" not in text
                else:
                    assert "Precision immunotherapy" in text and "Hazard ratio" in text
                    assert "percentage points" in text and "Anakinra" in text
                    # the page fits a DSMB print: no section wider than the A4 print width of the template
                    page.emulate_media(media="print")
                    page.set_viewport_size({"width": 700, "height": 900})
                    widths = page.evaluate(
                        "Array.from(document.querySelectorAll('main section')).map(s => s.scrollWidth)"
                    )
                    assert max(widths) <= 700, widths
                    page.emulate_media(media="screen")
                    page.set_viewport_size({"width": 1280, "height": 900})
        finally:
            browser.close()
    assert len(list(shots.glob("*.png"))) == 2 * len(SECTIONS) - 1
