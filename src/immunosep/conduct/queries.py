"""Data queries as in the EDCs sites know: raised on a record, answered at the site, closed by oversight.

States: ``open`` -> ``answered`` (the site's investigator) -> ``closed`` (a monitor or data manager only,
``conduct.permissions``: ``close_query``); a monitor or data manager may re-open an answered or closed query
with a reason (``reopened``; the site answers again). Types: ``manual`` (raised by a monitor or data
manager) and ``automatic`` (opened by an edit check of :mod:`immunosep.conduct.edit_checks`, with its
``check_id``; closed automatically when the data are corrected). Aging (:func:`aging`): days since a query
not yet closed was raised, in buckets per site, for the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import (
    Actor,
    begin,
    ensure_writable,
    get_patient,
    in_scope,
    scope_condition,
)
from immunosep.conduct.permissions import require
from immunosep.conduct.reasons import require_meaningful
from immunosep.errors import ImmunoSepError
from immunosep.store.models import Patient, Query, Site, utcnow

STATUSES = ("open", "answered", "closed", "reopened")
TYPES = ("manual", "automatic")
#: Statuses waiting for the site (counted as open on the dashboard).
WAITING_FOR_SITE = ("open", "reopened")
#: Aging buckets in days since a query was raised: (label, first day, last day or None).
AGING_BUCKETS = (("0-7", 0, 7), ("8-14", 8, 14), ("15-30", 15, 30), (">30", 31, None))

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
    type: str = "manual"
    check_id: str = ""
    study_day: int | None = None
    close_reason: str = ""
    reopen_reason: str = ""
    reopened_at: datetime | None = None
    closed_at: datetime | None = None


def _record(pseudonym: str, q: Query) -> QueryRecord:
    return QueryRecord(
        q.id,
        pseudonym,
        q.table_name,
        q.row_id,
        q.field,
        q.text,
        q.status,
        q.answer,
        q.raised_at,
        q.type,
        q.check_id,
        q.study_day,
        q.close_reason,
        q.reopen_reason,
        q.reopened_at,
        q.closed_at,
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
        type="manual",
        check_id="",
        close_reason="",
        reopen_reason="",
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


def close_query(session: Session, actor: Actor, query_id: int, reason: str = "") -> QueryRecord:
    """Close a query (monitors and data managers only), optionally saying why (e.g. "value confirmed")."""
    require(actor, "close_query")
    begin(session, actor, "query closed")
    q, patient = _query(session, actor, query_id)
    ensure_writable(session, patient)
    if q.status == "closed":
        raise ImmunoSepError(f"query {query_id} is already closed")
    q.status, q.closed_by, q.closed_at = "closed", actor.user_id, utcnow()
    q.close_reason = reason.strip()
    session.flush()
    return _record(patient.pseudonym, q)


def reopen_query(session: Session, actor: Actor, query_id: int, reason: str) -> QueryRecord:
    """Re-open an answered or closed query with a reason (monitors and data managers): the site answers
    again. The reason, who and when are kept on the query and in the audit trail."""
    require(actor, "reopen_query")
    begin(session, actor, "query re-opened")
    q, patient = _query(session, actor, query_id)
    ensure_writable(session, patient)
    if q.status not in ("answered", "closed"):
        raise ImmunoSepError(
            f"query {query_id} is {q.status}; only an answered or closed query can be re-opened"
        )
    reason = require_meaningful(reason, "the reason for re-opening", field="reason")
    q.status, q.reopened_by, q.reopened_at, q.reopen_reason = "reopened", actor.user_id, utcnow(), reason
    q.closed_by, q.closed_at, q.close_reason = None, None, ""
    session.flush()
    return _record(patient.pseudonym, q)


def list_queries(
    session: Session, actor: Actor, *, status: str | None = None, type: str | None = None
) -> list[QueryRecord]:
    """Queries in the actor's scope, optionally only one status (open, answered, closed, reopened) or type."""
    require(actor, "read_queries")
    stmt = select(Query, Patient).join(Patient, Patient.id == Query.patient_id).order_by(Query.id)
    if status is not None:
        stmt = stmt.where(Query.status == status)
    if type is not None:
        stmt = stmt.where(Query.type == type)
    return [_record(p.pseudonym, q) for q, p in session.execute(stmt).all() if in_scope(actor, p.site_id)]


@dataclass(frozen=True)
class SiteAging:
    """Queries not closed at one site, by days since raised (``buckets``: label -> count)."""

    site: str
    buckets: dict[str, int] = field(default_factory=dict)
    total: int = 0
    oldest_days: int = 0
    automatic: int = 0


def bucket_of(days: int) -> str:
    """The aging bucket of a query open for ``days`` whole days."""
    for label, low, high in AGING_BUCKETS:
        if days >= low and (high is None or days <= high):
            return label
    raise ValueError(f"negative age {days}")


def aging(session: Session, actor: Actor, *, now: datetime | None = None) -> list[SiteAging]:
    """Per site in scope, the queries not yet closed by whole days since raised (0-7, 8-14, 15-30, >30)."""
    require(actor, "read_queries")
    now = now or utcnow()
    rows = session.execute(
        select(Site.code, Query.raised_at, Query.type)
        .join(Patient, Patient.id == Query.patient_id)
        .join(Site, Site.id == Patient.site_id)
        .where(Query.status != "closed", scope_condition(actor))
    ).all()
    per_site: dict[str, list[tuple[int, str]]] = {}
    for code, raised_at, kind in rows:
        per_site.setdefault(code, []).append((max(0, (now - raised_at).days), kind))
    out = []
    for code, ages in sorted(per_site.items()):
        buckets = {label: 0 for label, _, _ in AGING_BUCKETS}
        for days, _ in ages:
            buckets[bucket_of(days)] += 1
        out.append(
            SiteAging(
                code, buckets, len(ages), max(d for d, _ in ages), sum(k == "automatic" for _, k in ages)
            )
        )
    return out
