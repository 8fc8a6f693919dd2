"""The SOFA of a form or query string: the bedside calculator, its fragment and API, and the daily CRF.

The fields are those of the one input model, ``conduct.crf.SofaInputs`` (units in the names; bilirubin
and creatinine with the unit the form sends); ``SofaInputs.score`` does the scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from immunosep.clinical.sofa import SofaScore
from immunosep.conduct.crf import ERROR_ITEM, SofaInputs
from immunosep.errors import ImmunoSepError
from immunosep.web.forms import FormErrors, read_model


def score_inputs(inputs: SofaInputs, errors: FormErrors) -> SofaScore | None:
    """The SOFA of ``inputs``, or None with the refusal filed under the form field it is about."""
    try:
        return inputs.score()
    except ImmunoSepError as exc:
        errors.add_error(exc, ERROR_ITEM)
        return None


def score_form(form: Mapping[str, Any], errors: FormErrors) -> SofaScore | None:
    """The SOFA of the form's inputs, or None with messages in ``errors``."""
    inputs = read_model(SofaInputs, form, errors)
    return None if inputs is None else score_inputs(inputs, errors)
