"""Screening with live eligibility, consent, classification and randomization with confirmation
(mirrors ``web.api.screening``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, get_patient
from immunosep.conduct.classification import classify_patient
from immunosep.conduct.permissions import require
from immunosep.conduct.randomization import allocate
from immunosep.conduct.screening import SEXES, ScreeningInput, eligibility_reasons, record_consent, screen
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.models import utcnow
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, form_data, read_model, text
from immunosep.web.pages._patient_form import form_values
from immunosep.web.pages._render import act_and_redirect, attempt, flash, render

router = APIRouter(route_class=TransactionRoute)


# -- screening ------------------------------------------------------------------------------------------
def _screening_input(form: dict[str, Any], errors: FormErrors) -> ScreeningInput | None:
    """The screening answers of the form (the API's model), screened now."""
    return read_model(ScreeningInput, form, errors, screened_at=None)


def _screening_page(
    request: Request,
    actor: Actor,
    db: Session,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    p = protocol_of(db)
    return render(
        request,
        "screening.html",
        actor,
        db,
        status_code=status_code,
        title="Screening",
        v=values,
        errors=errors,
        infection_types=[(t, p.eligibility.infection_label(t)) for t in p.eligibility.infection_types],
        exclusions=p.eligibility.exclusions,
        sexes=[("", "—"), *((s, s) for s in SEXES)],
        reasons=None,
    )


@router.get("/screening")
def screening_form(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "screen")
    now = utcnow().strftime("%Y-%m-%dT%H:%M")
    return _screening_page(
        request, actor, db, {"suspected_infection": "on", "sepsis_onset_at": now}, FormErrors()
    )


@router.get("/fragments/eligibility")
def eligibility_fragment(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Live eligibility while the screening form is filled in (nothing is stored)."""
    require(actor, "screen")
    values: dict[str, Any] = dict(request.query_params)
    values["exclusions"] = request.query_params.getlist("exclusions")
    errors = FormErrors()
    data = _screening_input(values, errors)
    reasons = eligibility_reasons(db, data, utcnow()) if data is not None else None
    return render(request, "_eligibility.html", actor, reasons=reasons, errors=errors)


@router.post("/screening")
def screening_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = form_values(form)
    errors = FormErrors()
    data = _screening_input(values, errors)
    result = attempt(db, errors, lambda: screen(db, actor, data)) if data is not None else None
    if result is not None:
        if result.eligible:
            flash(
                request,
                "ok",
                f"{result.pseudonym} screened: eligible. Next: baseline draw to the central lab.",
            )
        else:
            flash(
                request, "warn", f"{result.pseudonym} screened: not eligible ({'; '.join(result.reasons)})."
            )
        return RedirectResponse(f"/patients/{result.pseudonym}", status_code=303)
    return _screening_page(request, actor, db, values, errors, status_code=422)


@router.post("/patients/{pseudonym}/consent")
def consent_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:

    def consent() -> str:
        record_consent(db, actor, pseudonym, text(form_values(form), "given_by"))
        return "Consent recorded."

    return act_and_redirect(request, db, consent, f"/patients/{pseudonym}")


@router.post("/patients/{pseudonym}/classify")
def classify_submit(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:

    def classify() -> tuple[str, str]:
        r = classify_patient(db, actor, pseudonym)
        if r.enrolled:
            return "ok", f"Stratum: {r.stratum}. The patient can be randomized after consent."
        return "warn", f"Stratum: {r.stratum}; not enrolled ({r.reason})."

    return act_and_redirect(request, db, classify, f"/patients/{pseudonym}")


@router.get("/patients/{pseudonym}/randomize")
def randomize_confirm(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask for confirmation before the allocation, which cannot be undone."""
    require(actor, "randomize")
    patient = get_patient(db, actor, pseudonym)
    return render(request, "randomize.html", actor, db, title="Randomize", patient=patient, allocation=None)


@router.post("/patients/{pseudonym}/randomize")
def randomize_submit(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    try:
        allocation = allocate(db, actor, pseudonym)
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
        return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    patient = get_patient(db, actor, pseudonym)
    return render(
        request, "randomize.html", actor, db, title="Randomized", patient=patient, allocation=allocation
    )
