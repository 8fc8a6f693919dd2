"""The parts of results.json the report's paper-shaped tables and figures read: the 90-day subgroups, the
signed mortality difference, Table 3 by stratum and the SUSAR listing.

Each is checked against an independent computation on the written datasets: the subgroup ORs by the Woolf
formula on the 2x2 counts, the Newcombe interval by statsmodels, the safety counts by pandas filters on ADAE.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from statsmodels.stats.proportion import confint_proportions_2indep

from fixtures.synthetic import synthetic_raw_trial
from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.sap import run_sap
from immunosep.protocol import default_protocol


@pytest.fixture(scope="module")
def trial() -> tuple[AnalysisDatasets, dict]:
    p = default_protocol()
    ds = derive_datasets(synthetic_raw_trial(400, p, seed=5), p)
    return ds, run_sap(ds, p)


def _woolf(a: int, b: int, c: int, d: int) -> tuple[float, float, float]:
    """OR of a/b (events/non-events, treatment) vs c/d (control) with the Woolf 95% CI (Woolf 1955)."""
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return (
        math.exp(log_or),
        math.exp(log_or - 1.959963984540054 * se),
        math.exp(log_or + 1.959963984540054 * se),
    )


def test_subgroups_cover_every_mortality_day_with_the_28_day_cutoffs(
    trial: tuple[AnalysisDatasets, dict],
) -> None:
    ds, results = trial
    analyses = results["subgroups"]["analyses"]
    assert list(analyses) == ["primary", "mortality_28d", "mortality_90d"]
    assert analyses["mortality_90d"]["outcome"] == "death_90d"
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    for sg in analyses["mortality_90d"]["by"]["stratum"]["subgroups"]:
        rows = a.loc[a["stratum"] == sg["level"]]
        t, c = (
            rows.loc[rows["arm"] == "precision", "death_90d"],
            rows.loc[rows["arm"] == "placebo", "death_90d"],
        )
        want = _woolf(int(t.sum()), int(len(t) - t.sum()), int(c.sum()), int(len(c) - c.sum()))
        assert (sg["estimate"], sg["ci_low"], sg["ci_high"]) == pytest.approx(want, rel=1e-9)
        assert sg["n_patients"] == len(rows)
    # the score subgroups of the 90-day analysis split at the 28-day Youden cut-off
    cut = results["subgroups"]["cutoffs"]["apache2"]["cutoff"]
    levels = {sg["level"] for sg in analyses["mortality_90d"]["by"]["apache2"]["subgroups"]}
    assert levels == {f"APACHE II > {cut:g}", f"APACHE II < {cut:g}"}


def test_mortality_difference_is_reported_placebo_minus_precision(
    trial: tuple[AnalysisDatasets, dict],
) -> None:
    _, results = trial
    for key, entry in results["binary_endpoints"].items():
        x1, n1 = entry["counts"]["precision"]["events"], entry["counts"]["precision"]["n"]
        x2, n2 = entry["counts"]["placebo"]["events"], entry["counts"]["placebo"]["n"]
        got = entry["difference_reported"]
        if entry["outcome"] == "bad":  # published Table 2: placebo minus precision for mortality
            assert got["order"] == "placebo - precision", key
            low, high = confint_proportions_2indep(x2, n2, x1, n1, method="newcomb", compare="diff")
            assert got["estimate"] == pytest.approx(x2 / n2 - x1 / n1, abs=1e-12)
        else:
            assert got["order"] == "precision - placebo", key
            low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
            assert got["estimate"] == pytest.approx(x1 / n1 - x2 / n2, abs=1e-12)
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high), abs=1e-9), key


def test_safety_counts_patients_by_stratum_arm_and_relatedness(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    safety = results["safety"]
    a = ds.adsl.loc[ds.adsl["analysed"] == 1]
    sae = ds.adae.loc[ds.adae["aeser"] == 1]
    for stratum in ("mals", "immunoparalysis"):
        for arm in ("precision", "placebo"):
            assert safety["n_by_stratum_arm"][stratum][arm] == int(
                ((a["stratum"] == stratum) & (a["arm"] == arm)).sum()
            )
    anaemia = next(r for r in safety["table3"] if r["level"] == "pt" and r["pt"] == "Anaemia")
    for stratum in ("mals", "immunoparalysis"):
        for arm in ("precision", "placebo"):
            for group in ("related", "not related"):
                rows = sae.loc[
                    (sae["aedecod"] == "Anaemia")
                    & (sae["stratum"] == stratum)
                    & (sae["arm"] == arm)
                    & (sae["arelgr1"] == group)
                ]
                assert anaemia["by_stratum"][stratum][arm][group] == rows["usubjid"].nunique()
    for arm in ("precision", "placebo"):
        for group in ("related", "not related"):
            assert anaemia["patients"][arm][group] == sum(
                anaemia["by_stratum"][s][arm][group] for s in ("mals", "immunoparalysis")
            )
            # the published unit of a preferred-term row (events) stays in counts
            events = sae.loc[(sae["aedecod"] == "Anaemia") & (sae["arm"] == arm) & (sae["arelgr1"] == group)]
            assert anaemia["counts"][arm][group] == len(events)


def test_susar_listing_is_every_susar_in_onset_order(trial: tuple[AnalysisDatasets, dict]) -> None:
    ds, results = trial
    listing = results["safety"]["susars"]
    want = ds.adae.loc[ds.adae["susar"] == 1]
    assert len(listing) == len(want) > 0
    assert [e["onset_day"] for e in listing] == sorted(e["onset_day"] for e in listing)
    got = pd.DataFrame(listing)[["usubjid", "arm", "pt"]].sort_values(["usubjid", "pt"]).to_numpy().tolist()
    assert got == want[["usubjid", "arm", "aedecod"]].sort_values(["usubjid", "aedecod"]).to_numpy().tolist()
    assert sum(results["safety"]["susars_by_arm"].values()) == len(listing)


def test_a_singular_subgroup_model_is_not_estimable_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's interaction model can be singular (numpy LinAlgError: in a small demo trial a 90-day
    subgroup cell had all or no deaths); the plan reports that subgroup as not estimable and carries on."""
    import numpy as np

    from immunosep.analysis import sap

    real = sap.subgroup_analysis

    def singular_for_stratum(data: pd.DataFrame, *args: object, **kwargs: object) -> object:
        if set(data["subgroup"]) <= {"mals", "immunoparalysis"}:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sap, "subgroup_analysis", singular_for_stratum)
    p = default_protocol()
    ds = derive_datasets(synthetic_raw_trial(120, p, seed=3), p)
    results = run_sap(ds, p)
    for key in ("primary", "mortality_28d", "mortality_90d"):
        by = results["subgroups"]["analyses"][key]["by"]
        assert "singular" in by["stratum"]["not_estimable"]
        assert "interaction" in by["apache2"]  # the other subgroups are still analysed


def test_reported_mortality_difference_reproduces_the_published_table_2() -> None:
    """From the published 28-day counts (57/131 precision, 72/145 placebo) the reported difference is the
    paper's 6.1 (-5.6 to 17.6) at its printed precision, and the primary endpoint's 17.2 (6.8 to 27.2)."""
    from immunosep.analysis.sap import jsonable, reported_difference
    from immunosep.published import counts, published_reference
    from immunosep.stats.proportions import compare_proportions

    table2 = published_reference()["table2_expected_statistics"]
    for key, outcome, printed in (
        ("mortality_28d", "bad", "difference_pct_placebo_minus_precision"),
        ("primary_sofa_d9", "good", "difference_pct"),
    ):
        c = counts("table2_expected_statistics", key)
        diff = compare_proportions(*c["precision"], *c["placebo"], outcome=outcome).difference
        got = reported_difference(jsonable(diff), ("precision", "placebo"), outcome)
        assert round(100 * got["estimate"], 1) == table2[key][printed]
        assert [round(100 * got["ci_low"], 1), round(100 * got["ci_high"], 1)] == table2[key][
            "difference_ci95"
        ]
