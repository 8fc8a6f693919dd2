"""Explicit laboratory units, and the plausible range of every bedside measurement.

SOFA (Vincent 1996) states bilirubin and creatinine in mg/dL and PaO2 in mmHg; many laboratories report
umol/L and kPa. Conversion factors (molar masses: bilirubin 584.7 g/mol, creatinine 113.12 g/mol):

- bilirubin:  1 mg/dL = 17.1 umol/L
- creatinine: 1 mg/dL = 88.4 umol/L
- PaO2:       1 kPa = 7.50062 mmHg (1 mmHg = 0.133322 kPa)
- ferritin:   1 ng/mL = 1 ug/L (same unit); ug/mL and mg/L are 1000 times larger and must be converted.

Converted values are rounded to 9 decimals so that a boundary given in umol/L (106.08 umol/L creatinine
= 1.2 mg/dL) lands on the boundary instead of a float hair below it.

:data:`PLAUSIBLE` is the one home of the plausible ranges: the SOFA kernel, Cockcroft-Gault, the daily
CRF and screening check with it, and the virtual patients are drawn inside it. A value outside its range
is refused with the unit it most likely is in ("bilirubin_mg_dl = 250 ... looks like umol/L").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from immunosep.errors import ImmunoSepError

# numpy is imported by the functions that convert arrays, not here: the table of ranges is read by the
# command line's help, which must start without numpy (issue 21)
if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

BILIRUBIN_UMOL_L_PER_MG_DL = 17.1
CREATININE_UMOL_L_PER_MG_DL = 88.4
KPA_PER_MMHG = 0.133322

_DECIMALS = 9


def _unit_key(unit: str) -> str:
    """Normalise a unit spelling: case, micro sign, spaces ("µmol/L", "umol/l", "umol / L")."""
    key = unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()
    return {"micromol/l": "umol/l", "mmhg": "mmhg", "kpa": "kpa"}.get(key, key)


# -- plausible ranges ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plausible:
    """The range a measurement takes in a living patient, in the unit the clinical rules use.

    Outside ``low``-``high`` (inclusive) a value is a typo or in another unit and is refused; the message
    names the other unit when the value read in it would be plausible. ``other_units`` are
    ``(unit, how many of it make one of ours)``. ``unstated_high``: a value given *without* a unit is
    read in ``unit``, but above this it is much more likely to be in the first of ``other_units`` and is
    refused until the unit is stated (bilirubin "25" is 1.5 mg/dL written in umol/L far more often than
    25 mg/dL). ``whole``: only whole numbers (GCS).
    """

    name: str
    what: str
    unit: str
    low: float
    high: float
    hint: str
    other_units: tuple[tuple[str, float], ...] = ()
    unstated_high: float | None = None
    whole: bool = False

    @property
    def units(self) -> tuple[str, ...]:
        """Every unit a value of this measurement may be given in (ours first)."""
        return (self.unit, *(u for u, _ in self.other_units))


_PLAUSIBLE_TABLE = (
    Plausible(
        "pao2_mmhg", "PaO2", "mmHg", 20.0, 800.0,
        "give arterial PaO2 in mmHg, or state kPa (1 kPa = 7.50 mmHg)",
        (("kPa", KPA_PER_MMHG),),
    ),
    Plausible(
        "pao2_fio2_mmhg", "PaO2/FiO2", "mmHg", 20.0, 1000.0,
        "PaO2/FiO2 is PaO2 in mmHg divided by FiO2 as a fraction (0.21-1.0); state kPa for a ratio in kPa",
        (("kPa", KPA_PER_MMHG),),
    ),
    Plausible(
        "platelets_1e3_ul", "platelets", "x10^3/uL", 0.0, 2000.0,
        "give platelets in x10^3/uL (e.g. 150, not 150000)",
        (("/uL", 1000.0),),
    ),
    Plausible(
        "bilirubin_mg_dl", "bilirubin", "mg/dL", 0.1, 60.0,
        f"give bilirubin in mg/dL, or state umol/L (1 mg/dL = {BILIRUBIN_UMOL_L_PER_MG_DL:g} umol/L)",
        (("umol/L", BILIRUBIN_UMOL_L_PER_MG_DL),),
        unstated_high=20.0,
    ),
    Plausible("map_mmhg", "mean arterial pressure", "mmHg", 0.0, 250.0, "give mean arterial pressure in mmHg"),
    Plausible("dopamine_ug_kg_min", "dopamine", "ug/kg/min", 0.0, 100.0, "give dopamine in ug/kg/min"),
    Plausible("dobutamine_ug_kg_min", "dobutamine", "ug/kg/min", 0.0, 100.0, "give dobutamine in ug/kg/min"),
    Plausible(
        "epinephrine_ug_kg_min", "epinephrine", "ug/kg/min", 0.0, 10.0,
        "give epinephrine in ug/kg/min (not ng/kg/min or mg/h)",
    ),
    Plausible(
        "norepinephrine_ug_kg_min", "norepinephrine", "ug/kg/min", 0.0, 10.0,
        "give norepinephrine in ug/kg/min (not ng/kg/min or mg/h)",
    ),
    Plausible(
        "gcs", "Glasgow coma scale", "points", 3.0, 15.0, "the Glasgow coma scale is a whole number from 3 to 15",
        whole=True,
    ),
    Plausible(
        "creatinine_mg_dl", "creatinine", "mg/dL", 0.1, 40.0,
        f"give serum creatinine in mg/dL, or state umol/L (1 mg/dL = {CREATININE_UMOL_L_PER_MG_DL:g} umol/L)",
        (("umol/L", CREATININE_UMOL_L_PER_MG_DL),),
        unstated_high=15.0,
    ),
    Plausible("urine_ml_day", "urine output", "mL/day", 0.0, 20000.0, "give urine output in mL per day"),
    Plausible("age_years", "age", "years", 0.0, 120.0, "give age in years"),
    Plausible(
        "weight_kg", "body weight", "kg", 20.0, 400.0, "give body weight in kg (1 lb = 0.4536 kg)",
        (("lb", 2.20462),),
    ),
    Plausible(
        "height_cm", "height", "cm", 100.0, 250.0, "give height in cm (1 inch = 2.54 cm)", (("inch", 1 / 2.54),)
    ),
)  # fmt: skip
PLAUSIBLE: dict[str, Plausible] = {p.name: p for p in _PLAUSIBLE_TABLE}
"""Plausible ranges by field name (the unit in the name); see :class:`Plausible`."""


def clip_plausible(name: str, values: npt.ArrayLike) -> FloatArray:
    """``values`` moved into the plausible range of ``name`` (NaN stays NaN); for generated values only.

    Virtual patients are drawn from fitted distributions with long tails; clipping keeps every drawn
    value one the bedside rules accept. A value entered by a person is checked, never clipped.
    """
    import numpy as np

    p = PLAUSIBLE[name]
    return np.clip(np.asarray(values, dtype=np.float64), p.low, p.high)


def unit_factor(name: str, unit: str | None) -> tuple[str, float]:
    """The unit as the table spells it and how many of it make one of the rule's unit (None: ours)."""
    p = PLAUSIBLE[name]
    if unit is None:
        return p.unit, 1.0
    key = _unit_key(unit)
    for u, factor in ((p.unit, 1.0), *p.other_units):
        if _unit_key(u) == key:
            return u, factor
    raise ImmunoSepError(
        f"unknown {p.what} unit {unit!r}: give {p.what} in {' or '.join(p.units)}"
        + (f" ({p.hint.partition('(')[2].rstrip(')')})" if "(" in p.hint else ""),
        field=name,
    )


def _num(v: float) -> str:
    return f"{v:.4g}"


def _reason(p: Plausible, value: float, unit: str, ours: float, *, label: str) -> str:
    """Why ``value`` (in ``unit``; ``ours`` in the rule's unit) is refused; a value inside the range is
    refused only for lacking a unit (:attr:`Plausible.unstated_high`) or for not being whole."""
    given = f"{label} = {value:g}" + ("" if unit == p.unit else f" {unit} (= {_num(ours)} {p.unit})")
    if p.low <= ours <= p.high and not (p.whole and not float(ours).is_integer()):
        other, factor = p.other_units[0]  # refused only for unstated_high, which needs another unit
        label = p.what if label == p.name else label
        return (
            f"{label} = {value:g} without a unit is read as {p.unit}, and {value:g} {p.unit} is rare: it looks "
            f"like {other} ({value:g} {other} = {_num(value / factor)} {p.unit}); state the unit ({other}, or "
            f"{p.unit} if it really is {value:g} {p.unit})"
        )
    if p.low <= ours <= p.high:
        return f"{given} is not a whole number: {p.hint}"
    if ours < 0:
        return f"{given} is negative: {p.hint}"
    side = f"below {p.low:g}" if ours < p.low else f"above {p.high:g}"
    for other, factor in ((p.unit, 1.0), *p.other_units):
        if other == unit:
            continue
        reread = value / factor
        if p.low <= reread <= p.high:
            as_ours = "" if other == p.unit else f" ({value:g} {other} = {_num(reread)} {p.unit})"
            return f"{given} is not plausible ({side} {p.unit}): it looks like {other}{as_ours}; {p.hint}"
    return f"{given} is not plausible ({side} {p.unit}): {p.hint}"


@overload
def measured(
    name: str,
    values: float,
    unit: str | None = None,
    *,
    stated: bool = True,
    missing_ok: bool = True,
    label: str | None = None,
    rows: bool = False,
) -> float: ...
@overload
def measured(
    name: str,
    values: npt.ArrayLike,
    unit: str | None = None,
    *,
    stated: bool = True,
    missing_ok: bool = True,
    label: str | None = None,
    rows: bool = False,
) -> FloatArray | float: ...
def measured(
    name: str,
    values: npt.ArrayLike,
    unit: str | None = None,
    *,
    stated: bool = True,
    missing_ok: bool = True,
    label: str | None = None,
    rows: bool = False,
) -> FloatArray | float:
    """Values of field ``name`` given in ``unit``, converted to the rule's unit and checked plausible.

    ``unit=None`` is the rule's own unit; ``stated=False`` says it came without a unit at all (see
    :attr:`Plausible.unstated_high`). NaN is "not measured" (refused with ``missing_ok=False``). An
    implausible value raises one :class:`ImmunoSepError` naming the value, the likely unit and what to
    fix; with ``rows`` it names the first offending row index. Scalars stay scalars.
    """
    p = PLAUSIBLE[name]
    spelled, factor = unit_factor(name, unit)
    if factor == 1.0 and isinstance(values, float | int) and not isinstance(values, bool):
        # one value in the rule's unit, the bedside's and the CRF's everyday case: checked without numpy
        # (a virtual trial makes tens of thousands of these calls); anything refused takes the array path
        # below, which words the refusal
        x = float(values)
        if x != x:  # NaN: not measured
            if missing_ok:
                return x
        elif (
            p.low <= x <= p.high
            and not (p.whole and not x.is_integer())
            and (stated or p.unstated_high is None or not p.other_units or x <= p.unstated_high)
        ):
            return x
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    ours = x if factor == 1.0 else np.round(x / factor, _DECIMALS)
    flat, flat_ours = np.atleast_1d(x).ravel(), np.atleast_1d(ours).ravel()
    with np.errstate(invalid="ignore"):
        bad = (flat_ours < p.low) | (flat_ours > p.high)
        if p.whole:
            bad |= (flat_ours != np.rint(flat_ours)) & ~np.isnan(flat_ours)
        if not stated and p.unstated_high is not None and p.other_units:
            bad |= flat_ours > p.unstated_high
    nan = np.isnan(flat_ours)
    if not missing_ok:
        bad |= nan
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name_shown = label or (name if spelled == p.unit else p.what)
        where = f" (first offending row index {i})" if rows else ""
        if nan[i]:
            raise ImmunoSepError(f"{name_shown} is missing{where}: {p.hint}", field=name)
        reason = _reason(p, float(flat[i]), spelled, float(flat_ours[i]), label=name_shown)
        head, _, tail = reason.partition(": ")
        raise ImmunoSepError(f"{head}{where}: {tail}", field=name)
    return float(ours) if ours.ndim == 0 else ours


@overload
def _convert(value: float, unit: str, name: str) -> float: ...
@overload
def _convert(value: npt.ArrayLike, unit: str, name: str) -> FloatArray | float: ...
def _convert(value: npt.ArrayLike, unit: str, name: str) -> FloatArray | float:
    import numpy as np

    _, factor = unit_factor(name, unit)
    arr = np.asarray(value, dtype=np.float64)
    out = arr if factor == 1.0 else np.round(arr / factor, _DECIMALS)
    return float(out) if out.ndim == 0 else out


def bilirubin_mg_dl(value: npt.ArrayLike, unit: str = "mg/dL") -> FloatArray | float:
    """Bilirubin in mg/dL from a value in ``unit`` ("mg/dL" or "umol/L"); scalars stay scalars."""
    return _convert(value, unit, "bilirubin_mg_dl")


def creatinine_mg_dl(value: npt.ArrayLike, unit: str = "mg/dL") -> FloatArray | float:
    """Serum creatinine in mg/dL from a value in ``unit`` ("mg/dL" or "umol/L"); scalars stay scalars."""
    return _convert(value, unit, "creatinine_mg_dl")


def pao2_mmhg(value: npt.ArrayLike, unit: str = "mmHg") -> FloatArray | float:
    """PaO2 (or a PaO2/FiO2 ratio) in mmHg from a value in ``unit`` ("mmHg" or "kPa")."""
    return _convert(value, unit, "pao2_mmhg")


_FERRITIN_SAME = {"ng/ml", "ug/l", "mcg/l"}
_FERRITIN_THOUSANDFOLD = {"ug/ml", "mcg/ml", "mg/l"}


def ferritin_ng_ml(value: npt.ArrayLike, unit: str = "ng/mL") -> FloatArray | float:
    """Ferritin in ng/mL; ng/mL and ug/L are the same unit and are accepted as is.

    ug/mL and mg/L (1000 ng/mL each) and molar units are refused with the conversion to apply, so that
    a value typed in the wrong unit never silently changes a patient's immune stratum.
    """
    key = _unit_key(unit)
    if key in _FERRITIN_SAME:
        if isinstance(value, int | float):  # one value (the bedside): no numpy
            return float(value)
        import numpy as np

        arr = np.asarray(value, dtype=np.float64)
        return float(arr) if arr.ndim == 0 else arr
    if key in _FERRITIN_THOUSANDFOLD:
        raise ImmunoSepError(
            f"ferritin in {unit} must be converted: multiply by 1000 to get ng/mL (1 {unit} = 1000 ng/mL)",
            field="ferritin",
        )
    if key == "ng/l":
        raise ImmunoSepError(
            "ferritin in ng/L must be converted: divide by 1000 to get ng/mL", field="ferritin"
        )
    if key == "pmol/l":
        raise ImmunoSepError(
            "ferritin in pmol/L must be converted: divide by 2.247 to get ng/mL", field="ferritin"
        )
    raise ImmunoSepError(f"unknown ferritin unit {unit!r}: give ferritin in ng/mL (= ug/L)", field="ferritin")
