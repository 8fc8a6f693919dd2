"""Monte Carlo engine: one allocator, reproducibility across workers, type I error, power, protocol, lean workers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from immunosep.clinical.immune import classify_codes
from immunosep.errors import ImmunoSepError
from immunosep.protocol import bundled_protocol_path, default_protocol, parse_protocol
from immunosep.protocol.schema import Protocol
from immunosep.simulate.cohort import allocate_arm_codes, allocate_arms
from immunosep.simulate.model import default_parameters
from immunosep.simulate.montecarlo import (
    BLOCK_TRIALS,
    block_plan,
    dask_runner,
    design,
    run_serial,
    sample_size_by_simulation,
    simulate_block,
)
from immunosep.simulate.population import (
    draw_enrolled,
    draw_enrolled_codes,
    draw_outcome_baseline,
    stratum_names,
)
from immunosep.simulate.trajectories import (
    _linear_risk,
    _risk_counts,
    draw_outcomes,
    draw_outcomes_flags,
    effective_treatment,
    effective_treatment_flags,
    risk_reference,
)
from immunosep.stats import fisher_exact_power

PROTOCOL = default_protocol()
PARAMS = default_parameters()


def _protocol_with(old: str, new: str) -> Protocol:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    assert old in text
    return parse_protocol(text.replace(old, new, 1), source="variant")


def test_same_seed_same_result_and_blocks_are_seeded_independently_of_workers() -> None:
    trials = BLOCK_TRIALS + 37  # two blocks, the last one partial
    serial = design(PARAMS, PROTOCOL, trials=trials, patients=120, seed=9, use_dask=False)
    with dask_runner(workers=1) as run:
        threaded = design(PARAMS, PROTOCOL, trials=trials, patients=120, seed=9, runner=run)
    assert serial.as_dict() == threaded.as_dict()
    other = design(PARAMS, PROTOCOL, trials=trials, patients=120, seed=10, use_dask=False)
    assert other.as_dict() != serial.as_dict()


def test_type_one_error_under_the_null_is_at_most_alpha_within_mc_error() -> None:
    result = design(PARAMS, PROTOCOL, trials=3000, patients=234, seed=1, null=True, use_dask=False)
    data = result.as_dict()
    assert "power" not in data
    for endpoint in ("primary", "mortality_28d"):
        rate, mcse = data["type1_error"][endpoint], data["mcse"][endpoint]
        assert rate <= 0.05 + 2 * mcse
        rates = data["mean_rates"][endpoint]
        assert rates["precision"] == pytest.approx(rates["placebo"], abs=0.01)


def test_power_at_117_per_group_agrees_with_exact_fisher_power_at_the_simulated_rates() -> None:
    # With iid patients the arm counts are binomial, so the simulated power must match the exact power
    # of the Fisher test (immunosep.stats, enumeration) at the simulated mean rates, within MC error.
    result = design(PARAMS, PROTOCOL, trials=2000, patients=234, seed=2, use_dask=False)
    primary = result.endpoints["primary"]
    assert primary.rate_precision == pytest.approx(46 / 131, abs=0.02)
    assert primary.rate_placebo == pytest.approx(26 / 145, abs=0.02)
    exact = fisher_exact_power(115, primary.rate_precision, primary.rate_placebo, 0.05)  # ~2% withdraw
    assert primary.rejection_rate == pytest.approx(exact, abs=3 * primary.mcse + 0.02)
    assert 0.7 < primary.rejection_rate < 0.9
    assert result.endpoints["mortality_28d"].rejection_rate < 0.3


def test_protocol_endpoint_threshold_and_window_drive_the_simulation() -> None:
    base = design(PARAMS, PROTOCOL, trials=400, patients=200, seed=3, use_dask=False).endpoints["primary"]
    stricter = _protocol_with("min_decrease = 1.4", "min_decrease = 3.0")
    strict = design(PARAMS, stricter, trials=400, patients=200, seed=3, use_dask=False).endpoints["primary"]
    assert strict.rate_precision < base.rate_precision - 0.05
    assert strict.rate_placebo < base.rate_placebo - 0.03


def test_classification_thresholds_change_who_is_enrolled_and_dilute_the_effect() -> None:
    # A MALS threshold of 1000 ng/mL enrolls immunoparalysis patients into MALS: they get anakinra,
    # which the model lets help only true MALS, so the pooled effect shrinks.
    lowered = _protocol_with("mals_ferritin_above = 4420.0", "mals_ferritin_above = 1000.0")
    base = design(PARAMS, PROTOCOL, trials=400, patients=200, seed=4, use_dask=False).endpoints["primary"]
    diluted = design(PARAMS, lowered, trials=400, patients=200, seed=4, use_dask=False).endpoints["primary"]
    assert diluted.difference["mean"] < base.difference["mean"] - 0.03


def test_unequal_ratio_from_the_protocol() -> None:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    text = text.replace(
        '[[arms]]\ncode = "precision"\nlabel = "Precision immunotherapy"\nratio = 1',
        '[[arms]]\ncode = "precision"\nlabel = "Precision immunotherapy"\nratio = 2',
    )
    text = text.replace("ratio = [1, 1]\nblock_sizes = [2, 4, 6]", "ratio = [2, 1]\nblock_sizes = [3, 6]")
    two_to_one = parse_protocol(text, source="2:1")
    arms = allocate_arms(np.random.default_rng(0), 300, two_to_one, trials=3)
    assert arms.shape == (3, 300)
    assert ((arms == "precision").sum(axis=1) == 200).all()


def test_one_allocator_for_one_trial_and_many() -> None:
    """The cohort and the Monte Carlo engine share one allocator and one random stream: trial after trial,
    the rows of a many-trial draw are the draws of one trial at a time."""
    many = allocate_arms(np.random.default_rng(7), 281, PROTOCOL, trials=4)
    rng = np.random.default_rng(7)
    one_by_one = np.stack([allocate_arms(rng, 281, PROTOCOL) for _ in range(4)])
    np.testing.assert_array_equal(many, one_by_one)
    assert ((many == "precision").sum(axis=1) == 141).all()
    assert len({tuple(row) for row in many}) == 4  # each trial permuted on its own


def test_sample_size_by_simulation_brackets_the_target() -> None:
    found = sample_size_by_simulation(
        PARAMS, PROTOCOL, target_power=0.8, trials=400, seed=5, max_patients=600
    )
    assert found["power"] >= 0.8
    assert 150 <= found["patients"] <= 320
    smaller = design(PARAMS, PROTOCOL, trials=400, patients=found["patients"] - 2, seed=5, runner=run_serial)
    assert smaller.endpoints["primary"].rejection_rate < 0.8 + 3 * smaller.endpoints["primary"].mcse


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(ImmunoSepError, match="at least 1 trial"):
        design(PARAMS, PROTOCOL, trials=0, patients=100, use_dask=False)
    with pytest.raises(ImmunoSepError, match="target power"):
        sample_size_by_simulation(PARAMS, PROTOCOL, target_power=1.2, trials=10)


def test_the_workers_module_does_not_load_the_statistics_package() -> None:
    """A Dask worker imports this module to simulate blocks; the Fisher test runs in the client only, so
    the workers must not pay for importing statsmodels and lifelines (immunosep.stats) at start-up."""
    code = (
        "import sys, immunosep.simulate.montecarlo\n"
        "print(sorted(m for m in ('immunosep.stats', 'statsmodels', 'lifelines') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_engine_draws_what_the_engine_before_issue_21_drew() -> None:
    """The vectorized fast path (codes, tables, lean kernel) keeps every random draw: these are the
    figures of the engine before it (computed with it), to the last digit."""
    result = design(PARAMS, PROTOCOL, trials=237, patients=120, seed=9, use_dask=False).as_dict()
    assert result["power"] == {"primary": 0.48945147679324896, "mortality_28d": 0.06329113924050633}
    assert result["mean_rates"]["primary"] == {
        "precision": 0.3564521898007704,
        "placebo": 0.18591229134470133,
    }
    ((seed, size),) = block_plan(5, 21)
    block = simulate_block(seed, size, 60, PARAMS, PROTOCOL)
    assert block.n_precision.tolist() == [30, 27, 30, 28, 30]
    assert block.n_placebo.tolist() == [30, 30, 30, 30, 30]
    assert [v.tolist() for v in block.events["primary"]] == [[11, 13, 13, 7, 15], [5, 6, 6, 4, 7]]
    assert [v.tolist() for v in block.events["mortality_28d"]] == [[17, 9, 10, 12, 12], [17, 14, 16, 15, 17]]


def test_one_or_two_workers_any_block_order_and_a_reused_runner_give_identical_results() -> None:
    """Blocks are seeded by their index (SeedSequence.spawn) and sized independently of the workers."""
    kwargs = {"trials": 2 * BLOCK_TRIALS + 11, "patients": 40, "seed": 12}
    serial = design(PARAMS, PROTOCOL, **kwargs, use_dask=False).as_dict()

    def backwards(plan, patients, params, protocol):  # type: ignore[no-untyped-def]
        return run_serial(plan[::-1], patients, params, protocol)[::-1]

    assert design(PARAMS, PROTOCOL, **kwargs, runner=backwards).as_dict() == serial
    with dask_runner(workers=2, processes=False) as run:
        assert design(PARAMS, PROTOCOL, **kwargs, runner=run).as_dict() == serial
        # the same runner again, with equal parameters (the model stays scattered on the workers)
        assert design(PARAMS, PROTOCOL, **kwargs, runner=run).as_dict() == serial


LOWERED = _protocol_with("mals_ferritin_above = 4420.0", "mals_ferritin_above = 1000.0")


@pytest.mark.parametrize("protocol", [PROTOCOL, LOWERED], ids=["published", "mals-1000"])
def test_the_fast_path_draws_what_the_one_trial_api_draws(protocol: Protocol) -> None:
    """Codes for strings, flags for arms, strata from the biomarkers' supports: the same draws."""
    named = draw_enrolled(np.random.default_rng(3), 4, 150, PARAMS, protocol)
    rng = np.random.default_rng(3)
    coded = draw_enrolled_codes(rng, 4, 150, PARAMS, protocol)
    assert stratum_names(coded.biology).tolist() == named.biology.tolist()
    assert stratum_names(coded.stratum).tolist() == named.stratum.tolist()
    np.testing.assert_array_equal(coded.ferritin_ng_ml, named.ferritin_ng_ml)
    after = rng.random()
    rng = np.random.default_rng(3)
    lean = draw_enrolled_codes(rng, 4, 150, PARAMS, protocol, values=False)
    np.testing.assert_array_equal(lean.stratum, coded.stratum)
    assert rng.random() == after
    # every stratum is the classifier's verdict on the drawn biomarkers
    assert classify_codes(coded.ferritin_ng_ml, coded.hla_dr, protocol).tolist() == coded.stratum.tolist()
    if protocol is LOWERED:
        assert (coded.stratum != coded.biology).any()

    arms = allocate_arms(np.random.default_rng(5), 150, protocol, trials=4).ravel()
    codes = allocate_arm_codes(np.random.default_rng(5), 150, protocol, trials=4).ravel()
    assert np.array(protocol.arm_codes)[codes].tolist() == arms.tolist()

    baseline = draw_outcome_baseline(np.random.default_rng(6), arms.size, PARAMS, protocol)
    strata, effective = effective_treatment(named.biology, named.stratum, arms)
    by_name = draw_outcomes(
        np.random.default_rng(8), strata, effective, baseline, PARAMS, protocol, allocated_arms=arms
    )
    mals, precision = effective_treatment_flags(coded.biology, coded.stratum, arms == "precision")
    by_flag = draw_outcomes_flags(
        np.random.default_rng(8), mals, precision, baseline, PARAMS, protocol, arms == "precision"
    )
    for name in ("sofa", "death_day", "discharge_day", "withdrawn", "slope_points_per_day"):
        np.testing.assert_array_equal(getattr(by_flag, name), getattr(by_name, name))


def test_death_risk_table_gives_the_binary_searches_answer() -> None:
    """The table of reference ranks is the two binary searches done once; values outside it (a Charlson
    index of 40 or more, a score that is not a whole number) are searched, with the same answer."""
    ref = risk_reference(PARAMS, PROTOCOL)
    rng = np.random.default_rng(4)
    n = 5000
    columns = {
        "apache2": rng.integers(0, 72, n),
        "charlson": rng.integers(0, 60, n),
        "sofa_total": rng.integers(0, 25, n).astype(np.int8),
    }
    mals = rng.random(n) < 0.2

    def searched(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        risk = _linear_risk(cols, mals, PARAMS, ref.centre, ref.scale)
        return np.searchsorted(ref.sorted_risk, risk, "left"), np.searchsorted(ref.sorted_risk, risk, "right")

    for cols in (columns, {**columns, "apache2": columns["apache2"] + 0.5}):
        below, at_or_below = _risk_counts(ref, cols, mals, PARAMS)
        expected_below, expected_at = searched(cols)
        np.testing.assert_array_equal(below, expected_below)
        np.testing.assert_array_equal(at_or_below, expected_at)
