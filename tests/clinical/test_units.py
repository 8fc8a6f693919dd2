"""Unit conversions: bilirubin 1 mg/dL = 17.1 umol/L, creatinine 1 mg/dL = 88.4 umol/L."""

from __future__ import annotations

import numpy as np
import pytest

from immunosep.clinical.units import bilirubin_mg_dl, creatinine_mg_dl, ferritin_ng_ml
from immunosep.errors import ImmunoSepError


def test_conversions() -> None:
    assert creatinine_mg_dl(88.4, "umol/L") == 1.0
    assert creatinine_mg_dl(442, "µmol/L") == 5.0
    assert bilirubin_mg_dl(34.2, "umol/l") == 2.0
    assert bilirubin_mg_dl(2.5) == 2.5
    np.testing.assert_allclose(creatinine_mg_dl(np.array([88.4, 176.8]), "umol/L"), [1.0, 2.0])


def test_scalars_stay_scalars() -> None:
    assert isinstance(creatinine_mg_dl(1.0), float)
    assert isinstance(bilirubin_mg_dl([1.0]), np.ndarray)


def test_unknown_units() -> None:
    with pytest.raises(ImmunoSepError, match="creatinine in mg/dL or umol/L"):
        creatinine_mg_dl(1.0, "mmol/L")
    with pytest.raises(ImmunoSepError, match="pmol/L"):
        ferritin_ng_ml(100, "pmol/L")
