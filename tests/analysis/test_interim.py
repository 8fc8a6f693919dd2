"""The group-sequential look of the analysis plan (analysis/interim.py) on a synthetic trial.

The z, the difference and its standard error are recomputed here from the counts by arm; the look itself is
``stats.interim.interim_look`` (validated against rpact in tests/stats/test_interim.py).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fixtures.synthetic import synthetic_raw_trial
from immunosep.analysis.datasets import derive_datasets
from immunosep.analysis.interim import analyse_group_sequential, data_cut_digest
from immunosep.protocol import bundled_protocol_path, default_protocol, parse_protocol

GSD = parse_protocol((bundled_protocol_path().parent / "examples" / "immunosep_gsd.toml").read_text())


@pytest.fixture(scope="module")
def datasets():
    return derive_datasets(synthetic_raw_trial(120, GSD, seed=5), GSD)


def test_fixed_design_has_no_look(datasets):
    assert analyse_group_sequential(datasets, default_protocol()) is None


@pytest.mark.requirement("GSD-08")
def test_interim_look_from_the_counts(datasets):
    out = analyse_group_sequential(datasets, GSD)
    assert out is not None
    (x1, n1), (x2, n2) = ((c["events"], c["n"]) for c in out["counts"].values())
    assert list(out["counts"]) == GSD.arm_codes
    p1, p2, pooled = x1 / n1, x2 / n2, (x1 + x2) / (n1 + n2)
    assert out["z"] == pytest.approx(
        (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2)), rel=1e-12
    )
    assert out["difference"] == pytest.approx(p1 - p2, rel=1e-12)
    assert out["information_rate"] == pytest.approx((n1 + n2) / out["design"]["maximum_n"], rel=1e-12)
    look = out["look"]
    assert look["look"] == len(out["observed_information_rates"])
    assert look["information_rate"] == out["observed_information_rates"][-1] == out["information_rate"]
    assert look["repeated_ci"][0] < out["difference"] < look["repeated_ci"][1]
    assert 0 <= look["conditional_rejection_probability"] <= 1 and 0 <= look["predictive_power"] <= 1
    assert isinstance(look["decision"], str) and look["decision"]


@pytest.mark.requirement("GSD-08")
def test_data_cut_digest_names_the_data(datasets):
    rows = datasets.adsl.loc[datasets.adsl["analysed"] == 1]
    digest = data_cut_digest(rows, "primary_endpoint")
    assert digest == data_cut_digest(rows.sample(frac=1, random_state=1), "primary_endpoint")  # order-free
    changed = rows.copy()
    first = changed.index[0]
    changed.loc[first, "primary_endpoint"] = 1 - pd.to_numeric(changed.loc[first, "primary_endpoint"])
    assert data_cut_digest(changed, "primary_endpoint") != digest
