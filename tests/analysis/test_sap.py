"""results.json equals what the statistics engine gives on the ADSL/ADTTE rows it names.

The rows are selected here independently (pandas filters on the written datasets), the engine is called
directly, and the numbers must match the plan's output exactly.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from fixtures.synthetic import synthetic_raw_trial
from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.sap import RESULTS_SCHEMA_VERSION, run_sap
from immunosep.protocol import default_protocol
from immunosep.stats.logistic import logistic_regression, stepwise_logistic
from immunosep.stats.ordinal import proportional_odds_rows
from immunosep.stats.proportions import compare_proportions
from immunosep.stats.survival import cox_regression, logrank


@pytest.fixture(scope="module")
def trial() -> tuple[AnalysisDatasets, dict]:
    p = default_protocol()
    ds = derive_datasets(synthetic_raw_trial(280, p, seed=7), p)
    return ds, run_sap(ds, p)


def _counts(adsl: pd.DataFrame, variable: str, arm: str) -> tuple[int, int]:
    v = pd.to_numeric(adsl.loc[(adsl["analysed"] == 1) & (adsl["arm"] == arm), variable]).dropna()
    return int(v.sum()), len(v)


def test_results_are_strict_json_with_stable_top_level_keys(trial: tuple[AnalysisDatasets, dict]) -> None:
    _, results = trial
    json.dumps(results, allow_nan=False)
    assert results["schema_version"] == RESULTS_SCHEMA_VERSION
    for key in ("binary_endpoints", "adjusted_primary", "survival", "infection_day15", "subgroups", "safety"):
        assert key in results


@pytest.mark.parametrize(
    ("key", "variable", "outcome"),
    [
        ("primary", "primary_endpoint", "good"),
        ("mortality_28d", "death_28d", "bad"),
        ("mortality_90d", "death_90d", "bad"),
        ("sofa_d15", "sofa_d15_endpoint", "good"),
    ],
)
def test_binary_endpoint_equals_engine_on_adsl_rows(
    trial: tuple[AnalysisDatasets, dict], key: str, variable: str, outcome: str
) -> None:
    ds, results = trial
    x1, n1 = _counts(ds.adsl, variable, "precision")
    x2, n2 = _counts(ds.adsl, variable, "placebo")
    engine = compare_proportions(x1, n1, x2, n2, outcome=outcome)
    got = results["binary_endpoints"][key]["comparison"]
    assert (got["x1"], got["n1"], got["x2"], got["n2"]) == (x1, n1, x2, n2)
    assert got["odds_ratio"]["estimate"] == engine.odds_ratio.estimate
    assert got["difference"]["ci_low"] == engine.difference.ci_low
    assert got["test"]["p"] == engine.test.p
    assert got["number_needed"]["value"] == engine.number_needed.value or math.isinf(
        engine.number_needed.value
    )


def test_sensitivity_uses_only_patients_not_discharged_before_day9(
    trial: tuple[AnalysisDatasets, dict],
) -> None:
    ds, results = trial
    sens = ds.adsl.loc[ds.adsl["sensfl"] == 1]
    got = results["binary_endpoints"]["primary_sensitivity"]["comparison"]
    assert got["n1"] + got["n2"] == len(sens) < int((ds.adsl["analysed"] == 1).sum())


def test_survival_equals_engine_on_adtte_rows(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    os28 = ds.adtte.loc[ds.adtte["paramcd"] == "OS28"]
    event = (os28["cnsr"] == 0).to_numpy()
    lr = logrank(os28["aval"].to_numpy(float), event, os28["arm"].tolist())
    frame = pd.DataFrame(
        {
            "t": os28["aval"].to_numpy(float),
            "e": event.astype(float),
            "arm": (os28["arm"] == "precision").astype(float).to_numpy(),
        }
    )
    cox = cox_regression(frame, "t", "e", ["arm"])
    got = results["survival"]["OS28"]
    assert got["logrank"]["p"] == pytest.approx(lr.p, rel=1e-12)
    assert got["hazard_ratio"]["estimate"] == pytest.approx(cox.term("arm").estimate, rel=1e-9)
    assert got["at_risk"]["precision"][0] == int((os28["arm"] == "precision").sum())


def test_adjusted_primary_equals_engine(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    data = pd.DataFrame(
        {
            "primary_endpoint": pd.to_numeric(a["primary_endpoint"]),
            "arm": (a["arm"] == "precision").astype(float),
            "cci": pd.to_numeric(a["cci"]),
            "sofa_baseline": pd.to_numeric(a["sofa_baseline"]),
            "site": a["siteid"],
        }
    ).dropna()
    step = stepwise_logistic(
        data,
        "primary_endpoint",
        ["arm", "cci", "sofa_baseline", "site"],
        forced=["arm"],
        categorical=["site"],
    )
    got = results["adjusted_primary"]["arm_odds_ratio_stepwise"]
    assert got["estimate"] == pytest.approx(step.fit.term("arm").estimate, rel=1e-9)
    assert results["adjusted_primary"]["stepwise"]["selected"] == list(step.selected)
    full = logistic_regression(
        data, "primary_endpoint", ["arm", "cci", "sofa_baseline", "site"], categorical=["site"]
    )
    assert results["adjusted_primary"]["separation"] == (full.separation or step.fit.separation)
    stratified = logistic_regression(data, "primary_endpoint", ["arm", "cci", "sofa_baseline"], strata="site")
    got = results["adjusted_primary"]["arm_odds_ratio_site_stratified"]
    want = stratified.term("arm")
    assert (got["estimate"], got["ci_low"], got["ci_high"], got["p"]) == pytest.approx(
        (want.estimate, want.ci_low, want.ci_high, want.p), rel=1e-9
    )
    assert "conditional logistic" in got["method"]


def test_infection_ordinal_equals_engine(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    levels = default_protocol().endpoints.infection_day15.levels
    a = ds.adsl.loc[(ds.adsl["analysed"] == 1) & ds.adsl["infection_day15"].isin(levels)]
    fit = proportional_odds_rows(a["infection_day15"].tolist(), (a["arm"] == "precision").tolist(), levels)
    assert results["infection_day15"]["ordinal"]["odds_ratio"]["estimate"] == pytest.approx(
        fit.odds_ratio.estimate, rel=1e-9
    )


def test_safety_counts_patients_per_soc(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    sae = ds.adae.loc[ds.adae["aeser"] == 1]
    any_row = results["safety"]["table3"][0]
    for arm in ("precision", "placebo"):
        want = sae.loc[(sae["arm"] == arm) & (sae["arelgr1"] == "related"), "usubjid"].nunique()
        assert any_row["counts"][arm]["related"] == want


def test_sidf_row_counts_only_the_sidf_population(trial: tuple[AnalysisDatasets, dict]) -> None:
    # JAMA 2025 Table 2 analyses SIDF reversal among patients with serial draws (59 + 66 of 276).
    ds, results = trial
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    population = a.loc[a["sidffl"] == 1]
    assert 0 < len(population) < len(a)  # deaths before day 4 leave fewer than 2 serial draws
    assert a.loc[a["sidffl"] == 0, "sidf_reversal"].isna().all()
    got = results["binary_endpoints"]["sidf_reversal"]["counts"]
    for arm in ("precision", "placebo"):
        rows = population.loc[population["arm"] == arm]
        assert got[arm] == {"events": int(rows["sidf_reversal"].sum()), "n": len(rows)}
        assert results["populations"]["sidf_assessable"][arm] == len(rows)
