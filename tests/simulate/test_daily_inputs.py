"""The virtual CRF inputs score back, through the trial's own SOFA code, to what the model drew."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosep.clinical.sofa import sofa
from immunosep.protocol import default_protocol
from immunosep.simulate.daily_inputs import ORGANS, baseline_inputs, inputs_for_scores, split_total
from immunosep.simulate.model import default_parameters
from immunosep.simulate.population import draw_baseline, draw_enrolled

CRF_ONLY = ("mechanical_ventilation", "vasopressors", "ckrt")


def score(inputs: dict[str, object]) -> list[int]:
    """Organ scores of CRF inputs by clinical.sofa (the function the CRF service calls)."""
    kwargs = {k: v for k, v in inputs.items() if k not in CRF_ONLY}
    renamed = {
        "dobutamine_ug_kg_min": "dobutamine",
        "norepinephrine_ug_kg_min": "norepinephrine",
        "dopamine_ug_kg_min": "dopamine",
        "epinephrine_ug_kg_min": "epinephrine",
    }
    result = sofa(**{renamed.get(k, k): v for k, v in kwargs.items()})  # type: ignore[arg-type]
    assert not result.missing
    return [getattr(result, organ) for organ in ORGANS]


@given(
    baseline=st.lists(st.integers(0, 4), min_size=6, max_size=6),
    total=st.integers(-3, 30),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=300, deadline=None)
def test_split_total_adds_up_within_each_organs_range(baseline: list[int], total: int, seed: int) -> None:
    scores = split_total(baseline, total, np.random.default_rng(seed))
    assert sum(scores) == min(max(total, 0), 24)
    assert all(0 <= s <= 4 for s in scores)


def test_split_total_takes_points_from_the_most_deranged_organ_first() -> None:
    rng = np.random.default_rng(0)
    assert split_total([4, 1, 0, 0, 2, 1], 7, rng) == [3, 1, 0, 0, 2, 1]
    assert split_total([4, 1, 0, 0, 2, 1], 4, rng) == [1, 1, 0, 0, 1, 1]


def test_split_total_refuses_a_wrong_profile() -> None:
    with pytest.raises(ValueError, match="6 organ scores"):
        split_total([1, 2, 3], 4, np.random.default_rng(0))


@pytest.mark.parametrize("organ", range(len(ORGANS)))
@pytest.mark.parametrize("points", range(5))
def test_each_band_scores_its_points(organ: int, points: int) -> None:
    rng = np.random.default_rng(organ * 10 + points)
    for ventilated, on_ckrt in itertools.product((False, True), repeat=2):
        for _ in range(40):  # values drawn across the band, boundaries after rounding included
            scores = [0] * len(ORGANS)
            scores[organ] = points
            inputs = inputs_for_scores(scores, rng, ventilated=ventilated, on_ckrt=on_ckrt)
            assert score(inputs) == scores


@given(scores=st.lists(st.integers(0, 4), min_size=6, max_size=6), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=300, deadline=None)
def test_any_profile_scores_back_exactly(scores: list[int], seed: int) -> None:
    inputs = inputs_for_scores(scores, np.random.default_rng(seed), ventilated=False, on_ckrt=True)
    assert score(inputs) == scores
    # Respiration 3-4 needs ventilation (Vincent 1996): the inputs say so, on the CRF too.
    assert inputs["ventilated"] == inputs["mechanical_ventilation"] == (scores[0] >= 3)
    assert inputs["vasopressors"] == (scores[3] >= 2)
    assert inputs["ckrt"] == (scores[5] >= 3)


def test_baseline_inputs_are_the_models_day_one() -> None:
    protocol, params = default_protocol(), default_parameters()
    rng = np.random.default_rng(7)
    enrolled = draw_enrolled(rng, 1, 200, params, protocol)
    columns = draw_baseline(rng, enrolled, params, protocol).columns
    for i in range(200):
        scores = score(baseline_inputs(columns, i))
        assert scores == [int(columns[f"sofa_{organ}"][i]) for organ in ORGANS]
        assert sum(scores) == int(columns["sofa_total"][i])
