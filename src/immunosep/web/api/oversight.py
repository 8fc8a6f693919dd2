"""Queries (with the edit checks and their aging), source data verification, data lock, the DSMB report by
arm, the audit trail of a patient's records and the ODM export."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct import sdv
from immunosep.conduct.access import Actor
from immunosep.conduct.audit_report import AuditFilters, audit_report, to_csv
from immunosep.conduct.edit_checks import CHECKS, run_checks
from immunosep.conduct.lock import lock_patient, lock_trial
from immunosep.conduct.odm import odm_document
from immunosep.conduct.permissions import require
from immunosep.conduct.queries import (
    aging,
    answer_query,
    close_query,
    list_queries,
    raise_query,
    reopen_query,
)
from immunosep.conduct.reports import audit_trail, dsmb_summary, predictability_report
from immunosep.conduct.signatures import Credentials
from immunosep.conduct.worklist import worklist
from immunosep.report.audit_pdf import audit_report_pdf
from immunosep.web.bounds import PathId, RowId
from immunosep.web.deps import TransactionRoute, current_actor, get_db, logs_access
from immunosep.web.security import session_token
from immunosep.web.signing import signing

router = APIRouter(route_class=TransactionRoute, tags=["oversight"])


class QueryIn(BaseModel):
    table_name: str = Field(max_length=40)
    text: str = Field(max_length=10_000)
    row_id: RowId | None = None
    field: str = Field(default="", max_length=60)


class AnswerIn(BaseModel):
    answer: str = Field(max_length=10_000)


class CloseIn(BaseModel):
    reason: str = Field(default="", max_length=10_000)


class ReopenIn(BaseModel):
    reason: str = Field(max_length=10_000)


class VerifyIn(BaseModel):
    """The record (``table_name`` and ``row_id``) and the item verified; ``field`` "" = the whole record."""

    table_name: str = Field(max_length=40)
    row_id: RowId
    field: str = Field(default="", max_length=60)


@router.get("/queries")
def get_queries(
    status: Literal["open", "answered", "closed", "reopened"] | None = None,
    type: Literal["manual", "automatic"] | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> list[dict[str, Any]]:
    """Queries in scope, optionally of one status or type."""
    return [asdict(q) for q in list_queries(db, actor, status=status, type=type)]


@router.get("/queries/aging")
def get_query_aging(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """Queries not closed per site, by days since raised (0-7, 8-14, 15-30, >30)."""
    return [asdict(a) for a in aging(db, actor)]


@router.get("/edit-checks")
def get_edit_checks(actor: Actor = Depends(current_actor)) -> list[dict[str, Any]]:
    """The automatic edit checks (ID, kind, record, rule) that open queries by themselves."""
    require(actor, "read_queries")
    return [asdict(c) for c in CHECKS]


@router.post("/edit-checks/run")
def post_run_edit_checks(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Run every edit check on every patient in scope (data manager): queries opened, closed, kept."""
    return asdict(run_checks(db, actor))


@router.post("/queries/{query_id}/reopen")
def post_reopen(
    query_id: PathId, body: ReopenIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Re-open an answered or closed query with a reason (monitor, data manager)."""
    return asdict(reopen_query(db, actor, query_id, body.reason))


@router.get("/sdv")
def get_sdv_progress(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Source data verification progress per site and per patient in scope (monitor, data manager)."""
    sites, patients = sdv.progress(db, actor)
    return {"sites": [asdict(x) for x in sites], "patients": [asdict(x) for x in patients]}


@router.get("/patients/{pseudonym}/sdv")
def get_sdv_plan(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """The patient's verification plan: each planned item, verified or not (monitor, data manager)."""
    return asdict(sdv.patient_plan(db, actor, pseudonym))


@router.post("/patients/{pseudonym}/sdv")
def post_sdv(
    pseudonym: str, body: VerifyIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Mark an item, or a whole record, verified against source (monitor)."""
    return asdict(sdv.verify(db, actor, pseudonym, **body.model_dump()))


@router.post("/patients/{pseudonym}/queries", status_code=201)
def post_query(
    pseudonym: str, body: QueryIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Raise a query on a record (monitor, data manager)."""
    return asdict(raise_query(db, actor, pseudonym, **body.model_dump()))


@router.post("/queries/{query_id}/answer")
def post_answer(
    query_id: PathId, body: AnswerIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Answer a query (investigator of the site)."""
    return asdict(answer_query(db, actor, query_id, body.answer))


@router.post("/queries/{query_id}/close")
def post_close(
    query_id: PathId,
    body: CloseIn | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Close a query (monitor, data manager), optionally with a reason."""
    return asdict(close_query(db, actor, query_id, body.reason if body else ""))


@router.post("/patients/{pseudonym}/lock")
def post_lock_patient(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Lock one patient's data (data manager; every query closed)."""
    return asdict(lock_patient(db, actor, pseudonym))


class LockSignIn(BaseModel):
    """The data manager's signature of the lock: the password, and the username at the session's first signing."""

    password: str = Field(min_length=1, max_length=1000)
    username: str = Field(default="", max_length=100)


@router.post("/lock", responses={422: {}, 429: {}})
def post_lock_trial(
    body: LockSignIn,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Lock the whole trial, signed "database lock approved" (data manager; every randomized patient locked)."""
    creds = Credentials(body.password, body.username)
    token = session_token(request.session)
    result = signing(
        request, db, actor, lambda: lock_trial(db, actor, credentials=creds, session_token=token)
    )
    return asdict(result)


@router.get("/dsmb", dependencies=[Depends(logs_access)])
def get_dsmb(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Counts by arm for the DSMB: randomized, deaths by mortality day, SAEs, SUSARs."""
    return [asdict(s) for s in dsmb_summary(db, actor)]


@router.get("/dsmb/predictability")
def get_dsmb_predictability(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Randomization predictability for the DSMB: correct guesses by the convergence strategy, per site and pooled."""
    return asdict(predictability_report(db, actor))


@router.get("/patients/{pseudonym}/audit")
def get_audit(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """The audit trail of one patient's records (monitor, data manager), without allocation tables."""
    return [asdict(e) for e in audit_trail(db, actor, pseudonym)]


@router.get("/worklist")
def get_worklist(
    site: str | None = None, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """The dashboard's worklist: patients in scope (or of one ``site`` code) with their next step, what is
    due today and what is overdue (investigators, monitors, data managers; never an arm)."""
    return asdict(worklist(db, actor, site=site))


@router.get(
    "/export/odm",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "CDISC ODM 1.3.2 (XML)"}},
)
def get_odm(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> Response:
    """The clinical data of the caller's sites with their audit records as CDISC ODM 1.3.2, blinded
    (data managers: every site; investigators and monitors: their own)."""
    data, _ = odm_document(db, actor)
    return Response(
        data,
        media_type="application/xml",
        headers={"Content-Disposition": 'attachment; filename="immunosep-odm.xml"'},
    )


@router.get("/audit", dependencies=[Depends(logs_access)], response_model=None)
def get_audit_report(
    format: Literal["json", "csv", "pdf"] = "json",
    site: Annotated[str, Query(max_length=16)] = "",
    patient: Annotated[str, Query(max_length=32)] = "",
    user: Annotated[str, Query(max_length=100)] = "",
    date_from: Annotated[date | None, Query(alias="from")] = None,
    date_to: Annotated[date | None, Query(alias="to")] = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any] | Response:
    """The study-wide audit trail within the filters (monitor: assigned sites; data manager: all), as JSON,
    CSV or PDF; blinded (no allocation records), sealed values and secrets never shown. Logged as an export."""
    filters = AuditFilters(site, patient, user, date_from, date_to)
    report = audit_report(db, actor, filters, export_format=format)
    if format == "pdf":
        return Response(audit_report_pdf(report), media_type="application/pdf")
    if format == "csv":
        return Response(to_csv(report), media_type="text/csv; charset=utf-8")
    return {
        "trial": report.trial,
        "generated_at": report.generated_at.isoformat(),
        "generated_by": report.generated_by,
        "blinded": report.blinded,
        "filters": report.filters.described(),
        "entries": [asdict(r) for r in report.rows],
    }
