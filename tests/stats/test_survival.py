"""Kaplan-Meier, log-rank and Cox vs R survival: validation/survival.R (survfit log-log, survdiff, coxph)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.survival import cox_regression, kaplan_meier, logrank

RTOL = 1e-6


@pytest.fixture
def lung(r_csv) -> pd.DataFrame:
    return r_csv("lung")


@pytest.mark.requirement("STAT-04")
def test_kaplan_meier_log_log_against_survfit(lung, r_reference):
    """R: survfit(Surv(time, dead) ~ 1, conf.type = "log-log")."""
    ref = r_reference("survival")
    km = kaplan_meier(lung.time, lung.dead)
    assert km.times == pytest.approx(tuple(ref["km"]["time"]))
    assert km.survival == pytest.approx(tuple(ref["km"]["surv"]), rel=RTOL)
    assert km.at_risk == tuple(ref["km"]["n_risk"])
    # the last time has S = 0 in R? then its CI is NA (null); compare where R defines it
    lows = [(a, b) for a, b in zip(km.ci_low, ref["km"]["lower"], strict=True) if b is not None]
    highs = [(a, b) for a, b in zip(km.ci_high, ref["km"]["upper"], strict=True) if b is not None]
    assert [a for a, _ in lows] == pytest.approx([b for _, b in lows], rel=RTOL)
    assert [a for a, _ in highs] == pytest.approx([b for _, b in highs], rel=RTOL)
    assert "log-log" in km.method
    female = lung[lung.female == 1]
    kmf = kaplan_meier(female.time, female.dead, label="female")
    assert kmf.survival == pytest.approx(tuple(ref["km_female"]["surv"]), rel=RTOL)
    assert kmf.at(200) == pytest.approx(
        ref["km_female"]["surv"][int(np.searchsorted(ref["km_female"]["time"], 200, side="right")) - 1]
    )


def test_event_at_time_zero_is_kept():
    km = kaplan_meier([0, 0, 1, 2, 3], [1, 0, 1, 1, 0])
    assert km.times == (0.0, 1.0, 2.0, 3.0)
    assert km.survival == pytest.approx((0.8, 0.8 * 2 / 3, 0.8 * 2 / 3 * 1 / 2, 0.8 / 3))
    assert km.at_risk == (5, 3, 2, 1)


@pytest.mark.requirement("STAT-04")
def test_logrank_against_survdiff(lung, r_reference):
    ref = r_reference("survival")["logrank"]
    res = logrank(lung.time, lung.dead, lung.female)
    assert res.statistic == pytest.approx(ref["chisq"], rel=RTOL)
    assert res.p == pytest.approx(ref["p"], rel=RTOL)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.requirement("STAT-04")
def test_cox_against_coxph(lung, r_reference, ties):
    """R: coxph(Surv(time, dead) ~ female + age, ties = <ties>)."""
    ref = r_reference("survival")[ties]
    res = cox_regression(lung, "time", "dead", ["female", "age"], ties=ties, check_ph=False)
    for i, name in enumerate(["female", "age"]):
        term = res.term(name)
        assert math.log(term.estimate) == pytest.approx(ref["coef"][i], rel=RTOL)
        se = (math.log(term.ci_high) - math.log(term.estimate)) / 1.959963984540054
        assert se == pytest.approx(ref["se"][i], rel=1e-5)
        assert term.p == pytest.approx(ref["p"][i], rel=1e-4)
    assert res.ties == ties and f"{ties} ties" in res.method
    assert res.events == int(lung.dead.sum())


def test_ph_check_reports_each_covariate(lung, r_reference):
    """Grambsch-Therneau (km transform). R survival >= 3 uses an exact score version: same conclusion only."""
    ref = r_reference("survival")["zph"]
    res = cox_regression(lung, "time", "dead", ["female", "age"])
    assert [t.name for t in res.ph_tests] == ["female", "age"]
    for mine, theirs in zip(res.ph_tests, ref["p"], strict=True):
        assert (mine.p < 0.05) == (theirs < 0.05)


def test_ph_check_flags_crossing_hazards():
    rng = np.random.default_rng(7)
    n = 400
    arm = np.repeat([0, 1], n // 2)
    # arm 1: early deaths, then none; arm 0: constant hazard -> hazards cross
    t = np.where(arm == 1, rng.exponential(5, n), rng.exponential(30, n))
    t = np.where((arm == 1) & (t > 8), t * 20, t)
    data = pd.DataFrame({"time": np.minimum(t, 90), "dead": (t < 90).astype(int), "arm": arm})
    res = cox_regression(data, "time", "dead", ["arm"])
    assert res.ph_tests[0].p < 0.001


def test_bad_input():
    with pytest.raises(ImmunoSepError, match="non-negative"):
        kaplan_meier([1, -2], [1, 0])
    with pytest.raises(ImmunoSepError, match="0/1"):
        kaplan_meier([1, 2], [1, 2])
    with pytest.raises(ImmunoSepError, match="two groups"):
        logrank([1, 2], [1, 1], ["a", "a"])
    with pytest.raises(ImmunoSepError, match="ties"):
        cox_regression(pd.DataFrame({"t": [1, 2], "e": [1, 1], "x": [0, 1]}), "t", "e", ["x"], ties="exact")
    with pytest.raises(ImmunoSepError, match="no events"):
        cox_regression(pd.DataFrame({"t": [1, 2], "e": [0, 0], "x": [0, 1]}), "t", "e", ["x"])


def test_cox_that_cannot_converge_says_not_estimable() -> None:
    """Collinear covariates make lifelines' Hessian singular: a clear error, not a LinAlgError."""
    data = pd.DataFrame(
        {
            "t": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "e": [1, 0, 1, 1, 0, 1],
            "arm": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
            "same": [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
        }
    )
    with pytest.raises(ImmunoSepError, match="not estimable"):
        cox_regression(data, "t", "e", ["arm", "same"])


def test_vectorized_schoenfeld_residuals_are_lifelines(lung):
    """The scaled Schoenfeld residuals by distinct time equal lifelines' row loop (Efron tie means), so the
    Grambsch-Therneau test given them equals lifelines' own."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import proportional_hazard_test

    from immunosep.stats.survival import _scaled_schoenfeld

    cph = CoxPHFitter().fit(lung, duration_col="time", event_col="dead")
    theirs = cph.compute_residuals(lung, kind="scaled_schoenfeld")
    mine = _scaled_schoenfeld(
        cph,
        lung["time"].to_numpy(float),
        lung["dead"].to_numpy(bool),
        lung[["female", "age"]].to_numpy(float),
    )
    times = cph.durations[cph.event_observed.to_numpy(bool)].to_numpy()
    for column in ("female", "age"):  # within a tied time the order of the deaths is lifelines' sort's
        a = pd.Series(theirs[column].to_numpy()).groupby(times).sum()
        b = pd.Series(mine[column].to_numpy()).groupby(times).sum()
        assert np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, atol=1e-12)
    plain = proportional_hazard_test(cph, lung, time_transform="km").summary
    given = proportional_hazard_test(cph, lung, time_transform="km", precomputed_residuals=mine).summary
    assert np.allclose(plain["test_statistic"], given["test_statistic"], rtol=1e-12)


@pytest.mark.parametrize(
    ("time", "event", "group"),
    [
        ([1.0, 2.0, 3.0, 2.0, 3.0, 4.0], [0, 0, 0, 0, 0, 0], ["a"] * 3 + ["b"] * 3),  # no event at all
        ([5.0, 6.0, 1.0, 2.0], [1, 1, 0, 0], ["a", "a", "b", "b"]),  # events only where one group is at risk
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0] * 6, ["a", "a", "b", "b", "c", "c"]),  # three groups, no event
    ],
)
def test_logrank_without_an_informative_event_gives_what_r_and_lifelines_give(time, event, group) -> None:  # type: ignore[no-untyped-def]
    """statsmodels' survdiff refuses a singular variance (a tiny interim analysis); the test then answers as
    lifelines' and R's survdiff do: chi-square 0, P 1."""
    res = logrank(time, event, group)
    assert (res.statistic, res.p) == (0.0, 1.0)
