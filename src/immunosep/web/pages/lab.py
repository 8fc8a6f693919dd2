"""The central lab's page: ferritin and mHLA-DR for one patient and protocol day, and the stratum they imply."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.biospecimens import record_draw
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.web.classify_form import Classified, classify_values
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, form_data, number, text
from immunosep.web.pages._render import render

router = APIRouter(route_class=TransactionRoute)


def _page(
    request: Request,
    actor: Actor,
    db: Session,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    receipt: Any = None,
    classified: Classified | None = None,
    status_code: int = 200,
) -> Response:
    p = protocol_of(db)
    return render(
        request,
        "lab.html",
        actor,
        db,
        status_code=status_code,
        title="Biomarkers",
        v=values,
        errors=errors,
        days=[
            (str(d), f"day {d}" + (" (baseline)" if d == p.biospecimens.baseline_day else ""))
            for d in p.biospecimens.days
        ],
        receipt=receipt,
        classified=classified,
        protocol=p,
    )


@router.get("/lab")
def lab_form(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "enter_biomarkers")
    return _page(request, actor, db, {"study_day": "1"}, FormErrors())


@router.post("/lab")
def lab_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values: dict[str, Any] = dict(form)
    errors = FormErrors()
    pseudonym = text(values, "pseudonym").upper()
    if not pseudonym:
        errors.add("pseudonym", "required (e.g. S01-0001, on the sample label)")
    day = number(values, "study_day", errors, required=True, integer=True)
    ferritin = number(values, "ferritin_ng_ml", errors)
    hla_dr = number(values, "hla_dr_per_monocyte", errors)
    if not errors:
        assert day is not None
        try:
            receipt = record_draw(
                db,
                actor,
                pseudonym,
                int(day),
                ferritin_ng_ml=ferritin,
                hla_dr_per_monocyte=hla_dr,
                reason=text(values, "reason"),
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            p = protocol_of(db)
            classified = None
            if receipt.study_day == p.biospecimens.baseline_day and receipt.ferritin_ng_ml is not None:
                classified = classify_values(receipt.ferritin_ng_ml, receipt.hla_dr_per_monocyte, p)
            return _page(
                request,
                actor,
                db,
                {"study_day": values.get("study_day")},
                FormErrors(),
                receipt=receipt,
                classified=classified,
            )
    return _page(request, actor, db, values, errors, status_code=422)
