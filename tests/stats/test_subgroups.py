"""Subgroup ORs and the treatment-by-subgroup interaction vs R glm: validation/models.R."""

from __future__ import annotations

import pandas as pd
import pytest

from immunosep.errors import ImmunoSepError
from immunosep.stats.proportions import odds_ratio
from immunosep.stats.subgroups import subgroup_analysis


@pytest.fixture
def trial(r_trial_data) -> pd.DataFrame:
    return r_trial_data.copy()


def test_interaction_against_r(trial, r_reference):
    ref = r_reference("models")["subgroup"]
    res = subgroup_analysis(trial, "primary", "arm", "stratum")
    assert res.interaction.statistic == pytest.approx(ref["interaction_chi2"], rel=1e-6)
    assert res.interaction.p == pytest.approx(ref["interaction_p"], rel=1e-6)
    age = subgroup_analysis(trial, "primary", "arm", "agegroup")
    assert age.interaction.df == 2 and "separation" not in age.interaction.method
    assert age.interaction.statistic == pytest.approx(ref["agegroup_interaction_chi2"], rel=1e-6)
    assert age.interaction.p == pytest.approx(ref["agegroup_interaction_p"], rel=1e-6)


def test_separated_interaction_model_is_flagged(trial):
    """Site s03 has no events among controls: the arm x site model is quasi-separated."""
    res = subgroup_analysis(trial, "primary", "arm", "site")
    assert "separation" in res.interaction.method


def test_subgroup_ors_are_woolf_within_each_level(trial):
    res = subgroup_analysis(trial, "primary", "arm", "stratum")
    mals = trial[trial.stratum == "mals"]
    t, c = mals[mals.arm == 1].primary, mals[mals.arm == 0].primary
    expected = odds_ratio(int(t.sum()), len(t), int(c.sum()), len(c))
    row = next(r for r in res.subgroups if r.name == "stratum=mals")
    assert row.estimate == pytest.approx(expected.estimate) and row.ci == pytest.approx(expected.ci)


def test_subgroup_needs_two_levels(trial):
    with pytest.raises(ImmunoSepError, match="fewer than two levels"):
        subgroup_analysis(trial.assign(one="x"), "primary", "arm", "one")
