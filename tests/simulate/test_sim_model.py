"""Model parameters, fitted distributions and the virtual patients' consistency with clinical rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from immunosep.clinical.immune import classify_arrays
from immunosep.clinical.sidf import sidf_reversal
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.simulate.cohort import allocate_arms, simulate_trial
from immunosep.simulate.model import (
    TruncatedLogNormal,
    default_parameters,
    load_parameters,
    ordinal_from_latent,
)
from immunosep.simulate.population import (
    IMMUNOPARALYSIS,
    MALS,
    UNCLASSIFIED,
    draw_biomarkers,
    draw_screening_log,
    expected_randomized_fraction,
    trial_sites,
)
from immunosep.simulate.trajectories import BiomarkerDraws, draw_availability, sidf_of_draws

PROTOCOL = default_protocol()
PARAMS = default_parameters()


def test_bundled_parameters_load_and_bad_files_say_what_is_wrong(tmp_path: Path) -> None:
    assert load_parameters(None) is PARAMS
    bad = tmp_path / "bad.toml"
    bad.write_text("[screening]\nreasons = {}\n", encoding="utf-8")
    with pytest.raises(ImmunoSepError, match="not a valid model parameter file"):
        load_parameters(bad)
    with pytest.raises(ImmunoSepError, match="does not exist"):
        load_parameters(tmp_path / "missing.toml")


def test_truncated_lognormal_fit_reproduces_quartiles_and_respects_the_bound() -> None:
    # MALS ferritin (Table 1, pooled): median 5830, IQR 5000-7250, all > 4420 ng/mL
    dist = TruncatedLogNormal.fit_quantiles(5830.0, 5000.0, 7250.0, lower=4420.0)
    q1, med, q3 = dist.quantile([0.25, 0.5, 0.75])
    assert med == pytest.approx(5830.0, rel=0.03)
    assert q1 == pytest.approx(5000.0, rel=0.05)
    assert q3 == pytest.approx(7250.0, rel=0.05)
    assert dist.quantile(np.array([0.0, 1e-15])).min() > 4420.0


def test_biomarkers_classify_into_their_stratum_by_the_protocol_rule() -> None:
    rng = np.random.default_rng(1)
    strata = np.array([MALS, IMMUNOPARALYSIS, UNCLASSIFIED] * 3000)
    ferritin, hla_dr = draw_biomarkers(rng, strata, PARAMS, PROTOCOL)
    np.testing.assert_array_equal(classify_arrays(ferritin, hla_dr, PROTOCOL), strata)


def test_screening_funnel_matches_the_consort_fraction_and_reasons_are_protocol_codes() -> None:
    log = draw_screening_log(np.random.default_rng(2), 20000, PARAMS, PROTOCOL)
    randomized = np.mean([p.reason == "" for p in log])
    assert randomized == pytest.approx(281 / 672, abs=0.015)
    assert expected_randomized_fraction(PARAMS) == pytest.approx(281 / 672, abs=0.005)
    codes = {e.code for e in PROTOCOL.eligibility.exclusions}
    assert codes <= {p.reason for p in log}
    unclassified = [p for p in log if p.reason == UNCLASSIFIED]
    assert all(p.stratum == UNCLASSIFIED for p in unclassified)
    eligible = [p for p in log if p.reason == ""]
    assert {p.stratum for p in eligible} == {MALS, IMMUNOPARALYSIS}


def test_sites_are_uneven_and_span_six_countries() -> None:
    sites = trial_sites(PARAMS, PROTOCOL)
    assert len(sites.codes) == PROTOCOL.trial.sites == 33
    assert len(set(sites.countries)) == 6
    assert sites.weights.sum() == pytest.approx(1.0)
    assert sites.weights.max() > 5 * sites.weights.min()


def test_arms_follow_the_protocol_ratio_exactly() -> None:
    arms = allocate_arms(np.random.default_rng(0), 281, PROTOCOL)
    assert sorted(np.unique(arms, return_counts=True)[1].tolist()) == [140, 141]


def test_ordinal_cut_points_reproduce_the_marginal_probabilities() -> None:
    latent = np.random.default_rng(3).standard_normal(200_000)
    state = ordinal_from_latent(latent, [58, 11, 32, 30])
    np.testing.assert_allclose(np.bincount(state) / latent.size, np.array([58, 11, 32, 30]) / 131, atol=0.005)


def test_same_seed_same_trial_and_baseline_sofa_is_scored_from_its_inputs() -> None:
    a = simulate_trial(np.random.default_rng(11), 281, PARAMS, PROTOCOL)
    b = simulate_trial(np.random.default_rng(11), 281, PARAMS, PROTOCOL)
    np.testing.assert_array_equal(a.outcomes.sofa, b.outcomes.sofa)
    cols = a.baseline.columns
    parts = sum(
        np.asarray(cols[f"sofa_{c}"], dtype=int)
        for c in ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
    )
    np.testing.assert_array_equal(parts, np.asarray(cols["sofa_total"], dtype=int))
    np.testing.assert_array_equal(a.outcomes.sofa[:, 0], cols["sofa_total"])
    # SOFA is recorded until death, discharge or withdrawal, then missing
    death = a.outcomes.death_day
    dead_early = np.flatnonzero(death <= 5)
    assert dead_early.size > 0
    for i in dead_early:
        assert np.isnan(a.outcomes.sofa[i, int(death[i]) :]).all()


def test_virtual_patients_sidf_equals_the_clinical_rule() -> None:
    # The simulator's arrays are those of clinical.sidf; here against the scalar rule, one patient at a time.
    trial = simulate_trial(np.random.default_rng(5), 2000, PARAMS, PROTOCOL)
    days = list(trial.biomarkers.draw_days)
    for i in range(trial.strata.size):
        stratum = str(trial.strata[i])
        values = trial.biomarkers.ferritin_ng_ml[i] if stratum == MALS else trial.biomarkers.hla_dr[i]
        expected = sidf_reversal(stratum, days, [float(v) for v in values], PROTOCOL)
        assert (expected.reversed, expected.assessable) == (
            bool(trial.sidf_reversed[i]),
            bool(trial.sidf_assessable[i]),
        ), (i, stratum, values)
    # the course builder makes the rule see the intended course, for every patient in the SIDF population
    intended = trial.biomarkers.intended_reversal
    np.testing.assert_array_equal(trial.sidf_reversed, intended & trial.sidf_assessable)


def test_patients_whose_sofa_improves_reverse_more_often() -> None:
    # The reversal latent loads on the clinical response latent z with the same sign as infection and
    # death: improvers (z above its median) reverse more than the others, in both arms.
    trial = simulate_trial(np.random.default_rng(11), 6000, PARAMS, PROTOCOL)
    improver = trial.outcomes.response > np.median(trial.outcomes.response)
    for arm in ("precision", "placebo"):
        sel = trial.arms == arm
        better = trial.biomarkers.intended_reversal[sel & improver].mean()
        worse = trial.biomarkers.intended_reversal[sel & ~improver].mean()
        assert better > worse + 0.05, (arm, better, worse)


def _random_draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, BiomarkerDraws]:
    """Random series near both criteria with random gaps (not built by the course model)."""
    days = tuple(PROTOCOL.biospecimens.days)
    k = len(days)
    strata = rng.choice([MALS, IMMUNOPARALYSIS], n)
    base_f = rng.choice([4421.0, 5000.0, 10000.0, 20000.0], n)
    ferritin = np.round(base_f[:, None] * rng.choice([0.5, 0.849, 0.85, 0.851, 1.0, 1.3], (n, k)))
    hla = rng.choice([2000.0, 7999.0, 8000.0, 8001.0, 12000.0], (n, k))
    ferritin[:, 0] = base_f
    hla[:, 0] = rng.choice([1000.0, 3000.0, 4999.0], n)
    gaps = rng.random((n, k)) < rng.choice([0.0, 0.3, 0.6], n)[:, None]
    ferritin[gaps], hla[gaps] = np.nan, np.nan
    return strata, BiomarkerDraws(days, ferritin, hla, np.zeros(n, bool))


@pytest.mark.parametrize("criterion", ["level", "rise"])
def test_sidf_of_draws_equals_the_scalar_rule_on_random_series(criterion: str) -> None:
    protocol = PROTOCOL.model_copy(
        update={"sidf": PROTOCOL.sidf.model_copy(update={"immunoparalysis_hla_dr_criterion": criterion})}
    )
    strata, draws = _random_draws(np.random.default_rng(11), 4000)
    got = sidf_of_draws(strata, draws, protocol)
    days = list(draws.draw_days)
    for i, stratum in enumerate(strata.tolist()):
        values = draws.ferritin_ng_ml[i] if stratum == MALS else draws.hla_dr[i]
        want = sidf_reversal(stratum, days, [None if np.isnan(v) else float(v) for v in values], protocol)
        day = None if np.isnan(got.day[i]) else int(got.day[i])
        assert (bool(got.reversed[i]), day, bool(got.assessable[i])) == (
            want.reversed,
            want.day,
            want.assessable,
        )
    assert 200 < got.reversed.sum() < (got.assessable & ~got.reversed).sum()


def test_draws_stop_at_death_and_thin_out_after_icu_discharge() -> None:
    rng = np.random.default_rng(3)
    days = tuple(PROTOCOL.biospecimens.days)
    n = 20000
    death = np.where(np.arange(n) % 2 == 0, 4.0, np.nan)  # half die on day 4
    discharge = np.where(np.arange(n) % 4 == 1, 3.0, np.nan)  # a quarter leave the ICU alive on day 3
    available = draw_availability(rng, days, death, discharge, PARAMS)
    assert available[:, 0].all()  # the baseline sample classified the patient
    assert not available[death == 4.0][:, days.index(4) :].any()  # no draw on or after the day of death
    b = PARAMS.biomarkers
    serial = available[:, 1:].any(axis=1)
    icu = np.isnan(death) & np.isnan(discharge)
    ward = np.isnan(death) & (discharge == 3.0)
    # day 7: taken with probability serial_sampling x the ICU or the after-discharge rate
    j = days.index(7)
    assert available[icu, j].mean() == pytest.approx(b.serial_sampling * b.draw_taken_in_icu, abs=0.02)
    assert available[ward, j].mean() == pytest.approx(b.serial_sampling * b.draw_taken_after_icu, abs=0.02)
    assert serial.mean() < b.serial_sampling + 0.01  # patients without serial samples have none


def test_null_effect_makes_the_arms_identical() -> None:
    null = PARAMS.with_null_effect()
    slopes = null.sofa_trajectory.slope_mean_points_per_day
    assert slopes["mals_precision"] == slopes["mals_placebo"]
    assert slopes["immunoparalysis_precision"] == slopes["immunoparalysis_placebo"]
    assert null.mortality.precision == null.mortality.placebo
    assert null.infection_day15.precision == null.infection_day15.placebo
    assert PARAMS.mortality.precision != PARAMS.mortality.placebo  # the original is untouched
