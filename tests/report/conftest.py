"""A fixed synthetic trial (280 patients, seed 11) analysed once per test session for the report tests."""

from __future__ import annotations

from typing import Any

import pytest

from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.sap import run_sap
from immunosep.analysis.synthetic import synthetic_raw_trial
from immunosep.protocol import default_protocol


@pytest.fixture(scope="session")
def analysed_trial() -> tuple[AnalysisDatasets, dict[str, Any]]:
    p = default_protocol()
    ds = derive_datasets(synthetic_raw_trial(280, p, seed=11), p)
    return ds, run_sap(ds, p)
