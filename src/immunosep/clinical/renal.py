"""Creatinine clearance by Cockcroft-Gault, with the protocol's weight policy.

CrCl (mL/min) = (140 - age) x weight / (72 x serum creatinine mg/dL), x ``renal.female_factor`` (0.85)
for women (Cockcroft DW, Gault MH. Nephron 1976;16:31-41).

Weight policies (``renal.weight_policy``, default "actual" in the ImmunoSep protocol):

- ``actual``: the measured body weight;
- ``ideal``: Devine ideal body weight, 50 kg (men) or 45.5 kg (women) + 2.3 kg per inch of height over
  5 feet (Devine BJ. Drug Intell Clin Pharm 1974;8:650-5); the formula is applied as written, also below
  5 feet, and used even when the actual weight is lower (some services take min(actual, ideal) instead);
- ``adjusted``: IBW + 0.4 x (actual - IBW) when the actual weight exceeds IBW, otherwise the actual weight
  (the 0.4 factor of Bauer LA, Applied Clinical Pharmacokinetics, and of most obesity dosing guides).

The constants 140, 72, 50/45.5, 2.3 and 0.4 belong to these published formulas, not to a trial protocol.
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from immunosep.clinical.units import measured
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol

WeightPolicy = Literal["actual", "ideal", "adjusted"]

CM_PER_INCH = 2.54
DEVINE_BASE_KG = {"male": 50.0, "female": 45.5}
DEVINE_KG_PER_INCH = 2.3
DEVINE_BASE_INCHES = 60.0
ADJUSTED_WEIGHT_FACTOR = 0.4


def _checked(name: str, value: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The values as floats; a missing or implausible one (clinical.units.PLAUSIBLE) is refused."""
    return np.asarray(measured(name, value, missing_ok=False), dtype=np.float64)


def _sex_is_female(sex: Any) -> npt.NDArray[np.bool_]:
    if isinstance(sex, str) and sex.lower() in ("male", "female"):  # one patient: no numpy string arrays
        return np.asarray(sex.lower() == "female")
    s = np.char.lower(np.asarray(sex, dtype=str))
    bad = ~np.isin(s, ["male", "female"])
    if np.any(bad):
        v = s.ravel()[int(np.flatnonzero(np.ravel(bad))[0])]
        raise ImmunoSepError(f"sex {v!r} must be 'male' or 'female'", field="sex")
    return np.asarray(s == "female")


def ideal_body_weight_kg(height_cm: npt.ArrayLike, sex: Any) -> npt.NDArray[np.float64] | float:
    """Devine ideal body weight in kg: 50 (men) / 45.5 (women) + 2.3 kg per inch over 60 inches."""
    h = _checked("height_cm", height_cm)
    female = _sex_is_female(sex)
    base = np.where(female, DEVINE_BASE_KG["female"], DEVINE_BASE_KG["male"])
    ibw = base + DEVINE_KG_PER_INCH * (h / CM_PER_INCH - DEVINE_BASE_INCHES)
    return float(ibw) if np.ndim(ibw) == 0 else np.asarray(ibw, dtype=np.float64)


@overload
def creatinine_clearance_ml_min(
    age_years: float,
    weight_kg: float,
    sex: str,
    creatinine_mg_dl: float,
    *,
    height_cm: float | None = None,
    weight_policy: WeightPolicy | None = None,
    protocol: Protocol | None = None,
) -> float: ...
@overload
def creatinine_clearance_ml_min(
    age_years: npt.ArrayLike,
    weight_kg: npt.ArrayLike,
    sex: Any,
    creatinine_mg_dl: npt.ArrayLike,
    *,
    height_cm: npt.ArrayLike | None = None,
    weight_policy: WeightPolicy | None = None,
    protocol: Protocol | None = None,
) -> npt.NDArray[np.float64] | float: ...
def creatinine_clearance_ml_min(
    age_years: Any,
    weight_kg: Any,
    sex: Any,
    creatinine_mg_dl: Any,
    *,
    height_cm: Any = None,
    weight_policy: WeightPolicy | None = None,
    protocol: Protocol | None = None,
) -> npt.NDArray[np.float64] | float:
    """Cockcroft-Gault creatinine clearance in mL/min; scalars give a float, arrays an array."""
    p = protocol or default_protocol()
    policy = weight_policy or p.renal.weight_policy
    if policy not in ("actual", "ideal", "adjusted"):
        raise ImmunoSepError(
            f"weight policy {policy!r} must be actual, ideal or adjusted", field="weight_policy"
        )
    age = _checked("age_years", age_years)
    weight = _checked("weight_kg", weight_kg)
    scr = _checked("creatinine_mg_dl", creatinine_mg_dl)
    female = _sex_is_female(sex)
    if policy != "actual":
        if height_cm is None:
            raise ImmunoSepError(
                f"the {policy} weight policy needs the height (--height-cm) for the ideal body weight",
                field="height_cm",
            )
        ibw = np.asarray(ideal_body_weight_kg(height_cm, sex))
        if policy == "ideal":
            weight = ibw
        else:
            weight = np.where(weight > ibw, ibw + ADJUSTED_WEIGHT_FACTOR * (weight - ibw), weight)
    crcl = (140.0 - age) * weight / (72.0 * scr)
    crcl = np.where(female, crcl * p.renal.female_factor, crcl)
    return float(crcl) if np.ndim(crcl) == 0 else np.asarray(crcl, dtype=np.float64)
