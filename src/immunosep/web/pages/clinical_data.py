"""The daily CRF with live SOFA, and the outcomes (mirrors ``web.api.clinical_data``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.crf import ERROR_ITEM, DailyInputs, daily_records, record_day
from immunosep.conduct.outcomes import OUTCOME_DAYS, get_outcome, record_outcome
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, checked, form_data, number, read_model, text
from immunosep.web.pages._patient_form import form_page, form_values
from immunosep.web.pages._render import flash, render
from immunosep.web.sofa_form import score_form

router = APIRouter(route_class=TransactionRoute)


# -- daily CRF ------------------------------------------------------------------------------------------
def _crf_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    study_day: int,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    existing: bool,
    status_code: int = 200,
) -> Response:
    score = score_form(values, FormErrors()) if values else None
    return render(
        request,
        "crf.html",
        actor,
        db,
        status_code=status_code,
        title=f"{pseudonym} day {study_day}",
        pseudonym=pseudonym,
        study_day=study_day,
        v=values,
        errors=errors,
        score=score,
        existing=existing,
        labels={},
    )


@router.get("/patients/{pseudonym}/crf/{study_day}")
def crf_form(
    pseudonym: str,
    study_day: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> Response:
    require(actor, "enter_crf")
    stored = next((r for r in daily_records(db, actor, pseudonym) if r.study_day == study_day), None)
    values: dict[str, Any] = {}
    if stored is not None:
        # As the form would send them (strings, "on" for ticked boxes), so the live score starts right.
        values = {
            k: "on" if v is True else str(v)
            for k, v in asdict(stored.inputs).items()
            if v is not None and v is not False
        }
    return _crf_page(
        request, actor, db, pseudonym, study_day, values, FormErrors(), existing=stored is not None
    )


@router.post("/patients/{pseudonym}/crf/{study_day}")
def crf_submit(
    pseudonym: str,
    study_day: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = form_values(form)
    errors = FormErrors()
    inputs = read_model(DailyInputs, values, errors)
    existing = checked(values, "existing")
    if inputs is not None:
        try:
            record = record_day(db, actor, pseudonym, study_day, inputs, reason=text(values, "reason"))
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc, ERROR_ITEM)
        else:
            flash(request, "ok", f"Day {study_day} saved: SOFA {record.sofa_total}.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _crf_page(
        request, actor, db, pseudonym, study_day, values, errors, existing=existing, status_code=422
    )


# -- outcomes -------------------------------------------------------------------------------------------
def _outcome_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    *,
    stored: bool,
    status_code: int = 200,
) -> Response:
    p = protocol_of(db)
    return form_page(
        request,
        actor,
        db,
        "outcome.html",
        f"{pseudonym} outcome",
        pseudonym,
        values,
        errors,
        status_code,
        stored=stored,
        last_day=max(p.endpoints.mortality.days),
        infection_day=p.endpoints.infection_day15.day,
        levels=[("", "not assessed yet"), *((lv, lv) for lv in p.endpoints.infection_day15.levels)],
    )


@router.get("/patients/{pseudonym}/outcome")
def outcome_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Vital status, ICU discharge and the infection state on day 15, prefilled with what is stored."""
    require(actor, "record_outcome")
    current = asdict(get_outcome(db, actor, pseudonym))
    shown = {k: current[k] for k in (*OUTCOME_DAYS, "infection_day15")}
    values = {k: "" if v is None else str(v) for k, v in shown.items()}
    stored = any(v is not None for v in shown.values())
    return _outcome_page(request, actor, db, pseudonym, values, FormErrors(), stored=stored)


@router.post("/patients/{pseudonym}/outcome")
def outcome_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Set the outcome as the form shows it: a blank field is not known (yet); changing a stored value,
    or blanking it, needs a reason (the service refuses otherwise and nothing is stored)."""
    values = form_values(form)
    errors = FormErrors()
    days = {k: number(values, k, errors, integer=True) for k in OUTCOME_DAYS}
    infection = text(values, "infection_day15") or None
    if not errors:
        try:
            record_outcome(
                db,
                actor,
                pseudonym,
                **{k: None if v is None else int(v) for k, v in days.items()},
                infection_day15=infection,
                reason=text(values, "reason"),
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            flash(request, "ok", f"Outcome of {pseudonym} saved.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _outcome_page(
        request, actor, db, pseudonym, values, errors, stored=checked(values, "stored"), status_code=422
    )
