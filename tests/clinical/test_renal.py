"""Cockcroft-Gault creatinine clearance and body-weight policies."""

from __future__ import annotations

import numpy as np
import pytest

from immunosep.clinical.renal import creatinine_clearance_ml_min, ideal_body_weight_kg
from immunosep.errors import ImmunoSepError


@pytest.mark.requirement("PROT-DOSE-02")
def test_worked_example_male() -> None:
    # Cockcroft & Gault 1976: (140 - 70) x 80 / (72 x 3.1) = 5600 / 223.2 = 25.089...
    assert creatinine_clearance_ml_min(70, 80, "male", 3.1) == pytest.approx(25.0896057, rel=1e-7)


@pytest.mark.requirement("PROT-DOSE-02")
def test_worked_example_female_factor() -> None:
    # (140 - 60) x 60 / (72 x 1.0) x 0.85 = 66.666... x 0.85 = 56.666...
    assert creatinine_clearance_ml_min(60, 60, "female", 1.0) == pytest.approx(56.6666667, rel=1e-7)


def test_devine_ideal_body_weight() -> None:
    # Devine 1974: 50 kg + 2.3 kg per inch over 60 in; 180 cm = 70.866 in -> 50 + 2.3 x 10.866 = 74.99 kg
    assert ideal_body_weight_kg(180, "male") == pytest.approx(74.992126, rel=1e-6)
    # female 152.4 cm = exactly 60 in -> 45.5 kg
    assert ideal_body_weight_kg(152.4, "female") == pytest.approx(45.5)


def test_weight_policies() -> None:
    ibw = float(ideal_body_weight_kg(180, "male"))
    actual = creatinine_clearance_ml_min(50, 120, "male", 1.0)
    ideal = creatinine_clearance_ml_min(50, 120, "male", 1.0, height_cm=180, weight_policy="ideal")
    adjusted = creatinine_clearance_ml_min(50, 120, "male", 1.0, height_cm=180, weight_policy="adjusted")
    assert actual == pytest.approx(90 * 120 / 72)
    assert ideal == pytest.approx(90 * ibw / 72)
    assert adjusted == pytest.approx(90 * (ibw + 0.4 * (120 - ibw)) / 72)
    # adjusted weight is the actual one when the patient is not above IBW
    lean = creatinine_clearance_ml_min(50, 60, "male", 1.0, height_cm=180, weight_policy="adjusted")
    assert lean == pytest.approx(90 * 60 / 72)


def test_vectorized() -> None:
    out = creatinine_clearance_ml_min(
        np.array([70, 60]), np.array([80, 60]), np.array(["male", "female"]), np.array([3.1, 1.0])
    )
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [5600 / 223.2, 80 * 60 / 72 * 0.85])


@pytest.mark.parametrize(
    ("args", "kwargs", "fragment"),
    [
        ((70, 80, "male", 0), {}, "creatinine_mg_dl = 0"),
        ((70, 80, "male", 274), {}, "88.4 umol/L"),
        ((70, -80, "male", 1), {}, "weight_kg"),
        ((70, 176, "male", 1), {"weight_policy": "ideal"}, "height"),
        ((170, 80, "male", 1), {}, "age_years"),
        ((70, 80, "m", 1), {}, "'male' or 'female'"),
        ((70, 80, "male", 1), {"height_cm": 6, "weight_policy": "adjusted"}, "height_cm"),
        ((70, 80, "male", float("nan")), {}, "missing"),
    ],
)
def test_bad_input(args: tuple[float, float, str, float], kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ImmunoSepError) as info:
        creatinine_clearance_ml_min(*args, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
