"""Immune stratum: MALS ferritin > 4420 ng/mL; immunoparalysis mHLA-DR < 5000 (protocol, strict)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from immunosep.clinical.immune import classify, classify_arrays, stratum_rule
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol


@pytest.mark.parametrize(
    ("ferritin", "hla_dr", "stratum"),
    [
        (4421.0, None, "mals"),
        (4420.01, 20000.0, "mals"),  # MALS whatever the HLA-DR
        (4420.0, 3000.0, "immunoparalysis"),  # 4420 itself is not MALS
        (4420.0, 4999.0, "immunoparalysis"),
        (4420.0, 5000.0, "unclassified"),  # 5000 itself is unclassified
        (100.0, 4999.99, "immunoparalysis"),
        (100.0, 5000.01, "unclassified"),
        (5200.0, 3000.0, "mals"),  # the README example
    ],
)
@pytest.mark.requirement("PROT-CLASS-01")
def test_classification_at_the_boundaries(ferritin: float, hla_dr: float | None, stratum: str) -> None:
    assert classify(ferritin, hla_dr) == stratum


def test_ug_per_litre_is_the_same_unit_as_ng_per_ml() -> None:
    assert classify(4421, None, ferritin_unit="ug/L") == "mals"
    assert classify(4421, None, ferritin_unit="µg/L") == "mals"


@pytest.mark.parametrize("unit", ["ug/mL", "mg/L", "µg/mL"])
@pytest.mark.requirement("PROT-CLASS-01")
def test_thousandfold_units_must_be_converted(unit: str) -> None:
    with pytest.raises(ImmunoSepError, match="multiply by 1000"):
        classify(5.2, 3000, ferritin_unit=unit)


def test_nanograms_per_litre_must_be_converted() -> None:
    with pytest.raises(ImmunoSepError, match="divide by 1000"):
        classify(5_200_000, None, ferritin_unit="ng/L")


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(ImmunoSepError, match="unknown ferritin unit"):
        classify(5200, 3000, ferritin_unit="mmol")


def test_hla_dr_needed_when_ferritin_not_above_threshold() -> None:
    with pytest.raises(ImmunoSepError, match=r"mHLA-DR is needed: ferritin 4420 ng/mL is not above 4420"):
        classify(4420, None)


def test_implausible_values_mention_units() -> None:
    with pytest.raises(ImmunoSepError, match=r"implausibly large \(above 200000 ng/mL\).*unit error.*ng/L"):
        classify(5_200_000, None)  # 5 200 000 ng/L typed as ng/mL
    with pytest.raises(ImmunoSepError, match="negative"):
        classify(-1, 3000)
    with pytest.raises(ImmunoSepError, match="hla_dr = -5 is negative"):
        classify(100, -5)
    with pytest.raises(ImmunoSepError, match="hla_dr"):
        classify(100, 1e9)
    with pytest.raises(ImmunoSepError, match="ferritin is missing"):
        classify(float("nan"), 3000)


def test_vectorized_matches_scalar_and_names_rows() -> None:
    rng = np.random.default_rng(2)
    ferritin = rng.choice([100.0, 4420.0, 4421.0, 9000.0], 2000)
    hla = rng.choice([1000.0, 4999.0, 5000.0, 12000.0], 2000)
    got = classify_arrays(ferritin, hla)
    want = [classify(f, h) for f, h in zip(ferritin, hla, strict=True)]
    assert got.tolist() == want
    with pytest.raises(ImmunoSepError, match=r"row index 1"):
        classify_arrays([5000.0, 100.0], [np.nan, np.nan])


@pytest.mark.requirement("PROT-CLASS-01")
def test_thresholds_come_from_the_protocol() -> None:
    p = default_protocol()
    c = p.classification.model_copy(update={"mals_ferritin_above": 1000.0})
    other = p.model_copy(update={"classification": c})
    assert classify(1500, 3000, other) == "mals"
    assert classify(1500, 3000, p) == "immunoparalysis"


def test_the_rule_in_words_is_built_from_the_protocol_numbers() -> None:
    p = default_protocol()
    assert stratum_rule("mals", p) == "ferritin > 4420 ng/mL"
    assert stratum_rule("immunoparalysis", p) == (
        "ferritin ≤ 4420 ng/mL and mHLA-DR < 5000 receptors per CD45/CD14 monocyte"
    )
    assert stratum_rule("unclassified", p).endswith(": not enrolled")
    c = p.classification.model_copy(
        update={"mals_ferritin_above": 1000.0, "immunoparalysis_hla_dr_below": 8000.0}
    )
    other = p.model_copy(update={"classification": c})
    assert stratum_rule("mals", other) == "ferritin > 1000 ng/mL"
    assert "ferritin ≤ 1000 ng/mL and mHLA-DR < 8000" in stratum_rule("immunoparalysis", other)
    with pytest.raises(ImmunoSepError, match="unknown stratum"):
        stratum_rule("severe", p)


_EDGE = [
    0.0,
    -1.0,
    100.0,
    4420.0,
    4420.000001,
    4999.99,
    5000.0,
    5000.01,
    1e6,
    1e9,
    math.inf,
    -math.inf,
    math.nan,
]


@pytest.mark.requirement("PROT-CLASS-01")
@pytest.mark.parametrize("ferritin", _EDGE)
@pytest.mark.parametrize("hla_dr", [None, *_EDGE])
def test_plain_python_bedside_path_equals_the_array_rule(ferritin: float, hla_dr: float | None) -> None:
    """``classify`` (one patient, no numpy: issue 21) gives the stratum or the refusal of ``classify_arrays``."""

    def outcome(fn: Any) -> tuple[str, str | None]:
        try:
            return str(fn()), None
        except ImmunoSepError as exc:
            return str(exc), exc.field

    single = outcome(lambda: classify(ferritin, hla_dr))
    h = np.nan if hla_dr is None else hla_dr
    array = outcome(lambda: classify_arrays([ferritin], [h], _rows=False)[0])
    assert single == array
