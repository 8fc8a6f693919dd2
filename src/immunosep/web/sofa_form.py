"""The SOFA inputs of the daily CRF and the bedside calculator, read from a form or query string.

Field names are the daily CRF's column names (units in the names); ``clinical.sofa.sofa`` does the scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from immunosep.clinical.sofa import SofaScore, sofa
from immunosep.errors import ImmunoSepError
from immunosep.web.forms import FormErrors, checked, number, text

#: form field -> keyword of ``clinical.sofa.sofa``
NUMERIC_FIELDS = {
    "pao2_fio2_mmhg": "pao2_fio2_mmhg",
    "platelets_1e3_ul": "platelets_1e3_ul",
    "bilirubin": "bilirubin",
    "map_mmhg": "map_mmhg",
    "dopamine_ug_kg_min": "dopamine",
    "dobutamine_ug_kg_min": "dobutamine",
    "epinephrine_ug_kg_min": "epinephrine",
    "norepinephrine_ug_kg_min": "norepinephrine",
    "gcs": "gcs",
    "creatinine": "creatinine",
    "urine_ml_day": "urine_ml_day",
}
UNITS = ("mg/dL", "umol/L")
#: keyword of ``clinical.sofa.sofa`` (as named in its errors) -> form field
ERROR_FIELDS = {v: k for k, v in NUMERIC_FIELDS.items()} | {
    "bilirubin_mg_dl": "bilirubin",
    "creatinine_mg_dl": "creatinine",
    "pao2_fio2": "pao2_fio2_mmhg",
    "dopamine_ug_kg_min": "dopamine_ug_kg_min",
    "dobutamine_ug_kg_min": "dobutamine_ug_kg_min",
    "epinephrine_ug_kg_min": "epinephrine_ug_kg_min",
    "norepinephrine_ug_kg_min": "norepinephrine_ug_kg_min",
}


def sofa_inputs(form: Mapping[str, Any], errors: FormErrors) -> dict[str, Any]:
    """The keyword arguments of ``clinical.sofa.sofa`` from form values; problems go to ``errors``."""
    kwargs: dict[str, Any] = {
        kw: number(form, name, errors, integer=(name == "gcs")) for name, kw in NUMERIC_FIELDS.items()
    }
    kwargs["ventilated"] = checked(form, "ventilated")
    for unit_field in ("bilirubin_unit", "creatinine_unit"):
        unit = text(form, unit_field) or "mg/dL"
        if unit not in UNITS:
            errors.add(unit_field, f"unit must be one of {', '.join(UNITS)}")
            unit = "mg/dL"
        kwargs[unit_field] = unit
    return kwargs


def score_form(form: Mapping[str, Any], errors: FormErrors) -> SofaScore | None:
    """The SOFA of the form's inputs, or None with messages in ``errors``."""
    kwargs = sofa_inputs(form, errors)
    if errors:
        return None
    try:
        return sofa(**kwargs)
    except ImmunoSepError as exc:
        errors.add_error(exc, ERROR_FIELDS)
        return None
