"""The access log: who read or exported unblinded or sensitive data, and when, as entries of the audit chain.

A read changes no row, so the audit trail's flush hook never sees it. The services that show an allocation
(the pharmacist's regimen, allocation and list of patients on treatment, the DSMB report by arm, an
unblinded SDTM export) and the audit report export call :func:`log_access`, which appends one entry to
the same hash chain (``store.audit.append``): ``table_name`` :data:`ACCESS_TABLE` (no table of that name:
``audit verify`` replays no row for it), ``action`` ``read`` or ``export``, ``field`` what was read (the
permission's action name, or the export's name), ``row_id`` the patient's pseudonym when there is one, and
as new value a JSON object of the details (filters, formats, row counts; never an arm or a kit number).
The entry carries the patient as subject, so an erasure of that patient drops its details like the rest.

The entry is written in the caller's transaction, so a read through a read-only session fails instead of
going unlogged (the web routes of these reads run writable transactions: ``web.deps.logs_access``). An
emergency unblinding needs no entry here: it inserts an ``unblindings`` row, audited like every write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.store import audit

#: ``audit_log.table_name`` of access entries (a name of no table: a read changes no row).
ACCESS_TABLE = "access_log"
#: ``audit_log.action`` of access entries.
ACCESS_ACTIONS = ("read", "export")
#: Who made an access without an actor: the command line, with database access.
COMMAND_LINE = "command line (database access)"


def log_access(
    session: Session,
    actor: Actor | None,
    action: Literal["read", "export"],
    what: str,
    *,
    subject_id: int | None = None,
    pseudonym: str = "",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one access entry (``action`` of ``what``) for ``actor`` (None: the command line) to the chain.

    ``detail`` must not hold an allocation: blinded roles read these entries in the audit report.
    """
    if action not in ACCESS_ACTIONS:
        raise ValueError(f"access action must be one of {ACCESS_ACTIONS}, not {action!r}")
    info: dict[str, Any] = dict(detail or {})
    if actor is None:
        info["by"] = COMMAND_LINE
    session.flush()  # pending writes are entries of their own, attributed as they were
    saved = session.info.get("audit_user_id"), session.info.get("audit_reason", "")
    audit.set_context(session, actor.user_id if actor is not None else None, "")
    try:
        audit.append(
            session,
            [(ACCESS_TABLE, pseudonym, subject_id, action, what, None, json.dumps(info, sort_keys=True))],
        )
    finally:
        audit.set_context(session, saved[0], saved[1])
