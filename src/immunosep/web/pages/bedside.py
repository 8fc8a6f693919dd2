"""The bedside calculators (any logged-in user): immune classification and SOFA, live as you type."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.trial import protocol_of
from immunosep.web.classify_form import Classified, classify_form
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors
from immunosep.web.pages._render import render
from immunosep.web.sofa_form import score_form

router = APIRouter(route_class=TransactionRoute)

SOFA_LABELS = {
    "pao2_fio2_mmhg": "PaO2/FiO2",
    "platelets_1e3_ul": "Platelets",
    "bilirubin": "Bilirubin",
    "map_mmhg": "MAP",
    "gcs": "GCS",
    "creatinine": "Creatinine",
    "urine_ml_day": "Urine output",
}


@router.get("/bedside")
def bedside_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    values = dict(request.query_params)
    protocol = protocol_of(db)
    classify_errors, sofa_errors = FormErrors(), FormErrors()
    classified = classify_form(values, classify_errors, protocol) if values else Classified()
    score = score_form(values, sofa_errors) if values else None
    return render(
        request,
        "bedside.html",
        actor,
        db,
        title="Bedside calculators",
        protocol=protocol,
        v=values,
        errors=classify_errors | sofa_errors,
        classified=classified,
        classify_errors=classify_errors,
        sofa_errors=sofa_errors,
        score=score,
        labels=SOFA_LABELS,
    )


@router.get("/fragments/classify")
def classify_fragment(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    errors = FormErrors()
    c = classify_form(dict(request.query_params), errors, protocol_of(db))
    return render(
        request,
        "_classify_result.html",
        actor,
        stratum=c.stratum,
        label=c.label,
        rule=c.rule,
        enrolled=c.enrolled,
        errors=errors,
    )


@router.get("/fragments/sofa")
def sofa_fragment(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """The SOFA total and components of the inputs typed so far (the daily CRF uses it too)."""
    errors = FormErrors()
    score = score_form(dict(request.query_params), errors)
    return render(request, "_sofa_result.html", actor, score=score, errors=errors, labels=SOFA_LABELS)
