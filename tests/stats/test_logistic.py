"""Logistic, stepwise and conditional logistic vs R: validation/models.R (glm, drop1 LRT loop, clogit exact)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from statsmodels.discrete.conditional_models import ConditionalLogit

from immunosep.errors import ImmunoSepError
from immunosep.stats.logistic import logistic_regression, stepwise_logistic

RTOL = 1e-6


@pytest.fixture
def trial(r_trial_data) -> pd.DataFrame:
    return r_trial_data.copy()


@pytest.mark.requirement("STAT-03")
def test_adjusted_ors_against_glm(trial, r_reference):
    ref = r_reference("models")
    fit = logistic_regression(trial, "primary", ["arm", "cci", "sofa", "age", "site"], categorical=["site"])
    for r_name, name in (
        ("arm", "arm"),
        ("cci", "cci"),
        ("sofa", "sofa"),
        ("age", "age"),
        ("sites02", "site[s02]"),
    ):
        term = fit.term(name)
        b, se = ref["full"][r_name]["estimate"], ref["full"][r_name]["se"]
        assert math.log(term.estimate) == pytest.approx(b, rel=RTOL)
        assert term.ci == pytest.approx(
            (math.exp(b - 1.959963984540054 * se), math.exp(b + 1.959963984540054 * se)), rel=RTOL
        )
        assert term.p == pytest.approx(ref["full"][r_name]["p"], rel=1e-5)
    assert fit.log_likelihood == pytest.approx(ref["full_loglik"], rel=RTOL)
    assert fit.aic == pytest.approx(ref["full_aic"], rel=RTOL)
    assert fit.converged and not fit.separation and fit.n == len(trial)


@pytest.mark.requirement("STAT-03")
def test_stepwise_matches_r_backward_lr_loop(trial, r_reference):
    ref = r_reference("models")["stepwise"]
    res = stepwise_logistic(
        trial, "primary", ["arm", "cci", "sofa", "age", "site"], forced=["arm"], categorical=["site"]
    )
    assert sorted(res.selected) == sorted(ref["selected"])
    assert [(s.action, s.variable) for s in res.steps] == [(s["action"], s["variable"]) for s in ref["steps"]]
    for mine, theirs in zip(res.steps, ref["steps"], strict=True):
        assert mine.p == pytest.approx(theirs["p"], rel=1e-5)
    assert math.log(res.fit.term("arm").estimate) == pytest.approx(ref["arm"]["estimate"], rel=RTOL)
    assert "remove if P > 0.1" in res.rule and "forced: arm" in res.rule


def test_stepwise_given_the_full_fit_selects_the_same(trial):
    """The full model's fit handed in (as the SAP does) gives the same steps and the same final fit."""
    candidates = ["arm", "cci", "sofa", "age", "site"]
    full = logistic_regression(trial, "primary", candidates, categorical=["site"])
    alone = stepwise_logistic(trial, "primary", candidates, forced=["arm"], categorical=["site"])
    given = stepwise_logistic(
        trial, "primary", candidates, forced=["arm"], categorical=["site"], full_fit=full
    )
    assert given == alone
    kept = stepwise_logistic(
        trial, "primary", candidates, forced=["arm"], categorical=["site"], remove_p=0.999, full_fit=full
    )
    assert kept.fit is full and kept.selected == tuple(candidates)


@pytest.mark.requirement("STAT-03")
def test_site_as_stratum_is_conditional_logistic(trial, r_reference):
    ref = r_reference("models")["clogit"]
    fit = logistic_regression(trial, "primary", ["arm", "cci", "sofa"], strata="site")
    for name in ("arm", "cci", "sofa"):
        b, _se = ref[name]
        assert math.log(fit.term(name).estimate) == pytest.approx(b, rel=1e-5)
    assert fit.log_likelihood == pytest.approx(ref["loglik"], rel=RTOL)
    assert "conditional" in fit.method


def test_conditional_fit_is_statsmodels_own(trial):
    """Answering repeated score calls from memory leaves ConditionalLogit's Newton fit as it is, bit for bit."""
    fit = logistic_regression(trial, "primary", ["arm", "cci", "sofa"], strata="site")
    plain = ConditionalLogit(
        trial["primary"], trial[["arm", "cci", "sofa"]], groups=trial["site"].to_numpy()
    ).fit(method="newton", tol=1e-12, disp=False, maxiter=200)
    for i, name in enumerate(("arm", "cci", "sofa")):
        assert fit.term(name).estimate == math.exp(plain.params.iloc[i])
        assert fit.term(name).p == float(2 * norm.sf(abs(plain.params.iloc[i] / plain.bse.iloc[i])))
    assert fit.log_likelihood == plain.llf


def test_stepwise_with_site_as_stratum_keeps_arm(trial):
    res = stepwise_logistic(trial, "primary", ["arm", "cci", "sofa", "age"], forced=["arm"], strata="site")
    assert "arm" in res.selected and "conditional" in res.fit.method


@pytest.mark.requirement("STAT-03")
def test_separation_is_reported_not_hidden():
    x = np.arange(20.0)
    data = pd.DataFrame({"y": (x >= 10).astype(int), "x": x, "arm": np.tile([0, 1], 10)})
    fit = logistic_regression(data, "y", ["arm", "x"])
    assert fit.separation and "separation" in fit.method


def test_bad_inputs(trial):
    with pytest.raises(ImmunoSepError, match="not in the data"):
        logistic_regression(trial, "primary", ["nope"])
    with pytest.raises(ImmunoSepError, match="0/1"):
        logistic_regression(trial, "sofa", ["arm"])
    with pytest.raises(ImmunoSepError, match="forced variable"):
        stepwise_logistic(trial, "primary", ["cci"], forced=["arm"])


def test_conditional_logistic_refuses_a_stratum_too_large_for_the_exact_likelihood() -> None:
    """statsmodels' ConditionalLogit recurses once per patient of a stratum: a clear error, not RecursionError."""
    from immunosep.stats.logistic import CONDITIONAL_MAX_STRATUM

    rng = np.random.default_rng(1)
    n = CONDITIONAL_MAX_STRATUM + 20
    data = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "arm": rng.integers(0, 2, n).astype(float),
            "site": ["S01"] * (n - 10) + ["S02"] * 10,
        }
    )
    with pytest.raises(ImmunoSepError, match=f"beyond the {CONDITIONAL_MAX_STRATUM}"):
        logistic_regression(data, "y", ["arm"], strata="site")


def test_counted_rows_fit_as_one_row_per_patient(trial):
    """The fit on distinct rows with patient counts takes Logit's Newton steps on the expanded rows: the same
    estimates, SEs and log-likelihood to rounding, also when site terms diverge (separation)."""
    import statsmodels.api as sm

    from immunosep.stats.logistic import _design

    for separated in (False, True):
        data = trial.copy()
        if separated:  # every event of one site: its indicator separates
            data.loc[data["site"] == "s05", "primary"] = 1
        x, _ = _design(data, ["arm", "cci", "site"], ["site"])
        exog = sm.add_constant(x, has_constant="add")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels warns of the separation
            ref = sm.Logit(data["primary"], exog).fit(disp=False, maxiter=200, tol=1e-12)
        fit = logistic_regression(data, "primary", ["arm", "cci", "site"], categorical=["site"])
        for term in fit.terms:
            b = float(ref.params[term.name])
            assert math.log(term.estimate) == pytest.approx(b, rel=1e-9, abs=1e-9)
        assert fit.log_likelihood == pytest.approx(float(ref.llf), rel=1e-12)
        assert fit.n == len(data) and fit.events == int(data["primary"].sum())
