"""``GET /api/bedside/classify`` and ``GET /api/bedside/sofa``: the bedside calculators as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from immunosep.clinical.sofa import SofaScore
from immunosep.conduct.access import Actor
from immunosep.conduct.crf import SofaInputs
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.web.classify_form import classify_form
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors
from immunosep.web.sofa_form import score_inputs

router = APIRouter(route_class=TransactionRoute, prefix="/bedside", tags=["bedside"])


class ClassifyOut(BaseModel):
    stratum: str
    label: str
    enrolled: bool
    rule: str


def _raise_first(errors: FormErrors) -> None:
    field, message = next(iter(errors.items()))
    raise ImmunoSepError(message if field == "_form" else f"{field}: {message}", field=field)


@router.get("/classify", response_model=ClassifyOut)
def classify(
    request: Request,
    ferritin_ng_ml: float,
    hla_dr: float | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> ClassifyOut:
    """Immune stratum of ferritin (ng/mL) and mHLA-DR (receptors per CD45/CD14 monocyte)."""
    errors = FormErrors()
    c = classify_form(dict(request.query_params), errors, protocol_of(db))
    if errors or c.stratum is None:
        _raise_first(errors)
    assert c.stratum is not None
    return ClassifyOut(stratum=c.stratum, label=c.label, enrolled=c.enrolled, rule=c.rule)


@router.get("/sofa", response_model=SofaScore)
def sofa(inputs: SofaInputs = Depends(), actor: Actor = Depends(current_actor)) -> SofaScore:
    """SOFA (Vincent 1996) of one patient-day; vasopressors in ug/kg/min; blank = not measured.

    Bilirubin and creatinine are read in mg/dL unless ``bilirubin_unit``/``creatinine_unit`` says
    umol/L; without a unit, a value that looks like umol/L is refused until the unit is stated.
    """
    errors = FormErrors()
    score = score_inputs(inputs, errors)
    if score is None:
        _raise_first(errors)
    assert score is not None
    return score
