"""``GET /api/bedside/classify`` and ``GET /api/bedside/sofa``: the bedside calculators as JSON."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.web.classify_form import classify_form
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors
from immunosep.web.sofa_form import score_form

router = APIRouter(route_class=TransactionRoute, prefix="/bedside", tags=["bedside"])


class ClassifyOut(BaseModel):
    stratum: str
    label: str
    enrolled: bool
    rule: str


class SofaOut(BaseModel):
    respiration: int
    coagulation: int
    liver: int
    cardiovascular: int
    cns: int
    renal: int
    total: int
    missing: list[str]


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


@router.get("/sofa", response_model=SofaOut)
def sofa(
    request: Request,
    pao2_fio2_mmhg: float | None = None,
    ventilated: bool = False,
    platelets_1e3_ul: float | None = None,
    bilirubin: float | None = None,
    bilirubin_unit: str = "mg/dL",
    map_mmhg: float | None = None,
    dopamine_ug_kg_min: float | None = None,
    dobutamine_ug_kg_min: float | None = None,
    epinephrine_ug_kg_min: float | None = None,
    norepinephrine_ug_kg_min: float | None = None,
    gcs: int | None = None,
    creatinine: float | None = None,
    creatinine_unit: str = "mg/dL",
    urine_ml_day: float | None = None,
    actor: Actor = Depends(current_actor),
) -> SofaOut:
    """SOFA (Vincent 1996) of one patient-day; vasopressors in ug/kg/min; blank = not measured."""
    errors = FormErrors()
    score = score_form(dict(request.query_params), errors)
    if score is None:
        _raise_first(errors)
    assert score is not None
    return SofaOut(**{**score.__dict__, "missing": list(score.missing)})
