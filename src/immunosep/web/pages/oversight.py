"""Monitor, data manager and DSMB pages: queries, missing data, lock, the DSMB report, the audit trail,
the emergency unblindings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.crf import daily_records
from immunosep.conduct.lock import lock_patient, lock_trial
from immunosep.conduct.permissions import require
from immunosep.conduct.queries import QUERYABLE, answer_query, close_query, list_queries, raise_query
from immunosep.conduct.reports import audit_trail, dsmb_summary, predictability_report
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.unblinding import unblinding_report
from immunosep.conduct.worklist import worklist
from immunosep.errors import ImmunoSepError
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, form_data, number, text
from immunosep.web.pages._render import flash, render

router = APIRouter(route_class=TransactionRoute)


@router.get("/queries")
def queries_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    return _queries(request, actor, db, {}, FormErrors())


def _queries(
    request: Request,
    actor: Actor,
    db: Session,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "queries.html",
        actor,
        db,
        status_code=status_code,
        title="Queries",
        queries=list_queries(db, actor),
        tables=[(t, t.replace("_", " ")) for t in QUERYABLE],
        v=values,
        errors=errors,
    )


@router.post("/queries")
def queries_raise(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values: dict[str, Any] = dict(form)
    errors = FormErrors()
    pseudonym = text(values, "pseudonym").upper()
    if not pseudonym:
        errors.add("pseudonym", "required")
    row_id = number(values, "row_id", errors, integer=True)
    if not errors:
        try:
            q = raise_query(
                db,
                actor,
                pseudonym,
                table_name=text(values, "table_name"),
                text=text(values, "text"),
                row_id=None if row_id is None else int(row_id),
                field=text(values, "field"),
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add_error(exc)
        else:
            flash(request, "ok", f"Query {q.id} raised on {q.pseudonym}.")
            return RedirectResponse("/queries", status_code=303)
    if "_form" in errors and "pseudonym" not in errors:
        errors["pseudonym"] = errors.pop("_form")
    return _queries(request, actor, db, values, errors, status_code=422)


@router.post("/queries/{query_id}/answer")
def queries_answer(
    query_id: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    try:
        answer_query(db, actor, query_id, text(form, "answer"))
        flash(request, "ok", f"Query {query_id} answered.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", f"Query {query_id}: {exc.message}")
    return RedirectResponse("/queries", status_code=303)


@router.post("/queries/{query_id}/close")
def queries_close(
    query_id: int, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    try:
        close_query(db, actor, query_id)
        flash(request, "ok", f"Query {query_id} closed.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", f"Query {query_id}: {exc.message}")
    return RedirectResponse("/queries", status_code=303)


@router.get("/missing")
def missing_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Overdue CRF days and draws, and SOFA components not measured, per patient (monitors, data managers)."""
    require(actor, "review_missing_data")
    work = worklist(db, actor)
    components = []
    for line in work.patients:
        if line.status == "randomized":
            components += [
                (line.pseudonym, r.study_day, r.sofa_missing.replace(",", ", "))
                for r in daily_records(db, actor, line.pseudonym)
                if r.sofa_missing
            ]
    return render(request, "missing.html", actor, db, title="Missing data", work=work, components=components)


@router.get("/lock")
def lock_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "lock")
    work = worklist(db, actor)
    return render(request, "lock.html", actor, db, title="Lock", work=work, v={}, errors=FormErrors())


@router.post("/lock")
def lock_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    pseudonym = text(form, "pseudonym").upper()
    try:
        r = lock_patient(db, actor, pseudonym) if pseudonym else lock_trial(db, actor)
        flash(request, "ok", f"{r.what} locked at {r.locked_at:%Y-%m-%d %H:%M} UTC.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
    return RedirectResponse("/lock", status_code=303)


@router.get("/dsmb")
def dsmb_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    p = protocol_of(db)
    return render(
        request,
        "dsmb.html",
        actor,
        db,
        title="DSMB safety report",
        arms=dsmb_summary(db, actor),
        guesses=predictability_report(db, actor),
        arm_labels={a.code: a.label for a in p.arms},
        days=p.endpoints.mortality.days,
    )


@router.get("/patients/{pseudonym}/audit")
def audit_page(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    return render(
        request,
        "audit.html",
        actor,
        db,
        title=f"Audit trail {pseudonym}",
        pseudonym=pseudonym,
        entries=audit_trail(db, actor, pseudonym),
    )


@router.get("/unblindings")
def unblindings_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Every emergency unblinding in scope: who, when and why, never the arm."""
    events = unblinding_report(db, actor)
    return render(request, "unblindings.html", actor, db, title="Emergency unblindings", events=events)
