"""Group-sequential designs vs R rpact: validation/group_sequential.R (100 designs).

The grid: 2-5 looks (equally spaced, and 0.3/0.7/1), O'Brien-Fleming, Pocock and Hwang-Shih-DeCani (gamma -4,
-2, 1) alpha spending, one-sided (alpha .025) and two-sided (alpha .05), no futility, and beta-spending futility
(O'Brien-Fleming, Pocock, HSD gamma -2; binding and non-binding) for one-sided designs; beta .2. R calls::

    d <- getDesignGroupSequential(kMax, alpha, beta = 0.2, sided, informationRates, typeOfDesign, gammaA,
                                  typeBetaSpending, gammaB, bindingFutility, tolerance = 1e-10)
    getDesignCharacteristics(d); getPowerAndAverageSampleNumber(d, theta = c(0, .5, 1), nMax = shift)
    getSampleSizeRates(d, pi1 = 0.4, pi2 = 0.2)
    getSampleSizeSurvival(d, hazardRatio = 0.7, lambda2 = log(2) / 12, accrualTime = c(0, 24), followUpTime = 12)

Tolerances: probabilities, spending, drift, inflation factor and sizes to 1e-6 relative; z-values (critical
values, futility bounds) to 1e-6 absolute, because a futility bound near 0 has no relative precision. A
probability below 1e-9 is compared absolutely (1e-9): rpact integrates from z = -6, so its "no futility"
probabilities are Phi(-6) = 1e-9, ours 0.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.group_sequential import (
    group_sequential_design,
    sample_size_rates,
    sample_size_survival,
    spending,
)

RTOL = 1e-6
Z_ATOL = 1e-6
P_ATOL = 1e-9

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "validation" / "reference"
_REFERENCE = json.loads((REFERENCE_DIR / "group_sequential.json").read_text())["designs"]


def _design(inputs):
    return group_sequential_design(
        inputs["information_rates"],
        alpha=inputs["alpha"],
        beta=inputs["beta"],
        sided=inputs["sided"],
        alpha_spending=inputs["alpha_spending"],
        alpha_gamma=inputs["alpha_gamma"],
        beta_spending=inputs["beta_spending"],
        beta_gamma=inputs["beta_gamma"],
        binding_futility=inputs["binding_futility"],
    )


def _id(ref):
    i = ref["inputs"]
    gamma = f"({i['alpha_gamma']})" if i["alpha_gamma"] is not None else ""
    fut = (
        ""
        if i["beta_spending"] == "none"
        else f"-fut-{i['beta_spending']}-{'binding' if i['binding_futility'] else 'nonbinding'}"
    )
    return f"{len(i['information_rates'])}looks-{i['alpha_spending']}{gamma}-{i['sided']}sided{fut}"


def _close(ours, theirs, *, rel=RTOL, abs_=P_ATOL):
    ours = np.atleast_1d(np.asarray(ours, dtype=float))
    theirs = np.atleast_1d(np.asarray(theirs, dtype=float))
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rel, atol=abs_)


@pytest.mark.requirement("GSD-01", "GSD-02", "GSD-03", "GSD-07")
@pytest.mark.parametrize("ref", _REFERENCE, ids=[_id(r) for r in _REFERENCE])
def test_design_equals_rpact(ref):
    d = _design(ref["inputs"])
    t = d.information_rates
    _close(d.critical_values, ref["critical_values"], rel=0, abs_=Z_ATOL)
    _close(d.nominal_p, ref["stage_levels"])
    _close(d.alpha_spent, ref["alpha_spent"])
    if None in ref["power"]:  # rpact gives the power by look only for beta-spending designs, and its
        # rejection probabilities count both tails of a two-sided design (the power, the upper one)
        _close(np.cumsum(np.add(d.h1.reject_upper, d.h1.reject_lower)), np.cumsum(ref["h1"]["reject"]))
    else:
        _close(d.power, ref["power"])
    _close(d.drift**2, ref["shift"])
    _close(d.inflation_factor, ref["inflation_factor"])
    _close([d.asn_h0, d.asn_h01, d.asn_h1], [ref["asn_h0"], ref["asn_h01"], ref["asn_h1"]])
    if ref["inputs"]["beta_spending"] != "none":
        _close(d.futility_bounds, ref["futility_bounds"], rel=0, abs_=Z_ATOL)
        _close(d.beta_spent, ref["beta_spent"])
    else:
        assert d.futility_bounds == () and d.beta_spent == ()
    for name, drift in (("h0", 0.0), ("h01", d.drift / 2), ("h1", d.drift)):
        probs = d.probabilities(drift)
        _close(np.add(probs.reject_upper, probs.reject_lower), ref[name]["reject"])
        if ref[name]["futility"] is not None:  # rpact gives none for two-sided designs
            _close(probs.futility[:-1], ref[name]["futility"])
        _close(probs.expected_fraction(t), ref[name]["expected_fraction"])


@pytest.mark.requirement("GSD-04")
@pytest.mark.parametrize("ref", _REFERENCE[::3], ids=[_id(r) for r in _REFERENCE[::3]])
def test_sample_sizes_equal_rpact(ref):
    d = _design(ref["inputs"])
    rates = sample_size_rates(d, ref["rates"]["pi1"], ref["rates"]["pi2"])
    r = ref["rates"]
    _close(rates.fixed, r["n_fixed"])
    _close(rates.maximum, r["max_n"])
    _close(rates.per_look, r["n_per_look"])
    _close(
        [rates.expected_h0, rates.expected_h01, rates.expected_h1],
        [r["expected_h0"], r["expected_h01"], r["expected_h1"]],
    )
    s = ref["survival"]
    surv = sample_size_survival(
        d,
        s["hazard_ratio"],
        median_control=s["median_control"],
        accrual_time=s["accrual_time"],
        follow_up_time=s["follow_up_time"],
    )
    _close(surv.maximum, s["max_events"])
    _close(surv.per_look, s["events_per_look"])
    _close(
        [surv.expected_h0, surv.expected_h01, surv.expected_h1],
        [s["expected_events_h0"], s["expected_events_h01"], s["expected_events_h1"]],
    )
    _close(surv.subjects_maximum, s["max_subjects"])


def _simulate(t, drift, n, seed):
    """``n`` paths of the canonical process ``Z_k`` at fractions ``t`` (independent increments)."""
    rng = np.random.default_rng(seed)
    t = np.asarray(t)
    dt = np.diff(t, prepend=0.0)
    s = np.cumsum(rng.standard_normal((n, len(t))) * np.sqrt(dt) + drift * dt, axis=1)
    return s / np.sqrt(t)


@pytest.mark.requirement("GSD-05")
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(alpha_spending="obrien-fleming"),
        dict(alpha_spending="pocock", sided=2, alpha=0.05),
        dict(alpha_spending="hwang-shih-decani", alpha_gamma=-4, beta_spending="pocock"),
        dict(alpha_spending="obrien-fleming", beta_spending="obrien-fleming", binding_futility=True),
    ],
)
def test_alpha_spent_under_h0_by_simulation(kwargs):
    """Simulated crossing rates under H0 equal the spent alpha per look, within 4 Monte Carlo SE."""
    t = [0.2, 0.45, 0.7, 1.0]
    d = group_sequential_design(t, **kwargs)
    z = _simulate(t, 0.0, 200_000, seed=20261207)
    c = np.asarray(d.critical_values)
    lower = np.asarray([*d.futility_bounds, -np.inf]) if d.binding_futility else np.full(len(t), -np.inf)
    alive = np.ones(len(z), dtype=bool)
    crossed = np.zeros(len(t))
    for k in range(len(t)):
        hit = alive & ((z[:, k] >= c[k]) | ((z[:, k] <= -c[k]) if d.sided == 2 else False))
        crossed[k] = hit.mean()
        alive &= ~hit & (z[:, k] > lower[k])
    spent = np.diff(d.alpha_spent, prepend=0.0)
    se = np.sqrt(spent * (1 - spent) / len(z))
    assert np.all(np.abs(crossed - spent) <= 4 * se + 1e-6), (crossed, spent)
    assert abs(crossed.sum() - d.alpha) <= 4 * math.sqrt(d.alpha * (1 - d.alpha) / len(z))


@pytest.mark.requirement("GSD-05")
def test_power_under_h1_by_simulation():
    d = group_sequential_design([1 / 3, 2 / 3, 1], beta_spending="hwang-shih-decani", beta_gamma=-2)
    z = _simulate(d.information_rates, d.drift, 200_000, seed=7)
    alive = np.ones(len(z), dtype=bool)
    rejected = np.zeros(len(z), dtype=bool)
    lower = [*d.futility_bounds, -np.inf]
    for k in range(3):
        hit = alive & (z[:, k] >= d.critical_values[k])
        rejected |= hit
        alive &= ~hit & (z[:, k] > lower[k])
    assert abs(rejected.mean() - 0.8) <= 4 * math.sqrt(0.16 / len(z))


@pytest.mark.requirement("GSD-06")
@pytest.mark.parametrize("looks", [2, 3, 5, 8])
@pytest.mark.parametrize(
    ("spend", "gamma"), [("obrien-fleming", None), ("hwang-shih-decani", -4.0), ("hwang-shih-decani", -2.0)]
)
def test_boundaries_are_monotone(looks, spend, gamma):
    """Equally spaced looks: conservative spending gives falling critical values, rising futility bounds,
    increasing cumulative alpha and beta, and nominal P below the overall alpha."""
    t = np.arange(1, looks + 1) / looks
    d = group_sequential_design(t, alpha_spending=spend, alpha_gamma=gamma, beta_spending="obrien-fleming")
    assert np.all(np.diff(d.critical_values) < 0)
    assert np.all(np.diff(d.futility_bounds) > 0)
    assert np.all(np.diff(d.alpha_spent) > 0) and np.all(np.diff(d.beta_spent) > 0)
    assert np.all(np.asarray(d.futility_bounds) < np.asarray(d.critical_values[:-1]))
    assert max(d.nominal_p) < d.alpha
    assert d.inflation_factor > 1 and d.asn_h1 < d.inflation_factor and d.asn_h0 < d.asn_h01


def test_spending_functions_reach_their_total():
    t = np.array([1e-3, 0.5, 1.0])
    for kind, gamma in (
        ("obrien-fleming", None),
        ("pocock", None),
        ("hwang-shih-decani", 1.0),
        ("hwang-shih-decani", 0.0),
    ):
        values = spending(kind, 0.025, t, gamma=gamma)
        assert values[-1] == pytest.approx(0.025, rel=1e-12) and np.all(np.diff(values) > 0)
    assert spending("hwang-shih-decani", 0.025, [0.5], gamma=0.0)[0] == pytest.approx(0.0125)
    # two-sided OF spends 4 (1 - Phi(z_{1 - alpha/4} / sqrt(t))), both tails together
    assert spending("obrien-fleming", 0.05, [1.0], sided=2)[0] == pytest.approx(0.05, rel=1e-12)


def test_one_look_is_the_fixed_design():
    d = group_sequential_design([1.0], alpha=0.025, beta=0.1)
    assert d.critical_values[0] == pytest.approx(1.959963984540054, abs=1e-12)
    assert d.inflation_factor == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(information_rates=[0.5, 0.4, 1.0]), "increase strictly"),
        (dict(information_rates=[0.5, 0.9]), "exactly 1 at the last look"),
        (dict(information_rates=[0.0, 1.0]), "from above 0"),
        (dict(information_rates=["a", 1.0]), "must be numbers"),
        (dict(information_rates=[]), "1 to 10 looks"),
        (dict(alpha=0.6), "alpha must be strictly between 0 and 0.5"),
        (dict(beta=0.0), "beta must be strictly between"),
        (dict(sided=3), "sided must be 1 or 2"),
        (dict(alpha_spending="haybittle"), "unknown alpha spending 'haybittle'"),
        (dict(beta_spending="linear"), "unknown beta spending"),
        (dict(alpha_spending="hwang-shih-decani"), "Hwang-Shih-DeCani needs gamma"),
        (dict(alpha_gamma=-2.0), "only for hwang-shih-decani"),
        (dict(sided=2, alpha=0.05, beta_spending="pocock"), "one-sided designs"),
    ],
)
def test_bad_input(kwargs, message):
    args = {"information_rates": [0.5, 1.0], **kwargs}
    with pytest.raises(ImmunoSepError, match=message):
        group_sequential_design(**args)


def test_bad_sample_size_input():
    d = group_sequential_design([0.5, 1.0])
    with pytest.raises(ImmunoSepError, match=r"p1 .* must exceed p2"):
        sample_size_rates(d, 0.2, 0.4)
    with pytest.raises(ImmunoSepError, match="p2 must be strictly between 0 and 1"):
        sample_size_rates(d, 0.4, 0.0)
    with pytest.raises(ImmunoSepError, match="hazard_ratio must be strictly between 0 and 1"):
        sample_size_survival(d, 1.3)
    with pytest.raises(ImmunoSepError, match="together"):
        sample_size_survival(d, 0.7, median_control=12)
    with pytest.raises(ImmunoSepError, match="accrual_time must be a positive time"):
        sample_size_survival(d, 0.7, median_control=12, accrual_time=0, follow_up_time=12)
