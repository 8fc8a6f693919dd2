"""Reversal of sepsis-induced immune dysfunction (SIDF) from a patient's series of biomarker draws.

The one definition of the endpoint (protocol ``sidf``; docs/requirements.md "Endpoints", secondary endpoint
5; JAMA 2025 Methods and Table 2), used by the biospecimen service, ADSL, the analysis plan and the virtual patients:

- MALS: ferritin falls by at least ``mals_ferritin_min_fall_fraction`` (15 %) from the baseline draw and
  stays at or below that level (baseline x 0.85);
- immunoparalysis: mHLA-DR rises to more than ``immunoparalysis_hla_dr_above`` (8000) and stays above it
  (``immunoparalysis_hla_dr_criterion = "level"``; ``"rise"`` reads the paper's other wording, "increase
  of more than 8000", as draw minus baseline > 8000; see docs/clinical.md for the choice);
- *assessable* (the SIDF analysis population, the denominator of Table 2): a baseline draw and at least
  ``min_later_draws`` (2) serial draws after it. "Patients not having at least 2 serial blood draws to
  confirm the permanence of the changes were considered not to have attained reversal", and Table 2
  counts them out of the denominator (59 + 66 of 276 analysed);
- *reversed*: assessable, and the last ``min_confirming_draws`` (2) or more serial draws all meet the
  criterion: the change is seen and confirmed by a later draw, and nothing after contradicts it.

Interpretation, chosen so that the result is defined for every series:

- The first draw is the baseline. A missing baseline: not assessable.
- A missing draw (``None``/NaN) is skipped: it neither confirms nor breaks a reversal and does not count
  as a serial draw.
- The *final run* is the unbroken sequence of non-missing draws after baseline, to the last one, that
  meet the criterion. Reversal needs a final run of at least ``min_confirming_draws`` draws; the day of
  reversal is its first draw. A rebound moves the day to the next run that lasts to the end; a rebound
  at the last draw, or a run of one draw, is no reversal.
- The same 15 % level is used for "falls" and "stays below": 850 after a baseline of 1000 counts.

:func:`sidf_reversal_arrays` is the vectorized rule (one patient per row); :func:`sidf_reversal` is the
one-patient wrapper over it, so both give the same answer by construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol

_ROUND = 12  # decimals of the relative fall, so 850 from 1000 is exactly a 15 % fall
_MALS, _IMMUNOPARALYSIS = "mals", "immunoparalysis"

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SidfReversal:
    """One patient: reversed, the study day of reversal, whether assessable, and the serial draws."""

    reversed: bool
    day: int | None
    assessable: bool
    later_draws: int


@dataclass(frozen=True)
class SidfReversals:
    """Patients by row: ``reversed``, ``day`` (study day, NaN = not reversed), ``assessable`` and
    ``later_draws`` (non-missing draws after baseline)."""

    reversed: BoolArray
    day: FloatArray
    assessable: BoolArray
    later_draws: IntArray


def _check_days(draw_days: npt.ArrayLike) -> IntArray:
    days = np.asarray(draw_days)
    if days.ndim != 1 or days.size == 0:
        raise ImmunoSepError(
            "no draws given: SIDF reversal needs at least the baseline draw", field="draw_days"
        )
    if not np.all(np.isfinite(days.astype(np.float64))) or np.any(days != np.round(days)):
        raise ImmunoSepError(f"draw days {days.tolist()} must be whole study days", field="draw_days")
    out = days.astype(np.int64)
    if np.any(np.diff(out) <= 0):
        raise ImmunoSepError(f"draw days {out.tolist()} must be strictly increasing", field="draw_days")
    return out


def sidf_reversal_arrays(
    strata: npt.ArrayLike,
    draw_days: npt.ArrayLike,
    values: npt.ArrayLike,
    protocol: Protocol | None = None,
) -> SidfReversals:
    """SIDF reversal of every patient (row) of ``values`` [n, draws]: ferritin ng/mL for a MALS row,
    mHLA-DR (receptors per monocyte) for an immunoparalysis row, NaN = not drawn.

    ``strata`` [n] holds ``"mals"`` or ``"immunoparalysis"``; ``draw_days`` are the study days of the
    columns, increasing; column 0 is the baseline.
    """
    rule = (protocol or default_protocol()).sidf
    days = _check_days(draw_days)
    v = np.asarray(values, dtype=np.float64)
    s = np.asarray(strata).astype(str)
    if v.ndim != 2 or v.shape[1] != days.size:
        raise ImmunoSepError(
            f"{days.size} draw days but values of shape {v.shape}: give one value (or NaN) per draw and patient",
            field="values",
        )
    if s.shape != (v.shape[0],):
        raise ImmunoSepError(
            f"{v.shape[0]} patients but {s.size} strata: give one stratum per row", field="stratum"
        )
    unknown = ~np.isin(s, [_MALS, _IMMUNOPARALYSIS])
    if unknown.any():
        raise ImmunoSepError(
            f"SIDF reversal is defined for the strata mals and immunoparalysis, not {str(s[unknown][0])!r}",
            field="stratum",
        )
    bad = (v < 0) | np.isinf(v)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        row = f" of row {i}" if v.shape[0] > 1 else ""
        raise ImmunoSepError(
            f"the value {v[i, j]:g} drawn on day {days[j]}{row} must be a non-negative number", field="values"
        )

    n = v.shape[0]
    baseline = v[:, 0]
    later = v[:, 1:]
    drawn = ~np.isnan(later)
    later_draws = drawn.sum(axis=1).astype(np.int64)
    assessable = ~np.isnan(baseline) & (later_draws >= rule.min_later_draws)
    if days.size == 1:
        return SidfReversals(np.zeros(n, bool), np.full(n, np.nan), assessable, later_draws)

    b = baseline[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        fall = np.round((b - later) / b, _ROUND)
        mals_met = (b > 0) & (fall >= rule.mals_ferritin_min_fall_fraction)
        hla = later - b if rule.immunoparalysis_hla_dr_criterion == "rise" else later
        immunoparalysis_met = hla > rule.immunoparalysis_hla_dr_above
    met = np.where((s == _MALS)[:, None], mals_met, immunoparalysis_met) & drawn
    # The final run: the draws meeting the criterion after the last drawn one that does not.
    index = np.arange(later.shape[1])
    last_broken = np.where(drawn & ~met, index[None, :], -1).max(axis=1)
    run = met & (index[None, :] > last_broken[:, None])
    reversed_ = assessable & (run.sum(axis=1) >= rule.min_confirming_draws)
    first = days[1:][np.argmax(run, axis=1)].astype(np.float64)
    day = np.where(reversed_, first, np.nan)
    return SidfReversals(reversed=reversed_, day=day, assessable=assessable, later_draws=later_draws)


def sidf_reversal(
    stratum: str,
    draw_days: Sequence[int],
    values: Sequence[float | None],
    protocol: Protocol | None = None,
) -> SidfReversal:
    """SIDF reversal for one patient; ``values`` are ferritin ng/mL (MALS) or mHLA-DR (immunoparalysis),
    ``None`` or NaN where not drawn.

    ``draw_days`` are study days in increasing order; the first draw is the baseline.
    """
    if len(draw_days) != len(values):
        raise ImmunoSepError(
            f"{len(draw_days)} draw days but {len(values)} values: give one value (or None) per draw",
            field="values",
        )
    row = [math.nan if v is None else float(v) for v in values]
    r = sidf_reversal_arrays([stratum], list(draw_days), [row], protocol)
    day = float(r.day[0])
    return SidfReversal(
        reversed=bool(r.reversed[0]),
        day=None if math.isnan(day) else int(day),
        assessable=bool(r.assessable[0]),
        later_draws=int(r.later_draws[0]),
    )
