"""A survival interim look (analysis/interim.py, ``endpoint = "survival"``) vs R: validation/interim_survival.R.

On a fixed dataset of 120 patients (time to death to day 28), the signed log-rank z must equal
``survival::survdiff``'s (its square root, signed by observed minus expected in the treatment arm), the Cox
hazard ratio and the SE of its log ``coxph``'s (Efron ties), the information fraction ``deaths / the
design's maximum events`` rpact's (``getSampleSizeSurvival``), and the boundary, decision, repeated P-value,
conditional power under H1 and conditional rejection probability ``getAnalysisResults``'s.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from immunosep.analysis.datasets import AnalysisDatasets
from immunosep.analysis.interim import analyse_group_sequential
from immunosep.errors import ImmunoSepError
from immunosep.protocol import bundled_protocol_path, parse_protocol

REFERENCE = Path(__file__).resolve().parents[2] / "validation" / "reference" / "interim_survival.json"
REF = json.loads(REFERENCE.read_text(encoding="utf-8"))
RTOL = 1e-6


def survival_protocol():  # type: ignore[no-untyped-def]
    text = (bundled_protocol_path().parent / "examples" / "immunosep_gsd.toml").read_text(encoding="utf-8")
    text = re.sub(
        r'endpoint = "binary"',
        f'endpoint = "survival"\nhazard_ratio = {REF["hazard_ratio_h1"]}\nhorizon_day = {REF["horizon_day"]}',
        text,
    )
    text = text.replace('futility = "non-binding"', 'futility = "none"')
    return parse_protocol(text)


def datasets() -> AnalysisDatasets:
    d = REF["data"]
    adtte = pd.DataFrame(
        {
            "usubjid": d["usubjid"],
            "arm": d["arm"],
            "paramcd": f"OS{REF['horizon_day']}",
            "aval": [float(v) for v in d["aval"]],
            "cnsr": d["cnsr"],
        }
    )
    empty = pd.DataFrame()
    return AnalysisDatasets(adsl=empty, adsofa=empty, adtte=adtte, adae=empty, consort={}, locked=False)


@pytest.mark.requirement("GSD-08", "GSD-11")
def test_survival_look_equals_r() -> None:
    out = analyse_group_sequential(datasets(), survival_protocol(), history=[])
    assert out is not None and out["endpoint"] == "survival"
    assert out["design"]["maximum"] == pytest.approx(REF["max_events"], rel=RTOL)
    assert out["information"] == REF["events"]
    assert out["information_rate"] == pytest.approx(REF["information_rate"], rel=RTOL)
    assert out["z"] == pytest.approx(REF["z"], rel=1e-9)
    assert out["logrank"]["observed_treatment"] == REF["observed"]
    assert out["logrank"]["expected_treatment"] == pytest.approx(REF["expected"], rel=1e-9)
    assert out["log_hazard_ratio"] == pytest.approx(REF["log_hazard_ratio"], rel=1e-5)
    assert out["standard_error"] == pytest.approx(REF["se"], rel=1e-5)
    look = out["look"]
    assert look["efficacy_z"] == pytest.approx(REF["efficacy_z"], rel=RTOL)
    assert (look["action"] == "stop for efficacy") is REF["rejected"]
    assert look["action"] == "continue"
    assert out["effect"]["repeated_ci"] == pytest.approx(REF["rci_hazard_ratio"], rel=1e-5)
    assert look["repeated_p"] == pytest.approx(REF["repeated_p"], abs=1e-6)
    assert look["conditional_power_h1"] == pytest.approx(REF["conditional_power_h1"], rel=RTOL)
    assert look["conditional_rejection_probability"] == pytest.approx(
        REF["conditional_rejection_probability"], rel=RTOL
    )
    assert math.exp(out["log_hazard_ratio"]) == pytest.approx(out["hazard_ratio"], rel=1e-12)


def test_horizon_day_is_for_a_survival_endpoint_only() -> None:
    text = (bundled_protocol_path().parent / "examples" / "immunosep_gsd.toml").read_text(encoding="utf-8")
    with pytest.raises(ImmunoSepError, match="horizon_day is for a survival endpoint only"):
        parse_protocol(text.replace('endpoint = "binary"', 'endpoint = "binary"\nhorizon_day = 28'))
