"""Monitor, data manager and DSMB pages: queries (re-opening, the edit checks), source data verification,
missing data, lock, the DSMB report, the audit trail, the emergency unblindings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct import sdv
from immunosep.conduct.access import Actor
from immunosep.conduct.crf import daily_records
from immunosep.conduct.edit_checks import CHECKS, CheckRun, run_checks
from immunosep.conduct.lock import lock_patient, lock_trial
from immunosep.conduct.permissions import require
from immunosep.conduct.queries import (
    QUERYABLE,
    aging,
    answer_query,
    close_query,
    list_queries,
    raise_query,
    reopen_query,
)
from immunosep.conduct.reports import audit_trail, dsmb_summary
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
    run: CheckRun | None = None,
) -> Response:
    return render(
        request,
        "queries.html",
        actor,
        db,
        status_code=status_code,
        title="Queries",
        queries=list_queries(db, actor),
        aging=aging(db, actor),
        checks=CHECKS,
        run=run,
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
    query_id: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    try:
        close_query(db, actor, query_id, text(form, "reason"))
        flash(request, "ok", f"Query {query_id} closed.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", f"Query {query_id}: {exc.message}")
    return RedirectResponse("/queries", status_code=303)


@router.post("/queries/{query_id}/reopen")
def queries_reopen(
    query_id: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    try:
        reopen_query(db, actor, query_id, text(form, "reason"))
        flash(request, "ok", f"Query {query_id} re-opened.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", f"Query {query_id}: {exc.message}")
    return RedirectResponse("/queries", status_code=303)


@router.post("/queries/run-checks")
def queries_run_checks(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """The data manager's button: every edit check on every patient in scope; the queries page, with what
    the run did (shown on the page, not queued as a message: it describes this run only)."""
    try:
        run = run_checks(db, actor)
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
        return RedirectResponse("/queries", status_code=303)
    return _queries(request, actor, db, {}, FormErrors(), run=run)


# -- source data verification ---------------------------------------------------------------------------
@router.get("/sdv")
def sdv_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Verification progress per site and per patient (monitors, data managers)."""
    sites, patients = sdv.progress(db, actor)
    return render(
        request,
        "sdv.html",
        actor,
        db,
        title="Source data verification",
        sites=sites,
        patients=patients,
        rate=protocol_of(db).monitoring.sdv_sample_rate,
    )


@router.get("/patients/{pseudonym}/sdv")
def sdv_patient_page(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """One patient's plan: each planned item, verified, changed since verified, or to verify."""
    plan = sdv.patient_plan(db, actor, pseudonym)
    return render(
        request,
        "sdv_patient.html",
        actor,
        db,
        title=f"Source data verification {pseudonym}",
        pseudonym=pseudonym,
        plan=plan,
        records=sorted({(i.record, i.table_name, i.study_day) for i in plan.items}, key=_record_order),
    )


def _record_order(r: tuple[str, str, int | None]) -> tuple[str, int]:
    return (r[1], r[2] or 0)


@router.post("/patients/{pseudonym}/sdv")
def sdv_verify(
    pseudonym: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Mark an item (or with no item the whole record) verified against source (monitors)."""
    record, item = text(form, "record"), text(form, "field")
    try:
        sdv.verify_record(db, actor, pseudonym, record, item)
        flash(request, "ok", f"{record.replace('_', ' ')}{' ' + item if item else ''} verified.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
    return RedirectResponse(f"/patients/{pseudonym}/sdv", status_code=303)


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
