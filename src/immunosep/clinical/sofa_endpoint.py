"""The SOFA-decrease endpoint kernel: imputation rules and derivation, vectorized over patients.

One pure function, :func:`sofa_decrease`, shared by the analysis datasets (a real trial) and the
simulation engine (virtual trials), so both apply exactly the same rules of the protocol
(``protocol.endpoints.primary`` / ``sofa_d15``, a :class:`~immunosep.protocol.SofaEndpoint`):

1. **Death.** From the day of death to ``death_imputed_until_day`` every day scores ``death_score``
   (24), whatever was recorded on those days. The baseline day is never overwritten: it is the SOFA
   measured before the first dose, so a patient who dies on the baseline day keeps it and scores
   ``death_score`` from the next day on.
2. **Last observation carried forward (LOCF).** A day without a recorded SOFA takes the last SOFA
   recorded (or imputed) before it. This covers discharge from the ICU and loss to follow-up (every day
   after the last recorded one) and, by the same rule, an intermittent missing day between two recorded
   days (it takes the value of the day before). Days after ``death_imputed_until_day`` of a dead patient
   therefore carry ``death_score`` forward.
3. **Baseline.** The SOFA of ``baseline_day``; when it is missing the decrease is NaN and the endpoint
   is not achieved (such a patient cannot be shown to improve).
4. ``decrease = baseline - mean(SOFA over window_first_day..window_last_day)`` and
   ``achieved = decrease >= min_decrease`` (compared with a 1e-9 tolerance, so that a decrease equal to
   the threshold up to floating-point rounding of the mean counts as achieved).

Days are study days: column ``j`` of the SOFA matrix is study day ``j + 1``. Scores are SOFA points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import SofaEndpoint

#: Tolerance of the ``decrease >= min_decrease`` comparison (SOFA points), against rounding of the mean.
ACHIEVED_TOLERANCE_POINTS = 1e-9

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SofaDecrease:
    """The derived endpoint for every patient (arrays of length ``n_patients`` unless said otherwise).

    ``sofa_imputed`` is the SOFA matrix after imputation ([n_patients, n_days], where ``n_days`` covers
    at least the window); ``imputed`` flags its imputed cells (death or carried forward), and
    ``imputed_death`` / ``carried_forward`` tell the two rules apart.
    """

    baseline: FloatArray
    window_mean: FloatArray
    decrease: FloatArray
    achieved: BoolArray
    imputed: BoolArray
    imputed_death: BoolArray
    carried_forward: BoolArray
    sofa_imputed: FloatArray


def _forward_fill(values: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Carry the last non-NaN value of each row forward; returns the filled matrix and the filled cells."""
    n_patients, n_days = values.shape
    present = ~np.isnan(values)
    column = np.where(present, np.arange(n_days), -1)
    last_present = np.maximum.accumulate(column, axis=1)
    rows = np.arange(n_patients)[:, None]
    filled = values[rows, np.maximum(last_present, 0)]
    filled = np.where(last_present >= 0, filled, np.nan)
    was_filled = ~present & (last_present >= 0)
    return filled, was_filled


def _checked_deaths(scores: FloatArray, death_day: npt.ArrayLike) -> FloatArray:
    """``death_day`` as floats, after checking both inputs' shapes and that every day of death is >= 1."""
    deaths = np.asarray(death_day, dtype=np.float64)
    if scores.ndim != 2:
        raise ImmunoSepError(f"sofa must be a 2-D array [patients, days], got {scores.ndim} dimension(s)")
    if deaths.shape != (scores.shape[0],):
        raise ImmunoSepError(
            f"death_day must have one entry per patient ({scores.shape[0]}), got shape {deaths.shape}"
        )
    if np.any(deaths < 1):  # NaN compares False
        raise ImmunoSepError("death_day must be a study day >= 1 (or NaN for alive)")
    return deaths


def sofa_decrease(
    sofa: npt.ArrayLike,
    death_day: npt.ArrayLike,
    endpoint: SofaEndpoint,
) -> SofaDecrease:
    """Derive the SOFA-decrease endpoint with the protocol's imputation rules (see the module docstring).

    ``sofa``: [n_patients, n_days] SOFA points, NaN where not recorded, column ``j`` = study day ``j+1``.
    ``death_day``: [n_patients] study day of death, NaN when the patient was alive through the window.
    The input arrays are not modified.
    """
    scores = np.array(sofa, dtype=np.float64, copy=True)
    deaths = _checked_deaths(scores, death_day)
    n_patients = scores.shape[0]
    n_days = max(scores.shape[1], endpoint.window_last_day, endpoint.death_imputed_until_day)
    if scores.shape[1] < n_days:
        pad = np.full((n_patients, n_days - scores.shape[1]), np.nan)
        scores = np.concatenate([scores, pad], axis=1)

    study_day = np.arange(1, n_days + 1)[None, :]
    died = ~np.isnan(deaths)
    death_at = np.where(died, deaths, np.inf)[:, None]
    imputed_death = (
        (study_day >= death_at)
        & (study_day > endpoint.baseline_day)
        & (study_day <= endpoint.death_imputed_until_day)
    )
    scores = np.where(imputed_death, endpoint.death_score, scores)

    filled, carried_forward = _forward_fill(scores)

    baseline = scores[:, endpoint.baseline_day - 1].copy()
    window = filled[:, endpoint.window_first_day - 1 : endpoint.window_last_day]
    with np.errstate(invalid="ignore"):
        window_complete = ~np.isnan(window).any(axis=1)
        window_mean = np.where(window_complete, window.mean(axis=1), np.nan)
    decrease = baseline - window_mean
    achieved = np.nan_to_num(decrease, nan=-np.inf) >= endpoint.min_decrease - ACHIEVED_TOLERANCE_POINTS
    return SofaDecrease(
        baseline=baseline,
        window_mean=window_mean,
        decrease=decrease,
        achieved=achieved,
        imputed=imputed_death | carried_forward,
        imputed_death=imputed_death,
        carried_forward=carried_forward,
        sofa_imputed=filled,
    )


def sofa_decrease_achieved(
    sofa: npt.ArrayLike,
    death_day: npt.ArrayLike,
    endpoint: SofaEndpoint,
) -> BoolArray:
    """Only ``sofa_decrease(sofa, death_day, endpoint).achieved``: the Monte Carlo engine's fast path.

    The same rules, computed on the days up to the end of the window only (death imputation and LOCF
    look back, never ahead, so later days cannot change the window) and day by day on a transposed copy
    (a few vector operations per day instead of index arithmetic on the whole matrix). The window's sum
    is added day by day; for whole SOFA points that sum is exact, so the mean and the decision are
    bit for bit those of :func:`sofa_decrease` (tested); on fractional scores the sum could differ in the
    last bit, far inside :data:`ACHIEVED_TOLERANCE_POINTS`.
    """
    scores = np.asarray(sofa, dtype=np.float64)
    deaths = _checked_deaths(scores, death_day)
    n_patients = scores.shape[0]
    last_day = endpoint.window_last_day
    n_days = max(last_day, endpoint.baseline_day)
    days = np.full((n_days, n_patients), np.nan)
    available = min(n_days, scores.shape[1])
    days[:available] = scores[:, :available].T
    # death imputation (never the baseline day): the day of death through death_imputed_until_day
    for day in range(endpoint.baseline_day + 1, min(n_days, endpoint.death_imputed_until_day) + 1):
        np.copyto(days[day - 1], endpoint.death_score, where=deaths <= day)
    baseline = days[endpoint.baseline_day - 1].copy()
    # LOCF, day by day
    for j in range(1, last_day):
        np.copyto(days[j], days[j - 1], where=np.isnan(days[j]))
    window = days[endpoint.window_first_day - 1 : last_day]
    total = window[0].copy()
    for row in window[1:]:
        total += row
    window_mean = total / window.shape[0]  # NaN when a day of the window has no value (none before it)
    decrease = baseline - window_mean
    return np.asarray(
        np.nan_to_num(decrease, nan=-np.inf) >= endpoint.min_decrease - ACHIEVED_TOLERANCE_POINTS,
        dtype=np.bool_,
    )
