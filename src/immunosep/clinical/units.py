"""Explicit laboratory units: conversion to the units the clinical rules are written in.

SOFA (Vincent 1996) states bilirubin and creatinine in mg/dL; many laboratories report umol/L.
Conversion factors (molar masses: bilirubin 584.7 g/mol, creatinine 113.12 g/mol):

- bilirubin:  1 mg/dL = 17.1 umol/L
- creatinine: 1 mg/dL = 88.4 umol/L
- ferritin:   1 ng/mL = 1 ug/L (same unit); ug/mL and mg/L are 1000 times larger and must be converted.

Converted values are rounded to 9 decimals so that a boundary given in umol/L (106.08 umol/L creatinine
= 1.2 mg/dL) lands on the boundary instead of a float hair below it.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import numpy.typing as npt

from immunosep.errors import ImmunoSepError

BILIRUBIN_UMOL_L_PER_MG_DL = 17.1
CREATININE_UMOL_L_PER_MG_DL = 88.4

_DECIMALS = 9

FloatArray = npt.NDArray[np.float64]


def _unit_key(unit: str) -> str:
    """Normalise a unit spelling: case, micro sign, spaces ("µmol/L", "umol/l", "umol / L")."""
    return unit.strip().replace("µ", "u").replace("μ", "u").replace(" ", "").lower()


_MG_DL = {"mg/dl"}
_UMOL_L = {"umol/l", "micromol/l"}


@overload
def _convert(value: float, unit: str, factor: float, what: str) -> float: ...
@overload
def _convert(value: npt.ArrayLike, unit: str, factor: float, what: str) -> FloatArray | float: ...
def _convert(value: npt.ArrayLike, unit: str, factor: float, what: str) -> FloatArray | float:
    key = _unit_key(unit)
    arr = np.asarray(value, dtype=np.float64)
    if key in _MG_DL:
        out = arr
    elif key in _UMOL_L:
        out = np.round(arr / factor, _DECIMALS)
    else:
        raise ImmunoSepError(
            f"unknown {what} unit {unit!r}: give {what} in mg/dL or umol/L (1 mg/dL = {factor:g} umol/L)",
            field=what,
        )
    if out.ndim == 0:
        return float(out)
    return out


def bilirubin_mg_dl(value: npt.ArrayLike, unit: str = "mg/dL") -> FloatArray | float:
    """Bilirubin in mg/dL from a value in ``unit`` ("mg/dL" or "umol/L"); scalars stay scalars."""
    return _convert(value, unit, BILIRUBIN_UMOL_L_PER_MG_DL, "bilirubin")


def creatinine_mg_dl(value: npt.ArrayLike, unit: str = "mg/dL") -> FloatArray | float:
    """Serum creatinine in mg/dL from a value in ``unit`` ("mg/dL" or "umol/L"); scalars stay scalars."""
    return _convert(value, unit, CREATININE_UMOL_L_PER_MG_DL, "creatinine")


_FERRITIN_SAME = {"ng/ml", "ug/l", "mcg/l"}
_FERRITIN_THOUSANDFOLD = {"ug/ml", "mcg/ml", "mg/l"}


def ferritin_ng_ml(value: npt.ArrayLike, unit: str = "ng/mL") -> FloatArray | float:
    """Ferritin in ng/mL; ng/mL and ug/L are the same unit and are accepted as is.

    ug/mL and mg/L (1000 ng/mL each) and molar units are refused with the conversion to apply, so that
    a value typed in the wrong unit never silently changes a patient's immune stratum.
    """
    key = _unit_key(unit)
    if key in _FERRITIN_SAME:
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
