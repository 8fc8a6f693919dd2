"""The virtual-patient model stays calibrated to the published ImmunoSep trial (JAMA 2025).

Each target's mean over simulated trials must lie within its stated tolerance of the published value
(tolerances in immunosep.simulate.calibration: half the standard error of the published figure); the report
in docs/simulate.md comes from the same code. Published values are those of the package's data file.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from immunosep.analysis.datasets import derive_consort
from immunosep.protocol import default_protocol
from immunosep.published import counts, published_reference
from immunosep.simulate.calibration import (
    PUBLISHED_RANDOMIZED,
    PUBLISHED_SCREENED,
    TOL_SCORE_MEDIAN_FLOOR,
    CalibrationReport,
    calibration_report,
    report_markdown,
    severity_of_trial,
    targets,
    virtual_adsl,
    virtual_consort,
)
from immunosep.simulate.cohort import simulate_trial
from immunosep.simulate.model import default_parameters

PROTOCOL = default_protocol()
PARAMS = default_parameters()


@pytest.fixture(scope="module")
def report() -> CalibrationReport:
    return calibration_report(trials=300, seed=20251208)


def _rows(report: CalibrationReport) -> dict[tuple[str, str], object]:
    return {(r.name, r.group): r for r in report.rows}


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
        "APACHE II >= 25",
        "Charlson comorbidity index >= 5",
        "SOFA >= 10",
        "SOFA renal, median",
        "SAE Haemorrhage, unrelated",
    ):
        assert required in names
    assert len(report.rows) > 100


def test_published_values_come_from_the_data_file() -> None:
    pub = published_reference()
    by_key = {(t.name, t.group): t for t in targets(PARAMS, PROTOCOL)}
    primary = counts("table2_expected_statistics", "primary_sofa_d9")
    for arm, (x, n) in primary.items():
        assert by_key[("primary endpoint (SOFA decrease >= 1.4 at day 9)", arm)].published == x / n
    for arm in ("precision", "placebo"):
        died = pub["consort"]["died_before_day9"][arm] / pub["consort"]["analysed"][arm]
        assert by_key[("died before day 9", arm)].published == died
        assert (
            by_key[("withdrew consent, data removed (patients)", arm)].published
            == (pub["consort"]["withdrew_consent_removed_data"][arm])
        )
    anaemia = pub["table3_serious_aes_patients"]["anemia"]["unrelated"]
    assert by_key[("SAE Anaemia, unrelated", "precision")].published == anaemia["precision"] / 131
    renal = pub["table1"]["sofa_components_median_iqr"]["renal"]
    assert (
        by_key[("SOFA renal, median", "all")].published == (renal["precision"][0] + renal["placebo"][0]) / 2
    )
    assert by_key[
        ("SOFA carried forward (alive, discharged before day 9)", "all")
    ].published == pytest.approx(pub["consort"]["sofa_carried_forward_pct_all"] / 100)
    assert (
        pub["consort"]["screened"],
        pub["consort"]["randomized"],
    ) == (PUBLISHED_SCREENED, PUBLISHED_RANDOMIZED)


def test_tolerances_are_half_a_standard_error_of_the_published_figure() -> None:
    by_key = {(t.name, t.group): t for t in targets(PARAMS, PROTOCOL)}
    # 46/131 (Table 2): binomial SE with p = (46 + 1/2) / 132
    p = 46.5 / 132
    assert by_key[
        ("primary endpoint (SOFA decrease >= 1.4 at day 9)", "precision")
    ].tolerance == pytest.approx(0.5 * math.sqrt(p * (1 - p) / 131))
    # age 69 (13) / 70 (14): pooled SD over 276 patients
    sd = math.sqrt((13**2 * 131 + 14**2 * 145) / 276)
    assert by_key[("age, mean (years)", "all")].tolerance == pytest.approx(0.5 * sd / math.sqrt(276))
    # creatinine median 1.3 (0.8-2.0) / 1.0 (0.7-1.8): SE of a median from the pooled IQR 0.75-1.9
    se = math.sqrt(math.pi / 2) * ((1.9 - 0.75) / 1.349) / math.sqrt(276)
    assert by_key[("creatinine_mg_dl, median", "all")].tolerance == pytest.approx(0.5 * se)
    # a whole-number score's median: the floor of a quarter point (the renal median's: 0.25)
    assert by_key[("SOFA renal, median", "all")].tolerance == TOL_SCORE_MEDIAN_FLOOR == 0.25
    # a count of patients: Poisson, sqrt(4) = 2
    assert by_key[("withdrew consent, data removed (patients)", "precision")].tolerance == pytest.approx(1.0)


def test_primary_endpoint_rates_are_tight(report: CalibrationReport) -> None:
    # 46/131 precision, 26/145 placebo (Table 2)
    rows = _rows(report)
    primary = "primary endpoint (SOFA decrease >= 1.4 at day 9)"
    assert rows[(primary, "precision")].simulated_mean == pytest.approx(46 / 131, abs=0.015)  # type: ignore[attr-defined]
    assert rows[(primary, "placebo")].simulated_mean == pytest.approx(26 / 145, abs=0.015)  # type: ignore[attr-defined]


def test_a_miscalibrated_model_is_caught() -> None:
    broken = PARAMS.model_copy(
        update={"mortality": PARAMS.mortality.model_copy(update={"precision": [0.3, 0.6, 0.8]})}
    )
    bad = calibration_report(trials=40, seed=1, params=broken)
    failing = {r.name for r in bad.rows if not r.within}
    assert {"died before day 9", "28-day mortality", "90-day mortality"} <= failing


def test_a_renal_sofa_median_three_times_too_high_is_caught() -> None:
    # Loosen the tie of CVVH (urine < 200 mL/day, renal 4) to a high creatinine: more patients score renal >= 1
    # and the median renal SOFA rises to about three times the published 0.25.
    broken = PARAMS.model_copy(
        update={"baseline": PARAMS.baseline.model_copy(update={"cvvh_renal_loading": 0.45})}
    )
    bad = {(r.name, r.group): r for r in calibration_report(trials=60, seed=2, params=broken).rows}
    renal = bad[("SOFA renal, median", "all")]
    assert renal.simulated_mean >= 2.5 * renal.published
    assert not renal.within
    # the perturbation is of the renal component only: creatinine and CVVH themselves are still as published
    assert bad[("creatinine_mg_dl, median", "all")].within
    assert bad[("CVVH", "all")].within


def test_died_before_day_9_is_counted_by_the_analysis_consort() -> None:
    trial = simulate_trial(np.random.default_rng(7), 600, PARAMS, PROTOCOL)
    consort = virtual_consort(trial, PROTOCOL)
    last = PROTOCOL.endpoints.primary.window_last_day
    analysed = trial.analysed
    for arm in ("precision", "placebo"):
        died = analysed & (trial.arms == arm) & (trial.outcomes.death_day <= last)
        assert consort["died_before_primary_window_end_by_arm"][arm] == int(died.sum())
    # the boundary: a death on day 9 (the last day of the primary window) counts, a death on day 10 does not
    adsl = virtual_adsl(trial, PROTOCOL).head(3).copy()
    adsl["analysed"] = 1
    adsl["arm"] = "precision"
    adsl["death_day"] = [last, last + 1, np.nan]
    screening = adsl.assign(randomized=True, exclusion_reasons="")
    assert (
        derive_consort(screening, adsl, PROTOCOL)["died_before_primary_window_end_by_arm"]["precision"] == 1
    )


def test_severity_subgroups_go_the_paper_s_way(report: CalibrationReport) -> None:
    # Post hoc subgroups (Youden cut-offs of APACHE II, CCI, SOFA for 28-day mortality): on simulated trials the
    # analysis finds higher scores in those who die, with cut-offs inside the published IQR of each score.
    by_variable = {s.variable: s for s in report.severity}
    assert set(by_variable) == {"apache2", "cci", "sofa_baseline"}
    for row in report.severity:
        assert row.auc_mean > 0.55, row
        assert row.share_auc_above_half > 0.9, row
        assert row.published_q1 <= row.cutoff_median <= row.published_q3, row
        assert row.plausible
    # the paper's cut-offs are its Table 1 categories (APACHE II >= 25, CCI >= 5, SOFA >= 10): midpoints
    assert [by_variable[v].published_cutoff for v in ("apache2", "cci", "sofa_baseline")] == [24.5, 4.5, 9.5]


def test_severity_auc_equals_an_independent_pairwise_count() -> None:
    # AUC of "higher score = death by day 28" counted pair by pair (ties one half), as Mann-Whitney defines it
    trial = simulate_trial(np.random.default_rng(11), 281, PARAMS, PROTOCOL)
    ours = severity_of_trial(trial, PROTOCOL)
    analysed = trial.analysed
    died = analysed & (trial.outcomes.death_day <= 28)
    alive = analysed & ~(trial.outcomes.death_day <= 28)
    for variable, column in (("apache2", "apache2"), ("cci", "charlson"), ("sofa_baseline", "sofa_total")):
        x = np.asarray(trial.baseline.columns[column], dtype=float)
        cases, controls = x[died][:, None], x[alive][None, :]
        auc = float(np.mean((cases > controls) + 0.5 * (cases == controls)))
        assert ours[variable][0] == pytest.approx(auc, abs=1e-12)


def test_without_severity_in_the_death_model_the_check_fails() -> None:
    flat = PARAMS.model_copy(
        update={"mortality": PARAMS.mortality.model_copy(update={"severity_loading": 0.0})}
    )
    rows = calibration_report(trials=30, seed=3, params=flat).severity
    assert not any(r.auc_clearly_above_half for r in rows)


def test_markdown_table_has_one_line_per_target(report: CalibrationReport) -> None:
    text = report_markdown(report)
    assert text.count("\n| ") == len(report.rows) + 1 + len(report.severity) + 1
    assert "| APACHE II |" in text
