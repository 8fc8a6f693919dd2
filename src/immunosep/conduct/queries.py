"""Data queries: raised by a monitor or data manager on a record, answered at the site, then closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import (
    Actor,
    begin,
    ensure_writable,
    get_patient,
    in_scope,
)
from immunosep.conduct.permissions import require
from immunosep.errors import ImmunoSepError
from immunosep.store.models import Patient, Query, utcnow

#: Tables a query may point at (clinical, arm-free data only).
QUERYABLE = (
    "patients",
    "daily_crf",
    "biomarker_draws",
    "adverse_events",
    "outcomes",
    "consents",
    "screening_log",
)


@dataclass(frozen=True)
class QueryRecord:
    id: int
    pseudonym: str
    table_name: str
    row_id: int | None
    field: str
    text: str
    status: str
    answer: str
    raised_at: datetime


def _record(pseudonym: str, q: Query) -> QueryRecord:
    return QueryRecord(
        q.id, pseudonym, q.table_name, q.row_id, q.field, q.text, q.status, q.answer, q.raised_at
    )


def raise_query(
    session: Session,
    actor: Actor,
    pseudonym: str,
    *,
    table_name: str,
    text: str,
    row_id: int | None = None,
    field: str = "",
) -> QueryRecord:
    require(actor, "raise_query")
    begin(session, actor, "query raised")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if table_name not in QUERYABLE:
        raise ImmunoSepError(f"queries point at one of {QUERYABLE}", field="table_name")
    if not text.strip():
        raise ImmunoSepError("a query needs a question", field="text")
    q = Query(
        patient_id=patient.id,
        table_name=table_name,
        row_id=row_id,
        field=field,
        text=text,
        raised_by=actor.user_id,
    )
    session.add(q)
    session.flush()
    return _record(pseudonym, q)


def _query(session: Session, actor: Actor, query_id: int) -> tuple[Query, Patient]:
    row = session.execute(
        select(Query, Patient).join(Patient, Patient.id == Query.patient_id).where(Query.id == query_id)
    ).first()
    if row is None or not in_scope(actor, row[1].site_id):
        raise ImmunoSepError(f"no query {query_id} among the queries you may access")
    return row[0], row[1]


def answer_query(session: Session, actor: Actor, query_id: int, answer: str) -> QueryRecord:
    require(actor, "answer_query")
    begin(session, actor, "query answered")
    q, patient = _query(session, actor, query_id)
    ensure_writable(session, patient)
    if q.status == "closed":
        raise ImmunoSepError(f"query {query_id} is closed")
    if not answer.strip():
        raise ImmunoSepError("an answer must not be empty", field="answer")
    q.answer, q.status, q.answered_by, q.answered_at = answer, "answered", actor.user_id, utcnow()
    session.flush()
    return _record(patient.pseudonym, q)


def close_query(session: Session, actor: Actor, query_id: int) -> QueryRecord:
    require(actor, "close_query")
    begin(session, actor, "query closed")
    q, patient = _query(session, actor, query_id)
    ensure_writable(session, patient)
    if q.status == "closed":
        raise ImmunoSepError(f"query {query_id} is already closed")
    q.status, q.closed_by, q.closed_at = "closed", actor.user_id, utcnow()
    session.flush()
    return _record(patient.pseudonym, q)


def list_queries(session: Session, actor: Actor, *, status: str | None = None) -> list[QueryRecord]:
    """Queries in the actor's scope, optionally only one status (open, answered, closed)."""
    require(actor, "read_queries")
    stmt = select(Query, Patient).join(Patient, Patient.id == Query.patient_id).order_by(Query.id)
    if status is not None:
        stmt = stmt.where(Query.status == status)
    return [_record(p.pseudonym, q) for q, p in session.execute(stmt).all() if in_scope(actor, p.site_id)]
