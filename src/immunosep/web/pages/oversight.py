"""Monitor, data manager and DSMB pages: queries (re-opening, the edit checks), source data verification,
missing data, lock, the DSMB report, the audit trail, the emergency unblindings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct import sdv
from immunosep.conduct.access import Actor
from immunosep.conduct.audit_report import AuditFilters, audit_report, to_csv
from immunosep.conduct.crf import daily_records
from immunosep.conduct.edit_checks import CHECKS, CheckRun, run_checks
from immunosep.conduct.interim_looks import list_looks
from immunosep.conduct.lock import lock_patient, lock_trial
from immunosep.conduct.permissions import can, require
from immunosep.conduct.queries import (
    QUERYABLE,
    aging,
    answer_query,
    close_query,
    list_queries,
    raise_query,
    reopen_query,
)
from immunosep.conduct.reports import audit_trail, dsmb_summary, predictability_report
from immunosep.conduct.signatures import Credentials, first_signing, lock_signatures
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.unblinding import unblinding_report
from immunosep.conduct.worklist import worklist
from immunosep.errors import ImmunoSepError
from immunosep.report.audit_pdf import audit_report_pdf
from immunosep.web.deps import TransactionRoute, current_actor, get_db, logs_access
from immunosep.web.forms import FormErrors, form_data, number, text
from immunosep.web.pages._render import act_and_redirect, flash, render
from immunosep.web.security import session_token
from immunosep.web.signing import signing

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
    return _query_action(
        request, db, query_id, "answered", lambda: answer_query(db, actor, query_id, text(form, "answer"))
    )


@router.post("/queries/{query_id}/close")
def queries_close(
    query_id: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    return _query_action(
        request, db, query_id, "closed", lambda: close_query(db, actor, query_id, text(form, "reason"))
    )


@router.post("/queries/{query_id}/reopen")
def queries_reopen(
    query_id: int,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    return _query_action(
        request, db, query_id, "re-opened", lambda: reopen_query(db, actor, query_id, text(form, "reason"))
    )


def _query_action(
    request: Request, db: Session, query_id: int, done: str, action: Callable[[], object]
) -> Response:
    """Answer, close or re-open a query: "Query N <done>." or "Query N: <the error>", back to the queries."""

    def run() -> str:
        action()
        return f"Query {query_id} {done}."

    return act_and_redirect(request, db, run, "/queries", failed=f"Query {query_id}: ")


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

    def verify() -> str:
        sdv.verify_record(db, actor, pseudonym, record, item)
        return f"{record.replace('_', ' ')}{' ' + item if item else ''} verified."

    return act_and_redirect(request, db, verify, f"/patients/{pseudonym}/sdv")


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
    return render(
        request,
        "lock.html",
        actor,
        db,
        title="Lock",
        work=work,
        v={},
        errors=FormErrors(),
        signatures=lock_signatures(db, actor) if can(actor, "read_signatures") else [],
        ask_username=first_signing(db, actor, session_token(request.session)),
    )


@router.post("/lock")
def lock_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    pseudonym = text(form, "pseudonym").upper()

    def lock() -> str:
        if pseudonym:
            r = lock_patient(db, actor, pseudonym)
        else:  # the trial lock is signed by the data manager ("database lock approved")
            password = str(form.get("password") or "")
            if not password:
                raise ImmunoSepError("re-enter your password to sign the trial lock", field="password")
            creds = Credentials(password, text(form, "username"))
            token = session_token(request.session)
            r = signing(
                request, db, actor, lambda: lock_trial(db, actor, credentials=creds, session_token=token)
            )
        signed = f", signed: {r.signature.manifestation}" if r.signature else ""
        return f"{r.what} locked at {r.locked_at:%Y-%m-%d %H:%M} UTC{signed}."

    return act_and_redirect(request, db, lock, "/lock")


@router.get("/dsmb", dependencies=[Depends(logs_access)])
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
        looks=list_looks(db, actor) if p.design.type == "group-sequential" else None,
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


#: Entries the study-wide audit page shows; the downloads hold every entry of the filters.
AUDIT_PAGE_ROWS = 500


def _audit_filters(values: dict[str, Any], errors: FormErrors) -> AuditFilters:
    """The report's filters from the query string (``site``, ``patient``, ``user``, ``from``, ``to``)."""
    days: dict[str, date | None] = {}
    for name in ("from", "to"):
        raw = text(values, name)
        days[name] = None
        if raw:
            try:
                days[name] = date.fromisoformat(raw)
            except ValueError:
                errors.add(name, "a date, YYYY-MM-DD")
    return AuditFilters(
        site=text(values, "site"),
        patient=text(values, "patient"),
        user=text(values, "user"),
        date_from=days["from"],
        date_to=days["to"],
    )


@router.get("/audit")
def audit_report_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """The study-wide audit trail, filtered (monitors: their sites; data managers: all), with downloads."""
    require(actor, "read_audit_trail")
    values: dict[str, Any] = dict(request.query_params)
    errors = FormErrors()
    filters = _audit_filters(values, errors)
    report = None
    if not errors:
        try:
            report = audit_report(db, actor, filters, limit=AUDIT_PAGE_ROWS)
        except ImmunoSepError as exc:
            errors.add_error(exc)
    query = urlencode(
        {k: text(values, k) for k in ("site", "patient", "user", "from", "to") if text(values, k)}
    )
    return render(
        request,
        "audit.html",
        actor,
        db,
        status_code=422 if errors else 200,
        title="Audit trail report",
        report=report,
        v={k: text(values, k) for k in ("site", "patient", "user", "from", "to")},
        errors=errors,
        query=query,
    )


@router.get("/audit/download", dependencies=[Depends(logs_access)])
def audit_report_download(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """The filtered audit trail as CSV or PDF (``format``); the export itself is logged in the trail."""
    require(actor, "read_audit_trail")
    values: dict[str, Any] = dict(request.query_params)
    fmt = text(values, "format") or "csv"
    errors = FormErrors()
    filters = _audit_filters(values, errors)
    if errors:
        return Response("; ".join(f"{k}: {v}" for k, v in errors.items()), status_code=422)
    report = audit_report(db, actor, filters, export_format=fmt)
    stamp = f"{report.generated_at:%Y%m%dT%H%M%SZ}"
    name = f"audit-{report.trial}-{stamp}.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "pdf":
        return Response(audit_report_pdf(report), media_type="application/pdf", headers=disposition)
    return Response(to_csv(report), media_type="text/csv; charset=utf-8", headers=disposition)


@router.get("/unblindings")
def unblindings_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    """Every emergency unblinding in scope: who, when and why, never the arm."""
    events = unblinding_report(db, actor)
    return render(request, "unblindings.html", actor, db, title="Emergency unblindings", events=events)
