"""ADSOFA, ADTTE and ADAE of the hand-built trial (tests/analysis/handmade.py), keyed by usubjid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from handmade import handmade_raw

from immunosep.analysis.adsofa import derive_sofa_endpoints
from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol


@pytest.fixture(scope="module")
def ds() -> AnalysisDatasets:
    return derive_datasets(handmade_raw(), default_protocol())


def _sofa(ds: AnalysisDatasets, usubjid: str) -> pd.DataFrame:
    return ds.adsofa.loc[ds.adsofa["usubjid"] == usubjid].set_index("ady")


def test_adsofa_has_every_day_of_the_window_for_analysed_patients_only(ds: AnalysisDatasets) -> None:
    assert len(ds.adsofa) == 5 * 15
    assert "S03-0002" not in set(ds.adsofa["usubjid"])


def test_adsofa_death_on_day3_scores_24_to_day15(ds: AnalysisDatasets) -> None:
    s = _sofa(ds, "S01-0002")
    assert s.loc[[1, 2], "aval"].tolist() == [12.0, 13.0]
    assert (s.loc[3:15, "aval"] == 24).all() and (s.loc[3:15, "dtype"] == "DEATH").all()
    assert s.loc[3:15, "imputed"].eq(1).all() and s.loc[1:2, "imputed"].eq(0).all()


def test_adsofa_discharge_on_day6_carries_last_value(ds: AnalysisDatasets) -> None:
    s = _sofa(ds, "S02-0001")
    assert s.loc[7:15, "aval"].eq(4.0).all() and s.loc[7:15, "dtype"].eq("LOCF").all()
    assert s.loc[7:15, "sofa_observed"].isna().all()


def test_adsofa_missing_day_takes_day_before(ds: AnalysisDatasets) -> None:
    s = _sofa(ds, "S02-0002")
    assert (s.loc[4, "aval"], s.loc[4, "dtype"], s.loc[5, "dtype"]) == (8.0, "LOCF", "")


EXPECTED_TTE = {
    # (usubjid, paramcd): (aval days, cnsr)
    ("S01-0001", "OS28"): (28.0, 1),
    ("S01-0001", "OS90"): (90.0, 1),
    ("S01-0002", "OS28"): (3.0, 0),
    ("S01-0002", "OS90"): (3.0, 0),
    ("S02-0002", "OS28"): (28.0, 1),
    ("S02-0002", "OS90"): (40.0, 0),
    ("S03-0001", "OS28"): (20.0, 1),
    ("S03-0001", "OS90"): (20.0, 1),
    ("S01-0001", "SIDFREV"): (2.0, 0),
    ("S02-0001", "SIDFREV"): (4.0, 0),
    ("S03-0001", "SIDFREV"): (4.0, 1),  # crossed 8000 at its last draw only: censored there
}


def test_adtte_values_by_usubjid_and_parameter(ds: AnalysisDatasets) -> None:
    tte = ds.adtte.set_index(["usubjid", "paramcd"])
    for key, (aval, cnsr) in EXPECTED_TTE.items():
        assert (tte.loc[key, "aval"], tte.loc[key, "cnsr"]) == (aval, cnsr), key
    assert set(ds.adtte["paramcd"]) == {"OS28", "OS90", "SIDFREV"}
    # Outside the SIDF population, so no SIDFREV row: S02-0002 has no baseline ferritin, S01-0002 one serial draw.
    assert ("S02-0002", "SIDFREV") not in tte.index
    assert ("S01-0002", "SIDFREV") not in tte.index
    assert {"usubjid", "arm", "paramcd", "aval", "cnsr"} <= set(ds.adtte.columns)


def test_adae_groups_relatedness_and_sequences_events(ds: AnalysisDatasets) -> None:
    ae = ds.adae
    assert ae["usubjid"].tolist() == ["S01-0001", "S01-0001", "S01-0002"]
    assert ae["aeseq"].tolist() == [1, 2, 1]
    assert ae["arelgr1"].tolist() == ["not related", "not related", "related"]
    assert ae["aeser"].tolist() == [0, 1, 1] and ae["susar"].tolist() == [0, 0, 1]


def test_adae_carries_criteria_action_outcome_and_end_day_and_leaves_them_empty_when_not_given(
    ds: AnalysisDatasets,
) -> None:
    from immunosep.analysis.adae import derive_adae

    # the hand-built frame has none of the columns: every event leaves them empty
    assert ds.adae["aeacn"].tolist() == ["", "", ""] and ds.adae["aendy"].isna().all()
    assert ds.adae["aesdth"].isna().all() and str(ds.adae["aesdth"].dtype) == "Int8"
    raw = handmade_raw().adverse_events
    given = raw.assign(
        action=["DOSE NOT CHANGED", None, "DRUG WITHDRAWN", "NOT APPLICABLE"][: len(raw)],
        outcome=["RECOVERED/RESOLVED", None, "FATAL", "UNKNOWN"][: len(raw)],
        end_day=[6, None, 3, None][: len(raw)],
        crit_death=[False, None, True, False][: len(raw)],
        crit_hospitalization=[False, None, True, True][: len(raw)],
    )
    ae = derive_adae(ds.adsl, given)
    by_event = {(r.usubjid, r.onset_day): r for r in given.itertuples()}
    for _, row in ae.iterrows():
        source = by_event[(row["usubjid"], row["astdy"])]
        assert row["aeacn"] == (source.action or "") and row["aeout"] == (source.outcome or "")
        assert (pd.isna(row["aendy"]) and pd.isna(source.end_day)) or row["aendy"] == source.end_day
        for column, flag in (("aesdth", source.crit_death), ("aeshosp", source.crit_hospitalization)):
            assert (pd.isna(row[column]) and flag is None) or row[column] == int(flag)
        assert pd.isna(row["aeslife"])  # a criterion the frame does not give


def test_consort_counts(ds: AnalysisDatasets) -> None:
    c = ds.consort
    assert (c["screened"], c["excluded"], c["randomized"], c["analysed"]) == (9, 3, 6, 5)
    assert c["exclusion_reasons"] == {
        "meningitis": 2,
        "stage_iv_malignancy": 1,
        "unclassified immune state": 1,
    }
    assert c["withdrawn_by_arm"] == {"precision": 1, "placebo": 0}
    assert c["analysed_by_stratum_arm"]["mals"] == {"precision": 1, "placebo": 1}
    assert c["died_before_primary_window_end_by_arm"] == {"precision": 0, "placebo": 1}
    assert np.isclose(sum(c["analysed_by_arm"].values()), 5)


def test_a_sofa_matrix_shorter_than_an_endpoints_window_is_refused() -> None:
    raw, p = handmade_raw(), default_protocol()
    primary = p.endpoints.primary
    too_short = max(primary.window_last_day, primary.death_imputed_until_day) - 1
    with pytest.raises(ImmunoSepError, match="shorter than the endpoint window"):
        derive_sofa_endpoints(
            raw.patients["usubjid"], raw.daily_sofa, raw.vital_status, (primary,), too_short
        )
