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


def _recorded(look: int, rate: float, digest: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from immunosep.conduct.interim_looks import InterimLookView

    return InterimLookView(
        look,
        "binary",
        rate,
        None,
        1.0,
        3.0,
        None,
        "continue to the next look",
        digest,
        datetime.now(UTC),
        "x",
        {},
    )


@pytest.mark.requirement("GSD-09")
def test_later_looks_spend_alpha_at_the_observed_fractions(datasets):
    """With a history, the earlier looks count at their recorded (observed) fractions, as rpact's
    getAnalysisResults with informationRates = c(observed..., later planned); the same data cut is the same
    look; a data cut without more information than the last look is refused."""
    from immunosep.errors import ImmunoSepError
    from immunosep.stats.group_sequential import planned_design
    from immunosep.stats.interim import interim_look

    first = analyse_group_sequential(datasets, GSD, history=[])
    fraction = first["information_rate"]
    assert first["look_number"] == 1 and first["observed_information_rates"] == [fraction]
    earlier = _recorded(1, fraction / 2, "0" * 64)
    second = analyse_group_sequential(datasets, GSD, history=[earlier])
    assert second["look_number"] == 2 and second["look"]["look"] == 2
    assert second["observed_information_rates"] == [fraction / 2, fraction]
    design, _ = planned_design(GSD.design.sequential, GSD.sample_size)
    expected = interim_look(
        design,
        [fraction / 2, fraction],
        second["z"],
        estimate=second["difference"],
        standard_error=second["standard_error"],
    )
    assert second["look"]["efficacy_z"] == pytest.approx(expected.efficacy_z, abs=1e-12)
    assert second["z_path"][0] == {"look": 1, "information_rate": fraction / 2, "z": 1.0}
    same = _recorded(2, fraction, first["data_cut_sha256"])
    again = analyse_group_sequential(datasets, GSD, history=[earlier, same])
    assert again["look_number"] == 2 and again["observed_information_rates"] == [fraction / 2, fraction]
    with pytest.raises(ImmunoSepError, match="has not grown since look 1"):
        analyse_group_sequential(datasets, GSD, history=[_recorded(1, fraction, "1" * 64)])
