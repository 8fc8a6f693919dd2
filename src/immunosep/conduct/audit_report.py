"""The study-wide audit report: the audit trail filtered by site, patient, user and date, as rows and CSV.

For monitors and data managers (``read_audit_trail``) and the command line (database access). What a
reader never gets, whoever asks:

- entries of the allocation tables (``conduct.blinding.ALLOCATION_TABLES``) when the reader is blinded (the
  command line is treated as blinded: it is the data manager's tool);
- sealed values (an arm, a kit number): the trail keeps only a keyed digest, shown as ``<sealed>``;
- secrets and bulky text copied into the trail with their rows: password hashes, session-token digests and
  the protocol text (its SHA-256 stays in the trial row), shown as ``<redacted>``.

Site scope: a monitor sees the entries of the patients of the assigned sites only; a data manager (and the
command line) also sees entries about no patient (accounts, sites, the trial, the access log) and those of
erased patients (their values are gone). Every export (``export_format``) is logged in the chain itself
(``conduct.access_log``): who exported which filters, in which format, how many entries.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, get_patient, scope_site_ids, site_by_code, trial
from immunosep.conduct.access_log import ACCESS_TABLE, COMMAND_LINE, log_access
from immunosep.conduct.blinding import ALLOCATION_TABLES, is_blinded
from immunosep.conduct.permissions import require
from immunosep.conduct.users import normalize_username
from immunosep.errors import ImmunoSepError
from immunosep.store.models import AuditEntry, Patient, Site, User, utcnow

#: Formats an audit report is exported in (JSON: the API).
EXPORT_FORMATS = ("csv", "pdf", "json")
#: ``(table, column)`` whose values the report never shows (secrets, and the protocol's kilobytes of text).
REDACTED_FIELDS = frozenset(
    {
        ("users", "password_hash"),
        ("account_approvals", "password_hash"),
        ("user_sessions", "token_sha256"),
        ("trials", "protocol_text"),
    }
)
_REDACTED_TABLES = frozenset(t for t, _ in REDACTED_FIELDS)
REDACTED = "<redacted>"
SEALED = "<sealed>"
_SEALED_PREFIX = "<sealed:"


@dataclass(frozen=True)
class AuditFilters:
    """Which entries a report holds: a site code, a patient pseudonym, a username, dates (UTC, inclusive)."""

    site: str = ""
    patient: str = ""
    user: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def described(self) -> dict[str, str]:
        """The filters that are set, as text (for the report's header and the access log)."""
        out = {
            "site": self.site,
            "patient": self.patient,
            "user": self.user,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class AuditReportRow:
    """One entry of the trail as the report shows it (``record``: the table; ``user``: the username)."""

    id: int
    at: str
    user: str
    site: str
    patient: str
    record: str
    row_id: str
    action: str
    field: str
    old_value: str
    new_value: str
    reason: str
    erased: bool
    entry_hash: str


#: The CSV's columns, in order.
CSV_COLUMNS = tuple(f.name for f in fields(AuditReportRow))


@dataclass(frozen=True)
class AuditReport:
    trial: str
    generated_at: datetime
    generated_by: str
    blinded: bool
    filters: AuditFilters
    rows: tuple[AuditReportRow, ...]
    #: True when ``limit`` cut the rows (the web page's preview); exports are never cut.
    truncated: bool = False


def _displayed(table: str, field: str, value: str | None) -> str:
    """A value as the report shows it: sealed digests and redacted fields replaced, NULL as empty."""
    if value is None:
        return ""
    if (table, field) in REDACTED_FIELDS:
        return REDACTED
    if value.startswith(_SEALED_PREFIX):
        return SEALED
    if (field == "*" and table in _REDACTED_TABLES) or _SEALED_PREFIX in value:
        try:
            row = json.loads(value)
        except ValueError:
            return value
        if isinstance(row, dict):
            for key, v in row.items():
                if (table, key) in REDACTED_FIELDS:
                    row[key] = REDACTED
                elif isinstance(v, str) and v.startswith(_SEALED_PREFIX):
                    row[key] = SEALED
            return json.dumps(row, sort_keys=True)
    return value


def _statement(session: Session, actor: Actor | None, filters: AuditFilters, blinded: bool) -> Any:
    """The SELECT of the report's entries (entry, username, site code, pseudonym), filtered in SQL."""
    stmt = (
        select(AuditEntry, User.username, Site.code, Patient.pseudonym)
        .outerjoin(User, User.id == AuditEntry.user_id)
        .outerjoin(Patient, Patient.id == AuditEntry.subject_id)
        .outerjoin(Site, Site.id == Patient.site_id)
        .order_by(AuditEntry.id)
    )
    if blinded:
        stmt = stmt.where(AuditEntry.table_name.not_in(sorted(ALLOCATION_TABLES)))
    sites = scope_site_ids(actor) if actor is not None else None
    if sites is not None:
        stmt = stmt.where(Patient.site_id.in_(sorted(sites)))
    if filters.site:
        site = site_by_code(session, filters.site.strip().upper())
        if sites is not None and site.id not in sites:
            raise ImmunoSepError(f"site {site.code} is not among the sites you may access")
        stmt = stmt.where(Patient.site_id == site.id)
    if filters.patient:
        pseudonym = filters.patient.strip().upper()
        if actor is not None:
            patient_id: int | None = get_patient(session, actor, pseudonym).id
        else:
            patient_id = session.execute(select(Patient.id).where(Patient.pseudonym == pseudonym)).scalar()
            if patient_id is None:
                raise ImmunoSepError(f"no patient {pseudonym!r} (an erased patient keeps no pseudonym here)")
        stmt = stmt.where(AuditEntry.subject_id == patient_id)
    if filters.user:
        username = normalize_username(filters.user)
        uid = session.execute(select(User.id).where(User.username == username)).scalar()
        if uid is None:
            raise ImmunoSepError(f"no user {filters.user!r}: give a username as `immunosep user add` made it")
        stmt = stmt.where(AuditEntry.user_id == uid)
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ImmunoSepError(
            f"the date range ends ({filters.date_to}) before it starts ({filters.date_from})"
        )
    # ``at`` is ISO 8601 in UTC, so text order is time order.
    if filters.date_from:
        stmt = stmt.where(AuditEntry.at >= filters.date_from.isoformat())
    if filters.date_to:
        stmt = stmt.where(AuditEntry.at < (filters.date_to + timedelta(days=1)).isoformat())
    return stmt


def audit_report(
    session: Session,
    actor: Actor | None,
    filters: AuditFilters | None = None,
    *,
    export_format: str | None = None,
    limit: int | None = None,
) -> AuditReport:
    """The audit trail of the whole study within ``filters``, as ``actor`` may see it (None: command line).

    With ``export_format`` (``csv``, ``pdf``, ``json``) the export is logged in the audit chain first (who, which
    filters, which format, how many entries); ``limit`` (a page's preview) keeps the first entries only.
    """
    if actor is not None:
        require(actor, "read_audit_trail")
    if export_format is not None and export_format not in EXPORT_FORMATS:
        raise ImmunoSepError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {export_format!r}")
    filters = filters or AuditFilters()
    blinded = actor is None or is_blinded(actor.role)
    stmt = _statement(session, actor, filters, blinded)
    if limit is not None:
        stmt = stmt.limit(limit + 1)
    rows = []
    for e, username, site, pseudonym in session.execute(stmt):
        user = username or (COMMAND_LINE if e.user_id is None else f"user {e.user_id}")
        patient = pseudonym or ("" if e.subject_id is None else f"(erased patient {e.subject_id})")
        rows.append(
            AuditReportRow(
                id=e.id,
                at=e.at,
                user=user,
                site=site or "",
                patient=patient or (e.row_id if e.table_name == ACCESS_TABLE else ""),
                record=e.table_name,
                row_id=e.row_id,
                action=e.action,
                field=e.field,
                old_value=_displayed(e.table_name, e.field, e.old_value),
                new_value=_displayed(e.table_name, e.field, e.new_value),
                reason=e.reason,
                erased=bool(e.erased),
                entry_hash=e.entry_hash,
            )
        )
    truncated = limit is not None and len(rows) > limit
    if truncated:
        rows = rows[:limit]
    if export_format is not None:
        detail = {"format": export_format, "filters": filters.described(), "entries": len(rows)}
        log_access(session, actor, "export", "audit_report", detail=detail)
    return AuditReport(
        trial=trial(session).code,
        generated_at=utcnow(),
        generated_by=actor.username if actor is not None else COMMAND_LINE,
        blinded=blinded,
        filters=filters,
        rows=tuple(rows),
        truncated=truncated,
    )


def to_csv(report: AuditReport) -> str:
    """The report's entries as CSV (one header row, :data:`CSV_COLUMNS`; the filters are in the file name
    and the access log, not in the file, so any CSV reader takes it as it is)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        writer.writerow([getattr(row, c) for c in CSV_COLUMNS])
    return buf.getvalue()
