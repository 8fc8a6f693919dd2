"""The daily CRF inputs of a virtual patient-day: values an ICU would chart that score to the model's SOFA.

The outcome model produces a daily SOFA *total*; the CRF records the six organs' inputs (PaO2/FiO2,
platelets, bilirubin, MAP and vasopressors, GCS, creatinine and urine output) and the trial's own SOFA code
scores them. :func:`split_total` spreads a total over the organs, starting from the patient's baseline
profile (organs recover or fail one point at a time, the most deranged first), and :func:`inputs_for_scores`
draws a value inside each organ's Vincent 1996 band. Scoring the inputs back gives exactly the total
(tested, and checked by the trial runner for every day it records). Every value lies inside the plausible
range the bedside rules check (``clinical.units.PLAUSIBLE``), and the units are stated on the form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from immunosep.simulate.population import CARDIOVASCULAR_INPUTS, GCS_RANGE

#: SOFA organs in the order of the CRF and of ``Baseline.columns["sofa_<organ>"]``.
ORGANS = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
MAX_POINTS = 4

#: The virtual sites' laboratories report bilirubin and creatinine in mg/dL, and say so on every CRF.
LAB_UNIT = "mg/dL"

# Value ranges (low, high) inside each band of Vincent 1996, score 0..4; half-open boundaries as in
# clinical.sofa, kept clear of the boundary after rounding, and inside the plausible ranges of
# clinical.units.PLAUSIBLE (tested), so that the CRF never refuses a virtual value.
_PAO2_FIO2_MMHG = ((400.0, 480.0), (300.0, 399.0), (200.0, 299.0), (100.0, 199.0), (55.0, 99.0))
_PLATELETS_1E3_UL = ((150.0, 380.0), (100.0, 149.0), (50.0, 99.0), (20.0, 49.0), (5.0, 19.0))
_BILIRUBIN_MG_DL = ((0.3, 1.1), (1.2, 1.9), (2.0, 5.9), (6.0, 11.9), (12.0, 22.0))
_CREATININE_MG_DL = ((0.5, 1.1), (1.2, 1.9), (2.0, 3.4), (3.5, 4.9), (5.0, 8.0))


def split_total(baseline: Sequence[int], total: int, rng: np.random.Generator) -> list[int]:
    """Organ scores (0-4 each, in :data:`ORGANS` order) that add up to ``total`` (clipped to 0-24).

    From the baseline profile, a falling total takes a point from the most deranged organ (ties at
    random) and a rising one adds a point to an organ with room, more often to one deranged at baseline.
    """
    scores = [int(min(max(s, 0), MAX_POINTS)) for s in baseline]
    if len(scores) != len(ORGANS):
        raise ValueError(f"baseline needs {len(ORGANS)} organ scores, got {len(scores)}")
    target = int(min(max(total, 0), MAX_POINTS * len(ORGANS)))
    weights = np.asarray(scores, dtype=np.float64) + 1.0
    while sum(scores) > target:
        top = max(scores)
        candidates = [i for i, s in enumerate(scores) if s == top]
        scores[int(rng.choice(candidates))] -= 1
    while sum(scores) < target:
        room = np.array([s < MAX_POINTS for s in scores])
        w = np.where(room, weights, 0.0)
        scores[int(rng.choice(len(scores), p=w / w.sum()))] += 1
    return scores


def _within(bands: tuple[tuple[float, float], ...], score: int, rng: np.random.Generator) -> float:
    low, high = bands[score]
    return float(rng.uniform(low, high))


def inputs_for_scores(
    scores: Sequence[int], rng: np.random.Generator, *, ventilated: bool, on_ckrt: bool
) -> dict[str, Any]:
    """Keyword arguments of :class:`immunosep.conduct.crf.DailyInputs` that score to ``scores``.

    ``ventilated`` is the patient's ventilation that day (forced on for respiration 3-4, which need it);
    ``on_ckrt``: continuous kidney replacement therapy that day (charted with renal 3-4 only).
    """
    resp, coag, liver, cv, cns, renal = (int(s) for s in scores)
    (map_low, map_high), drug, (dose_low, dose_high) = CARDIOVASCULAR_INPUTS[cv]
    gcs_low, gcs_high = GCS_RANGE[cns]
    mechanically_ventilated = ventilated or resp >= 3
    inputs: dict[str, Any] = {
        "pao2_fio2_mmhg": round(_within(_PAO2_FIO2_MMHG, resp, rng)),
        "ventilated": mechanically_ventilated,
        "platelets_1e3_ul": round(_within(_PLATELETS_1E3_UL, coag, rng)),
        "bilirubin": round(_within(_BILIRUBIN_MG_DL, liver, rng), 1),
        "bilirubin_unit": LAB_UNIT,
        "map_mmhg": round(float(rng.uniform(map_low, map_high))),
        "gcs": int(rng.integers(gcs_low, gcs_high + 1)),
        "creatinine": round(_within(_CREATININE_MG_DL, renal, rng), 2),
        "creatinine_unit": LAB_UNIT,
        "urine_ml_day": round(float(rng.uniform(700.0, 2600.0))),
        "mechanical_ventilation": mechanically_ventilated,
        "vasopressors": drug is not None,
        "ckrt": on_ckrt and renal >= 3,
    }
    if drug is not None:
        inputs[drug] = round(float(rng.uniform(dose_low, dose_high)), 3)
    return inputs


def baseline_inputs(columns: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    """The day-1 CRF inputs of patient ``i`` from the model's baseline draw (exactly what it scored)."""

    def value(name: str) -> float:
        return float(columns[name][i])

    dobutamine, norepinephrine = value("dobutamine_ug_kg_min"), value("norepinephrine_ug_kg_min")
    ventilated = bool(columns["ventilated"][i])
    return {
        "pao2_fio2_mmhg": value("pao2_fio2_mmhg"),
        "ventilated": ventilated,
        "platelets_1e3_ul": value("platelets_1e3_ul"),
        "bilirubin": value("bilirubin_mg_dl"),
        "bilirubin_unit": LAB_UNIT,
        "map_mmhg": value("map_mmhg"),
        "dobutamine_ug_kg_min": dobutamine if dobutamine > 0 else None,
        "norepinephrine_ug_kg_min": norepinephrine if norepinephrine > 0 else None,
        "gcs": int(value("gcs")),
        "creatinine": value("creatinine_mg_dl"),
        "creatinine_unit": LAB_UNIT,
        "urine_ml_day": value("urine_ml_day"),
        "mechanical_ventilation": ventilated,
        "vasopressors": dobutamine > 0 or norepinephrine > 0,
        "ckrt": bool(columns["cvvh"][i]),
    }
