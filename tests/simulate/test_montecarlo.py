"""Monte Carlo engine: vectorized Fisher, reproducibility across workers, type I error, power, protocol."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import fisher_exact

from immunosep.errors import ImmunoSepError
from immunosep.protocol import bundled_protocol_path, default_protocol, parse_protocol
from immunosep.protocol.schema import Protocol
from immunosep.simulate.model import default_parameters
from immunosep.simulate.montecarlo import (
    BLOCK_TRIALS,
    dask_runner,
    design,
    fisher_two_sided_p,
    run_serial,
    sample_size_by_simulation,
)
from immunosep.stats import fisher_exact_power

PROTOCOL = default_protocol()
PARAMS = default_parameters()


def _protocol_with(old: str, new: str) -> Protocol:
    text = bundled_protocol_path().read_text(encoding="utf-8")
    assert old in text
    return parse_protocol(text.replace(old, new, 1), source="variant")


def test_vectorized_fisher_equals_scipy_on_random_and_edge_tables() -> None:
    rng = np.random.default_rng(2025)
    n1 = rng.integers(1, 160, 4000)
    n2 = rng.integers(1, 160, 4000)
    x1 = rng.integers(0, n1 + 1)
    x2 = rng.integers(0, n2 + 1)
    # edge cases: empty columns, full rows, balanced ties, the published primary table
    edges = np.array([[0, 10, 0, 12], [10, 10, 12, 12], [5, 10, 5, 10], [0, 1, 1, 1], [46, 131, 26, 145]])
    x1, n1, x2, n2 = (np.concatenate([v, edges[:, j]]) for j, v in enumerate((x1, n1, x2, n2)))
    ours = fisher_two_sided_p(x1, n1, x2, n2)
    reference = np.array(
        [fisher_exact([[a, b - a], [c, d - c]]).pvalue for a, b, c, d in zip(x1, n1, x2, n2, strict=True)]
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
    assert ours[-1] == pytest.approx(0.002, abs=0.0005)  # Table 2: P = .002


def test_fisher_rejects_impossible_tables() -> None:
    with pytest.raises(ImmunoSepError, match="0 <= x <= n"):
        fisher_two_sided_p([5], [4], [1], [3])


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
    from immunosep.simulate.montecarlo import allocate_arms_many

    arms = allocate_arms_many(np.random.default_rng(0), 3, 300, two_to_one)
    assert ((arms == "precision").sum(axis=1) == 200).all()


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
