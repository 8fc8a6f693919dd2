"""The virtual-patient model stays calibrated to the published ImmunoSep trial (JAMA 2025).

Each target's mean over simulated trials must lie within its stated tolerance of the published value
(tolerances in immunosep.simulate.calibration); the report in docs/simulate.md comes from the same code.
"""

from __future__ import annotations

import pytest

from immunosep.simulate.calibration import CalibrationReport, calibration_report, report_markdown


@pytest.fixture(scope="module")
def report() -> CalibrationReport:
    return calibration_report(trials=300, seed=20251208)


def test_every_target_is_within_tolerance(report: CalibrationReport) -> None:
    outside = [
        f"{r.name} [{r.group}]: published {r.published:.3f}, simulated {r.simulated_mean:.3f} +- {r.tolerance}"
        for r in report.rows
        if not r.within
    ]
    assert not outside, "\n".join(outside)


def test_report_covers_the_key_published_targets(report: CalibrationReport) -> None:
    names = {r.name for r in report.rows}
    for required in (
        "primary endpoint (SOFA decrease >= 1.4 at day 9)",
        "primary endpoint, mals",
        "primary endpoint, immunoparalysis",
        "SOFA decrease >= 1.4 at day 15",
        "28-day mortality",
        "90-day mortality",
        "died before day 9",
        "SIDF reversal among assessable",
        "infection day 15: superinfection",
        "SOFA carried forward (alive, discharged before day 9)",
        "randomized of screened",
        "withdrew consent, data removed (patients)",
        "any serious AE, related",
    ):
        assert required in names
    assert len(report.rows) > 100


def test_primary_endpoint_rates_are_tight(report: CalibrationReport) -> None:
    # 46/131 precision, 26/145 placebo (Table 2): the model's means are well inside 0.03
    rows = {(r.name, r.group): r for r in report.rows}
    primary = "primary endpoint (SOFA decrease >= 1.4 at day 9)"
    assert rows[(primary, "precision")].simulated_mean == pytest.approx(46 / 131, abs=0.015)
    assert rows[(primary, "placebo")].simulated_mean == pytest.approx(26 / 145, abs=0.015)


def test_a_miscalibrated_model_is_caught() -> None:
    from immunosep.simulate.model import default_parameters

    params = default_parameters()
    broken = params.model_copy(
        update={"mortality": params.mortality.model_copy(update={"precision": [0.3, 0.6, 0.8]})}
    )
    bad = calibration_report(trials=40, seed=1, params=broken)
    failing = {r.name for r in bad.rows if not r.within}
    assert {"died before day 9", "28-day mortality", "90-day mortality"} <= failing


def test_markdown_table_has_one_line_per_target(report: CalibrationReport) -> None:
    text = report_markdown(report)
    assert text.count("\n| ") == len(report.rows) + 1
