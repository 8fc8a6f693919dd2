"""web.forms.read_model: a form is read into the one input model of its service, field by field from
the model's types, with one message per field; a blank lab unit is 'not stated'."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from immunosep.conduct.crf import ERROR_ITEM, DailyInputs, SofaInputs
from immunosep.conduct.screening import ScreeningInput
from immunosep.errors import ImmunoSepError
from immunosep.web.forms import FormErrors, read_model


def test_each_field_is_read_by_its_type_and_a_blank_one_takes_the_default() -> None:
    errors = FormErrors()
    form = {
        "gcs": "12",
        "bilirubin": "2,5",
        "bilirubin_unit": "umol/L",
        "ventilated": "on",
        "creatinine": "",
        "weight_kg": "80",
        "ckrt": "",
    }
    got = read_model(DailyInputs, form, errors)
    assert not errors
    assert got == DailyInputs(gcs=12, bilirubin=2.5, bilirubin_unit="umol/L", ventilated=True, weight_kg=80.0)


def test_a_blank_unit_is_not_stated_so_a_value_that_looks_like_umol_is_refused() -> None:
    inputs = read_model(SofaInputs, {"bilirubin": "25", "bilirubin_unit": ""}, FormErrors())
    assert inputs is not None and inputs.bilirubin_unit is None
    with pytest.raises(ImmunoSepError, match="looks like umol/L") as info:
        inputs.score()
    assert ERROR_ITEM[info.value.field or ""] == "bilirubin"
    assert SofaInputs(bilirubin=25, bilirubin_unit="mg/dL").score().liver == 4
    assert SofaInputs(bilirubin=25, bilirubin_unit="umol/L").score().liver == 1  # 1.46 mg/dL


def test_the_clinical_keywords_carry_the_units() -> None:
    keywords = SofaInputs(bilirubin=2.0, creatinine=150, creatinine_unit="umol/L").sofa_keywords()
    assert keywords["bilirubin_mg_dl"] == 2.0 and keywords["creatinine_mg_dl"] == 150
    assert keywords["creatinine_unit"] == "umol/L" and "bilirubin" not in keywords


def test_required_and_malformed_fields_get_a_message_each() -> None:
    errors = FormErrors()
    form = {"age_years": "sixty", "sofa_now": "7.5", "infection_type": "cap"}
    assert read_model(ScreeningInput, form, errors, screened_at=None) is None
    assert "not a number" in errors["age_years"]
    assert errors["sofa_now"] == "must be a whole number"
    assert errors["sex"] == errors["neutrophils_per_mm3"] == errors["sepsis_onset_at"] == "required"
    assert "infection_type" not in errors


def test_screening_reads_the_exclusions_and_a_time_without_zone_as_utc() -> None:
    form = {
        "age_years": "70",
        "sex": "female",
        "infection_type": "cap",
        "sepsis_onset_at": "2026-01-02T03:04",
        "sofa_now": "6",
        "neutrophils_per_mm3": "8000",
        "exclusions": "hiv",
    }
    errors = FormErrors()
    got = read_model(ScreeningInput, form, errors, screened_at=None)
    assert not errors and got is not None
    assert got.sepsis_onset_at == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert tuple(got.exclusions) == ("hiv",) and got.suspected_infection is False and got.cci is None
    errors = FormErrors()
    assert read_model(ScreeningInput, {**form, "sepsis_onset_at": "yesterday"}, errors) is None
    assert "YYYY-MM-DD" in errors["sepsis_onset_at"]
