"""Virtual patients behave like patients: Sepsis-3 at screening, death by baseline severity, deaths that
follow the clinical course, and the published marginal rates kept whatever the severity weights."""

from __future__ import annotations

import numpy as np
import pytest

from immunosep.clinical.sepsis3 import sepsis3_arrays
from immunosep.protocol import bundled_protocol_path, default_protocol, parse_protocol
from immunosep.simulate.cohort import simulate_trial
from immunosep.simulate.model import ModelParameters, default_parameters
from immunosep.simulate.population import (
    draw_baseline,
    draw_baseline_sofa_inputs,
    draw_enrolled,
    score_inputs,
)

PROTOCOL = default_protocol()
PARAMS = default_parameters()


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return simulate_trial(np.random.default_rng(2026), 20_000, PARAMS, PROTOCOL)


def test_unconditioned_baselines_would_include_patients_without_sepsis() -> None:
    # the check below can fail: drawn without the Sepsis-3 rule, some patients score SOFA < 2
    rng = np.random.default_rng(1)
    severity = rng.standard_normal(50_000)
    scores = score_inputs(draw_baseline_sofa_inputs(rng, severity, PARAMS, PROTOCOL))
    assert (scores["sofa_total"] < PROTOCOL.eligibility.min_sofa).sum() > 50


def test_no_randomized_patient_fails_sepsis3(cohort) -> None:  # type: ignore[no-untyped-def]
    sofa = np.asarray(cohort.baseline.columns["sofa_total"], dtype=float)
    assert sepsis3_arrays(sofa, None, True, PROTOCOL).all()
    assert sofa.min() >= PROTOCOL.eligibility.min_sofa == 2
    assert np.array_equal(cohort.outcomes.sofa[:, 0], sofa)  # day 1 of the CRF is that baseline


def test_screening_reads_the_rule_from_the_protocol() -> None:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    assert "min_sofa = 2\n" in text
    strict = parse_protocol(text.replace("min_sofa = 2\n", "min_sofa = 8\n", 1), source="variant")
    rng = np.random.default_rng(4)
    enrolled = draw_enrolled(rng, 1, 3000, PARAMS, strict)
    for full in (True, False):
        sofa = draw_baseline(rng, enrolled, PARAMS, strict, full=full).sofa_total
        assert sofa.min() >= 8
        assert sepsis3_arrays(sofa, None, True, strict).all()


def _death_28(cohort) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(cohort.outcomes.death_day <= 28)


def test_death_depends_on_baseline_severity_and_stratum(cohort) -> None:  # type: ignore[no-untyped-def]
    died = _death_28(cohort)
    cols = cohort.baseline.columns
    for column, cut in (("apache2", 25), ("charlson", 5), ("sofa_total", 10)):
        high = np.asarray(cols[column]) >= cut
        assert died[high].mean() > died[~high].mean() + 0.08, column
    mals = cohort.biology == "mals"
    assert died[mals].mean() > died[~mals].mean()


def test_patients_whose_sofa_improves_die_less(cohort) -> None:  # type: ignore[no-untyped-def]
    died = _death_28(cohort)
    improving = cohort.outcomes.response > 0
    assert died[improving].mean() < died[~improving].mean() - 0.15


def _mortality_by_arm(params: ModelParameters) -> dict[str, list[float]]:
    trial = simulate_trial(np.random.default_rng(9), 100_000, params, PROTOCOL)
    out = {}
    for arm in ("precision", "placebo"):
        death = trial.outcomes.death_day[trial.arms == arm]
        out[arm] = [float(np.mean(death <= d)) for d in params.mortality.cumulative_days]
    return out


@pytest.mark.parametrize("severity_loading", [0.0, 0.45, 0.7])
def test_marginal_mortality_by_arm_is_as_published_whatever_the_severity_weight(
    severity_loading: float,
) -> None:
    params = PARAMS.model_copy(
        update={"mortality": PARAMS.mortality.model_copy(update={"severity_loading": severity_loading})}
    )
    observed = _mortality_by_arm(params)
    for arm in ("precision", "placebo"):
        # 50,000 per arm: binomial SE <= 0.0023
        np.testing.assert_allclose(observed[arm], getattr(params.mortality, arm), atol=0.008)


def test_the_fast_path_draws_what_death_depends_on() -> None:
    rng = np.random.default_rng(3)
    enrolled = draw_enrolled(rng, 1, 500, PARAMS, PROTOCOL)
    fast = draw_baseline(rng, enrolled, PARAMS, PROTOCOL, full=False).columns
    for column in ("apache2", "charlson", "sofa_total"):
        assert column in fast
    assert "sex" not in fast


def test_related_serious_aes_reach_the_published_share_of_patients(cohort) -> None:  # type: ignore[no-untyped-def]
    ae = PARAMS.adverse_events
    related = {e.patient for e in cohort.adverse_events if e.relatedness in set(ae.related_levels)}
    flags = np.zeros(cohort.arms.size, dtype=bool)
    flags[list(related)] = True
    for arm in ("precision", "placebo"):
        assert flags[cohort.arms == arm].mean() == pytest.approx(
            ae.any_related[arm] / ae.analysed[arm], abs=0.006
        )
