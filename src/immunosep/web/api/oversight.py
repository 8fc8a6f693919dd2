"""Queries, data lock, the DSMB report by arm and the audit trail of a patient's records."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.lock import lock_patient, lock_trial
from immunosep.conduct.queries import answer_query, close_query, list_queries, raise_query
from immunosep.conduct.reports import audit_trail, dsmb_summary, predictability_report
from immunosep.conduct.worklist import worklist
from immunosep.web.bounds import PathId, RowId
from immunosep.web.deps import TransactionRoute, current_actor, get_db

router = APIRouter(route_class=TransactionRoute, tags=["oversight"])


class QueryIn(BaseModel):
    table_name: str = Field(max_length=40)
    text: str = Field(max_length=10_000)
    row_id: RowId | None = None
    field: str = Field(default="", max_length=60)


class AnswerIn(BaseModel):
    answer: str = Field(max_length=10_000)


@router.get("/queries")
def get_queries(
    status: Literal["open", "answered", "closed"] | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> list[dict[str, Any]]:
    """Queries in scope, optionally of one status."""
    return [asdict(q) for q in list_queries(db, actor, status=status)]


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
    query_id: PathId, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    return asdict(close_query(db, actor, query_id))


@router.post("/patients/{pseudonym}/lock")
def post_lock_patient(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Lock one patient's data (data manager; every query closed)."""
    return asdict(lock_patient(db, actor, pseudonym))


@router.post("/lock")
def post_lock_trial(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Lock the whole trial (data manager; every randomized patient locked)."""
    return asdict(lock_trial(db, actor))


@router.get("/dsmb")
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
