"""The virtual CRF inputs score back, through the trial's own SOFA code, to what the model drew."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosep.clinical.renal import creatinine_clearance_ml_min
from immunosep.clinical.sofa import SOFA_INPUT_COLUMNS, sofa
from immunosep.clinical.units import PLAUSIBLE, measured
from immunosep.protocol import default_protocol
from immunosep.simulate.daily_inputs import (
    _BILIRUBIN_MG_DL,
    _CREATININE_MG_DL,
    _PAO2_FIO2_MMHG,
    _PLATELETS_1E3_UL,
    ORGANS,
    baseline_inputs,
    inputs_for_scores,
    split_total,
)
from immunosep.simulate.model import default_parameters
from immunosep.simulate.population import (
    CARDIOVASCULAR_INPUTS,
    GCS_RANGE,
    draw_baseline,
    draw_enrolled,
)

CRF_ONLY = ("mechanical_ventilation", "vasopressors", "ckrt")


def score(inputs: dict[str, object]) -> list[int]:
    """Organ scores of CRF inputs by clinical.sofa (the function the CRF service calls)."""
    kwargs = {k: v for k, v in inputs.items() if k not in CRF_ONLY}
    renamed = {"bilirubin": "bilirubin_mg_dl", "creatinine": "creatinine_mg_dl"}
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


# -- virtual values are never refused by the bedside rules ----------------------------------------------
BANDS = {
    "pao2_fio2_mmhg": _PAO2_FIO2_MMHG,
    "platelets_1e3_ul": _PLATELETS_1E3_UL,
    "bilirubin_mg_dl": _BILIRUBIN_MG_DL,
    "creatinine_mg_dl": _CREATININE_MG_DL,
}


def test_every_band_lies_inside_the_plausible_range() -> None:
    for name, bands in BANDS.items():
        for low, high in bands:
            assert PLAUSIBLE[name].low <= low <= high <= PLAUSIBLE[name].high, name
    for (map_low, map_high), drug, (dose_low, dose_high) in CARDIOVASCULAR_INPUTS:
        measured("map_mmhg", [map_low, map_high])
        if drug is not None:
            measured(drug, [dose_low, dose_high])
    measured("gcs", [g for band in GCS_RANGE for g in band])


def test_the_models_baseline_is_never_refused_by_the_bedside_rules() -> None:
    """A large draw of day-1 inputs and demographics: every value passes the CRF's, screening's and
    Cockcroft-Gault's checks (the seed-3 demo once stopped on a drawn creatinine of 0.05 mg/dL)."""
    protocol, params = default_protocol(), default_parameters()
    rng = np.random.default_rng(3)
    enrolled = draw_enrolled(rng, 1, 100_000, params, protocol)
    columns = draw_baseline(rng, enrolled, params, protocol).columns
    for name in (*SOFA_INPUT_COLUMNS, "age_years", "weight_kg", "height_cm"):
        if name in columns and name != "ventilated":
            measured(name, columns[name], missing_ok=False)
    crcl = creatinine_clearance_ml_min(
        columns["age_years"],
        columns["weight_kg"],
        columns["sex"],
        columns["creatinine_mg_dl"],
        protocol=protocol,
    )
    assert np.isfinite(crcl).all() and (crcl > 0).all()
