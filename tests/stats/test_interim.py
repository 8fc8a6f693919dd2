"""Interim looks vs R rpact's getAnalysisResults: validation/group_sequential.R (``interim``).

Three trials of means (sd 2 and 2.2, 30 per arm per look, ``normalApproximation = TRUE``): 3 looks O'Brien-
Fleming one-sided, 3 looks Pocock two-sided, 4 looks HSD(-2) one-sided. At each look rpact's overall z, effect
and pooled-SD standard error go in; the repeated CI, repeated P-value, conditional power (thetaH1 0.8,
assumedStDev 2: drift ``0.8 / 2 sqrt(n_max / 4)``) and conditional rejection probability must equal rpact's to
1e-6 relative; the repeated P-value to 1e-6 absolute, the tolerance of rpact's bisection search for it.
The predictive power, which rpact does not give, is checked against the closed form of one remaining look and
against simulation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.group_sequential import group_sequential_design
from immunosep.stats.interim import (
    conditional_power,
    conditional_rejection_probability,
    interim_look,
    observed_design,
    predictive_power,
    repeated_p_value,
)

REFERENCE = Path(__file__).resolve().parents[2] / "validation" / "reference" / "group_sequential.json"
CASES = json.loads(REFERENCE.read_text())["interim"]
RTOL = 1e-6


def _design(case):
    return group_sequential_design(
        case["information_rates"],
        alpha=case["alpha"],
        sided=case["sided"],
        alpha_spending=case["alpha_spending"],
        alpha_gamma=case["alpha_gamma"],
    )


@pytest.mark.requirement("GSD-08")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_interim_quantities_equal_rpact(case):
    d = _design(case)
    drift = case["theta_h1"] / case["sd"] * math.sqrt(case["n_max"] / 4)
    for look in case["looks"]:
        k = look["stage"]
        z = look["z"]
        c = d.critical_values[k - 1]
        low, high = look["effect"] - c * look["se"], look["effect"] + c * look["se"]
        np.testing.assert_allclose([low, high], look["rci"], rtol=RTOL)
        # rpact searches the repeated P-value by bisection to C_ANALYSIS_TOLERANCE_DEFAULT = 1e-6 (absolute)
        assert repeated_p_value(d, k, z) == pytest.approx(look["repeated_p"], abs=1e-6)
        if look["conditional_rejection_probability"] is not None:  # none at the last look
            assert conditional_rejection_probability(d, k, z) == pytest.approx(
                look["conditional_rejection_probability"], rel=RTOL
            )
        if look["conditional_power"] is not None:
            assert conditional_power(d, k, z, drift) == pytest.approx(look["conditional_power"], rel=RTOL)


@pytest.mark.requirement("GSD-08")
def test_predictive_power_one_remaining_look_closed_form():
    """Flat prior, one look left: PP = Phi((z - c_K sqrt(t_k)) / sqrt(1 - t_k)) (Spiegelhalter et al. 1986)."""
    from scipy.stats import norm

    d = group_sequential_design([0.5, 1.0])
    for z in (-0.5, 0.8, 1.9):
        expected = norm.cdf((z - d.critical_values[1] * math.sqrt(0.5)) / math.sqrt(0.5))
        assert predictive_power(d, 1, z) == pytest.approx(expected, rel=1e-9)


@pytest.mark.requirement("GSD-08")
def test_conditional_power_with_two_looks_left_by_simulation():
    d = group_sequential_design([0.25, 0.6, 1.0], alpha_spending="pocock")
    z1, drift = 0.9, d.drift
    rng = np.random.default_rng(11)
    n = 400_000
    t = np.asarray(d.information_rates)
    b1 = z1 * math.sqrt(t[0])
    b2 = b1 + rng.standard_normal(n) * math.sqrt(t[1] - t[0]) + drift * (t[1] - t[0])
    b3 = b2 + rng.standard_normal(n) * math.sqrt(t[2] - t[1]) + drift * (t[2] - t[1])
    hit = (b2 / math.sqrt(t[1]) >= d.critical_values[1]) | (b3 >= d.critical_values[2])
    cp = conditional_power(d, 1, z1, drift)
    assert abs(hit.mean() - cp) <= 4 * math.sqrt(cp * (1 - cp) / n)


@pytest.mark.requirement("GSD-08")
def test_interim_look_decisions_and_observed_information():
    planned = group_sequential_design([1 / 3, 2 / 3, 1], beta=0.1, beta_spending="obrien-fleming")
    # the look came late: 40% of the information; the bound is the spending function's at 0.4
    r = interim_look(planned, [0.4], 1.2, estimate=0.1, standard_error=0.08)
    assert r.information_rate == 0.4
    assert r.efficacy_z == pytest.approx(observed_design(planned, [0.4]).critical_values[0], abs=1e-12)
    assert r.efficacy_z < planned.critical_values[0] and r.decision.startswith("continue")
    # look k replaces planned look k (rpact's informationRates = c(observed, later planned)): an early first
    # look does not add a look at the planned 1/3, a late one keeps 2/3
    assert observed_design(planned, [0.29]).information_rates == pytest.approx((0.29, 2 / 3, 1.0))
    assert observed_design(planned, [0.4]).information_rates == pytest.approx((0.4, 2 / 3, 1.0))
    assert observed_design(planned, [0.3, 0.7]).information_rates == pytest.approx((0.3, 0.7, 1.0))
    assert observed_design(planned, [0.7]).information_rates == pytest.approx((0.7, 1.0))
    assert r.conditional_rejection_probability < r.conditional_power_trend < r.conditional_power_h1
    assert r.repeated_ci[0] < 0.1 < r.repeated_ci[1]
    assert interim_look(planned, [0.4], 4.0, estimate=0.3, standard_error=0.08).decision.startswith(
        "stop: the efficacy"
    )
    futile = interim_look(planned, [0.4], -1.5, estimate=-0.1, standard_error=0.08)
    assert "futility" in futile.decision and "non-binding" in futile.decision
    final = interim_look(planned, [1 / 3, 2 / 3, 1.0], 1.5, estimate=0.1, standard_error=0.08)
    assert final.decision.startswith("final analysis") and final.conditional_power_h1 == 0.0
    assert final.repeated_p > planned.alpha


def test_bad_interim_input():
    planned = group_sequential_design([0.5, 1.0])
    with pytest.raises(ImmunoSepError, match="increase strictly"):
        observed_design(planned, [0.6, 0.5])
    with pytest.raises(ImmunoSepError, match="standard error positive"):
        interim_look(planned, [0.5], 1.0, estimate=0.1, standard_error=0.0)
    with pytest.raises(ImmunoSepError, match="look must be between 1 and 2"):
        conditional_power(planned, 3, 1.0, 1.0)
