"""The API's hand-written JSON of hot records matches what ``dataclasses.asdict`` gives for them."""

from __future__ import annotations

from dataclasses import asdict

from immunosep.conduct.crf import DailyInputs, DailyRecord
from immunosep.web.api.clinical_data import _day_json


def test_day_json_is_asdict() -> None:
    record = DailyRecord(
        pseudonym="S01-0001",
        study_day=3,
        inputs=DailyInputs(weight_kg=70.5, gcs=12, ventilated=True, creatinine_unit="umol/L"),
        sofa_total=5,
        sofa_components={"respiration": 2, "renal": 1, "cns": 2},
        sofa_missing="liver",
    )
    out = _day_json(record)
    assert out == asdict(record)
    out["sofa_components"]["renal"] = 4  # a copy: the record is untouched
    assert record.sofa_components["renal"] == 1
