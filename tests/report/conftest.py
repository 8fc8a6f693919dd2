"""A fixed synthetic trial (280 patients, seed 11) analysed once per test session for the report tests.

The synthetic generator records SOFA totals only; the fixture adds what a real CRF also holds on every
recorded day (the six SOFA components and the laboratory inputs of Table 1) from its own seeded generator,
so that Table 1 shows every row the platform collects and the synthetic margins stay those of the generator.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from fixtures.synthetic import synthetic_raw_trial
from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.raw import RawTrial
from immunosep.analysis.sap import run_sap
from immunosep.protocol import default_protocol


def with_crf_details(raw: RawTrial, seed: int) -> RawTrial:
    """``raw`` with SOFA components and laboratory values added to every daily row (seeded)."""
    rng = np.random.default_rng(seed)
    daily = raw.daily_sofa.copy()
    n = len(daily)
    for organ, high in (
        ("respiration", 4),
        ("coagulation", 3),
        ("liver", 2),
        ("cardiovascular", 4),
        ("cns", 4),
        ("renal", 3),
    ):
        daily[f"sofa_{organ}"] = rng.integers(0, high + 1, n)
    daily["pao2_fio2_mmhg"] = rng.lognormal(np.log(170), 0.35, n).round(1)
    daily["platelets_1e3_ul"] = rng.lognormal(np.log(180), 0.6, n).round()
    daily["bilirubin_mg_dl"] = rng.lognormal(np.log(0.7), 0.7, n).round(1)
    daily["creatinine_mg_dl"] = rng.lognormal(np.log(1.2), 0.5, n).round(2)
    return replace(raw, daily_sofa=daily)


@pytest.fixture(scope="session")
def analysed_trial() -> tuple[AnalysisDatasets, dict[str, Any]]:
    p = default_protocol()
    ds = derive_datasets(with_crf_details(synthetic_raw_trial(280, p, seed=11), seed=12), p)
    return ds, run_sap(ds, p)
