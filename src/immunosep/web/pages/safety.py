"""Adverse events (with the MedDRA picker), emergency unblinding and withdrawal of consent (mirrors
``web.api.safety``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.clinical.adverse_events import ACTIONS, OUTCOMES, SERIOUSNESS_CRITERIA
from immunosep.conduct.access import Actor, get_patient
from immunosep.conduct.adverse_events import RELATEDNESS, adverse_events, record_adverse_event, susar_report
from immunosep.conduct.permissions import require
from immunosep.conduct.unblinding import MIN_REASON_LENGTH, emergency_unblind
from immunosep.conduct.withdrawal import compact, withdraw
from immunosep.conduct.worklist import worklist
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, checked, form_data, number, text
from immunosep.web.meddra_search import search_terms
from immunosep.web.pages._patient_form import form_page, form_values
from immunosep.web.pages._render import attempt, flash, render

router = APIRouter(route_class=TransactionRoute)


# -- adverse events -------------------------------------------------------------------------------------
@router.get("/ae")
def ae_overview(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """SUSARs in scope and the randomized patients to report an event for."""
    work = worklist(db, actor)
    return render(
        request,
        "ae_overview.html",
        actor,
        db,
        title="Adverse events",
        susars=susar_report(db, actor),
        patients=[line for line in work.patients if line.status == "randomized"],
    )


def _ae_page(
    request: Request,
    actor: Actor,
    db: Session,
    pseudonym: str,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    return form_page(
        request,
        actor,
        db,
        "ae.html",
        f"{pseudonym} adverse event",
        pseudonym,
        values,
        errors,
        status_code,
        relatedness=[("", "—"), *((r, r) for r in RELATEDNESS)],
        actions=[("", "—"), *((a, a) for a in ACTIONS)],
        outcomes=[("", "—"), *((o, o) for o in OUTCOMES)],
        criteria=[(f"criterion_{name}", meaning) for name, (_, meaning) in SERIOUSNESS_CRITERIA.items()],
        events=adverse_events(db, actor, pseudonym),
    )


@router.get("/patients/{pseudonym}/ae")
def ae_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "record_ae")
    get_patient(db, actor, pseudonym)
    return _ae_page(request, actor, db, pseudonym, {}, FormErrors())


@router.get("/fragments/meddra")
def meddra_fragment(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    """Up to a dozen MedDRA terms containing the typed text, to pick from."""
    query = request.query_params.get("term", "")
    terms = search_terms(request.app.state.meddra, query)
    return render(request, "_meddra.html", actor, terms=terms, query=query)


@router.post("/patients/{pseudonym}/ae")
def ae_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values = form_values(form)
    errors = FormErrors()
    onset = number(values, "onset_day", errors, required=True, integer=True)
    term = text(values, "term")
    if not term:
        errors.add("term", "required: search and pick a MedDRA term")
    end = number(values, "end_day", errors, integer=True)
    relatedness = text(values, "relatedness")
    if relatedness not in RELATEDNESS:
        errors.add("relatedness", "choose one")
    action, outcome = text(values, "action"), text(values, "outcome")
    if action not in ACTIONS:
        errors.add("action", "choose one")
    if outcome not in OUTCOMES:
        errors.add("outcome", "choose one")
    if not errors:
        assert onset is not None
        ae = attempt(
            db,
            errors,
            lambda: record_adverse_event(
                db,
                actor,
                pseudonym,
                onset_day=int(onset),
                term=term,
                serious=checked(values, "serious"),
                criteria=[name for name in SERIOUSNESS_CRITERIA if checked(values, f"criterion_{name}")],
                relatedness=relatedness,
                expected=checked(values, "expected"),
                action=action,
                outcome=outcome,
                end_day=None if end is None else int(end),
                verbatim=text(values, "verbatim"),
                meddra=request.app.state.meddra,
            ),
        )
        if ae is not None:
            if ae.susar:
                flash(request, "bad", f"SUSAR: {ae.pt_name} was flagged and reported at once.")
            else:
                flash(request, "ok", f"Adverse event {ae.pt_name} ({ae.soc_name}) recorded.")
            return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return _ae_page(request, actor, db, pseudonym, values, errors, status_code=422)


# -- emergency unblinding -------------------------------------------------------------------------------
@router.get("/patients/{pseudonym}/unblind")
def unblind_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask for the reason and a confirmation before the one disclosure of an arm to the ward."""
    require(actor, "unblind_emergency")
    get_patient(db, actor, pseudonym)
    return form_page(
        request,
        actor,
        db,
        "unblind.html",
        f"{pseudonym} emergency unblinding",
        pseudonym,
        {},
        FormErrors(),
        min_reason=MIN_REASON_LENGTH,
    )


@router.post("/patients/{pseudonym}/unblind")
def unblind_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Unblind and show the arm on this response only: no redirect, so the arm never rides in a flash
    message in the session cookie."""
    values = form_values(form)
    errors = FormErrors()
    if not checked(values, "confirm"):
        errors.add("confirm", "tick to confirm that the patient's care depends on knowing the treatment")
    reason = text(values, "reason")
    if len(reason) < MIN_REASON_LENGTH:
        errors.add("reason", f"give the clinical reason, at least {MIN_REASON_LENGTH} characters")
    disclosure = (
        attempt(db, errors, lambda: emergency_unblind(db, actor, pseudonym, reason)) if not errors else None
    )
    if disclosure is not None:
        return form_page(
            request,
            actor,
            db,
            "unblind.html",
            f"{pseudonym} unblinded",
            pseudonym,
            values,
            errors,
            disclosure=disclosure,
        )
    return form_page(
        request,
        actor,
        db,
        "unblind.html",
        f"{pseudonym} emergency unblinding",
        pseudonym,
        values,
        errors,
        422,
        min_reason=MIN_REASON_LENGTH,
    )


# -- withdrawal of consent ------------------------------------------------------------------------------
WITHDRAWAL_CHOICES = {
    "keep": "stop the study treatment and follow-up; keep the data collected so far",
    "erase": "remove all the patient's data from the trial (nothing can be recovered)",
}


@router.get("/patients/{pseudonym}/withdraw")
def withdraw_form(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Ask what the patient (or relative) withdrew and for a confirmation: neither can be undone."""
    require(actor, "record_withdrawal")
    get_patient(db, actor, pseudonym)
    return form_page(
        request,
        actor,
        db,
        "withdraw.html",
        f"{pseudonym} withdrawal",
        pseudonym,
        {},
        FormErrors(),
        choices=list(WITHDRAWAL_CHOICES.items()),
    )


@router.post("/patients/{pseudonym}/withdraw")
def withdraw_submit(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Record the withdrawal; with removal of data, commit the erasure and compact the database (as the
    API does), so the values leave the database files too."""
    values = form_values(form)
    errors = FormErrors()
    choice = text(values, "choice")
    if choice not in WITHDRAWAL_CHOICES:
        errors.add("choice", "choose whether the data collected so far are kept or removed")
    if not checked(values, "confirm"):
        errors.add("confirm", "tick to confirm that consent was withdrawn")
    if choice == "erase" and text(values, "typed").upper() != pseudonym.upper():
        errors.add("typed", f"type {pseudonym} to confirm the removal of all its data")
    result = (
        attempt(db, errors, lambda: withdraw(db, actor, pseudonym, erase_data=choice == "erase"))
        if not errors
        else None
    )
    if result is not None:
        if result.data_erased:
            db.commit()
            compact(request.app.state.engine)
            rows = sum(result.rows_erased.values())
            flash(request, "ok", f"{pseudonym} withdrew consent; its data were removed ({rows} records).")
            return RedirectResponse("/dashboard", status_code=303)
        flash(request, "ok", f"{pseudonym} withdrew consent; the data collected so far are kept.")
        return RedirectResponse(f"/patients/{pseudonym}", status_code=303)
    return form_page(
        request,
        actor,
        db,
        "withdraw.html",
        f"{pseudonym} withdrawal",
        pseudonym,
        values,
        errors,
        422,
        choices=list(WITHDRAWAL_CHOICES.items()),
    )
