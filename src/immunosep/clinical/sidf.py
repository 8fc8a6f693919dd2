"""Reversal of sepsis-induced immune dysfunction (SIDF) from a patient's series of biomarker draws.

Rule (protocol ``sidf``; SPEC secondary endpoint 5):

- MALS: ferritin falls by at least ``mals_ferritin_min_fall_fraction`` (15 %) from the baseline draw and
  stays at or below that level (baseline x 0.85) at every later draw;
- immunoparalysis: mHLA-DR rises above ``immunoparalysis_hla_dr_above`` (8000) and stays above it at every
  later draw;
- a patient with fewer than ``min_later_draws`` (2) non-missing draws after baseline has not reversed.

Interpretation, chosen so that the result is well defined for every series:

- The first draw is the baseline. A missing baseline makes reversal impossible to judge: not reversed.
- A missing draw (``None``/NaN) is skipped: it neither confirms nor breaks a reversal and does not count
  towards ``min_later_draws``.
- "Stays" means the condition holds at that draw and at every later non-missing draw. The day of reversal
  is the first draw day from which this is true, i.e. the start of the final unbroken run of draws that
  meet the condition. A rebound at any later draw moves the day to the next run that lasts to the end;
  a rebound at the last draw means no reversal.
- The condition is the same at the reversal draw and afterwards ("stays below that level" uses the same
  15 % level, so a value exactly at 85 % of baseline counts as fallen).
- Once there are enough later draws, a run may be a single draw (the last one): nothing contradicts it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol

_ROUND = 12  # decimals of the relative fall, so 850 from 1000 is exactly a 15 % fall


@dataclass(frozen=True)
class SidfReversal:
    """Whether SIDF reversed, the study day it was reached, and how many later draws were available."""

    reversed: bool
    day: int | None
    later_draws: int


def _missing(v: float | None) -> bool:
    return v is None or math.isnan(v)


def sidf_reversal(
    stratum: str,
    draw_days: Sequence[int],
    values: Sequence[float | None],
    protocol: Protocol | None = None,
) -> SidfReversal:
    """SIDF reversal for one patient; ``values`` are ferritin ng/mL (MALS) or mHLA-DR (immunoparalysis).

    ``draw_days`` are study days in increasing order; the first draw is the baseline.
    """
    p = protocol or default_protocol()
    rule = p.sidf
    if len(draw_days) != len(values):
        raise ImmunoSepError(
            f"{len(draw_days)} draw days but {len(values)} values: give one value (or None) per draw",
            field="values",
        )
    if not draw_days:
        raise ImmunoSepError(
            "no draws given: SIDF reversal needs at least the baseline draw", field="draw_days"
        )
    days = [int(d) for d in draw_days]
    if any(b <= a for a, b in pairwise(days)):
        raise ImmunoSepError(f"draw days {days} must be strictly increasing", field="draw_days")
    for d, v in zip(days, values, strict=True):
        if v is not None and (v < 0 or math.isinf(v)):
            raise ImmunoSepError(
                f"the value {v} drawn on day {d} must be a non-negative number", field="values"
            )

    baseline = values[0]
    later = [
        (d, float(v))
        for d, v in zip(days[1:], values[1:], strict=True)
        if v is not None and not math.isnan(v)
    ]
    n_later = len(later)
    if baseline is None or _missing(baseline) or n_later < rule.min_later_draws:
        return SidfReversal(reversed=False, day=None, later_draws=n_later)

    if stratum == "mals":
        b = float(baseline)

        def met(v: float) -> bool:
            return b > 0 and round((b - v) / b, _ROUND) >= rule.mals_ferritin_min_fall_fraction

    elif stratum == "immunoparalysis":

        def met(v: float) -> bool:
            return v > rule.immunoparalysis_hla_dr_above

    else:
        raise ImmunoSepError(
            f"SIDF reversal is defined for the strata mals and immunoparalysis, not {stratum!r}",
            field="stratum",
        )

    day: int | None = None
    for d, v in reversed(later):
        if not met(v):
            break
        day = d
    return SidfReversal(reversed=day is not None, day=day, later_draws=n_later)
