"""Sepsis-3 (Singer M et al., JAMA 2016;315:801-10) as used for ImmunoSep eligibility.

Sepsis = suspected infection and organ dysfunction, i.e.

- a patient arriving (e.g. from the emergency department, no baseline SOFA): SOFA >= ``eligibility.min_sofa``
  (2) on arrival — the Sepsis-3 convention that an unknown baseline is 0;
- an already hospitalized patient with a baseline (admission) SOFA: an acute rise of at least
  ``eligibility.min_sofa_rise`` (2) points from it.

Without suspected infection there is no sepsis, whatever the score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol


def _scores(name: str, value: Any, *, allow_nan: bool) -> npt.NDArray[np.float64]:
    x = np.atleast_1d(np.asarray(value, dtype=np.float64))
    nan = np.isnan(x)
    bad = ((x < 0) | (x > 24) | (x != np.rint(x))) & ~nan
    if not allow_nan:
        bad |= nan
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ImmunoSepError(
            f"{name} = {x[i]:g} (index {i}) is not a SOFA total: give a whole number from 0 to 24", field=name
        )
    return x


def sepsis3_arrays(
    sofa_now: npt.ArrayLike,
    sofa_baseline: npt.ArrayLike | None,
    suspected_infection: npt.ArrayLike,
    protocol: Protocol | None = None,
) -> npt.NDArray[np.bool_]:
    """Sepsis-3 per patient; ``sofa_baseline`` NaN (or ``None`` for all) = no baseline, judged on arrival."""
    p = protocol or default_protocol()
    now = _scores("sofa_now", sofa_now, allow_nan=False)
    base = (
        np.full(now.shape, np.nan)
        if sofa_baseline is None
        else _scores("sofa_baseline", sofa_baseline, allow_nan=True)
    )
    infection = np.atleast_1d(np.asarray(suspected_infection, dtype=np.bool_))
    if not (base.shape == now.shape and infection.shape in (now.shape, (1,))):
        raise ImmunoSepError("sofa_now, sofa_baseline and suspected_infection must have the same length")
    on_arrival = np.isnan(base) & (now >= p.eligibility.min_sofa)
    with np.errstate(invalid="ignore"):
        rise = ~np.isnan(base) & (now - base >= p.eligibility.min_sofa_rise)
    return np.asarray(infection & (on_arrival | rise))


def meets_sepsis3(
    sofa_now: int,
    *,
    sofa_baseline: int | None = None,
    suspected_infection: bool,
    protocol: Protocol | None = None,
) -> bool:
    """Sepsis-3 for one patient: SOFA >= 2 on arrival, or a rise >= 2 from a known baseline, with infection."""
    base = np.nan if sofa_baseline is None else sofa_baseline
    return bool(sepsis3_arrays([sofa_now], [base], [suspected_infection], protocol)[0])
