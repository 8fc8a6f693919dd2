"""Reference values produced by the R scripts in validation/ (regenerate with ``make validate``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "validation" / "reference"
RTOL = 1e-6  # at least 6 significant digits where both sides compute the same quantity


@pytest.fixture(scope="session")
def r_reference() -> Callable[[str], Any]:
    """Load ``validation/reference/<name>.json`` (written by ``validation/<script>.R``)."""

    def load(name: str) -> Any:
        return json.loads((REFERENCE_DIR / f"{name}.json").read_text())

    return load


@pytest.fixture(scope="session")
def r_trial_data() -> Any:
    """The synthetic trial written by validation/models.R (R's RNG, set.seed(20251208))."""
    import pandas as pd

    return pd.read_csv(REFERENCE_DIR / "logistic_data.csv")


@pytest.fixture(scope="session")
def r_csv() -> Callable[[str], Any]:
    """Load a data set the R scripts wrote next to their reference values (e.g. ``lung``, ``asah``)."""
    import pandas as pd

    def load(name: str) -> Any:
        return pd.read_csv(REFERENCE_DIR / f"{name}.csv")

    return load
