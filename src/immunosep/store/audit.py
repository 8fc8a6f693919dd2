"""The audit trail: every insert, update and delete, append-only and hash-chained.

Captured from SQLAlchemy session events, so a service cannot forget it: an insert is one entry with the
whole new row (``field="*"``), an update one entry per changed field (old and new value), a delete one
entry with the whole old row. Who and why come from :func:`set_context` (``session.info``).

Chain design (chosen so that erasure keeps the chain verifiable): each entry's ``entry_hash`` is
SHA-256 over the previous entry's hash and the entry's metadata plus the *digests* of its old and new
values, never the values themselves. For patient data the digest is HMAC-SHA256 under a random key kept
per patient in ``patient_keys``; for other data the key is empty. Erasing a patient sets the values of
their entries to NULL (``erased``), deletes their key (so the remaining digests cannot be linked back to
any value by guessing), and appends an ``erase`` entry. ``verify`` then still checks every link of the
chain, and for every entry that still holds values, that the values match their digests: changing,
deleting or inserting an audit row is detected.

Writers serialize on the chain: on PostgreSQL a transaction-scoped advisory lock is taken at its first
audited flush; on SQLite every transaction is ``BEGIN IMMEDIATE`` (see :mod:`immunosep.store.db`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, event, insert, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import await_, in_greenlet

from immunosep.store.models import SEALED_COLUMN, AuditEntry, Base, Patient, PatientKey, utcnow

GENESIS = "0" * 64
#: Advisory-lock key serializing audit-chain appends on PostgreSQL ("IMMUNOSEP" in ASCII, truncated).
CHAIN_LOCK_KEY = 0x494D4D554E4F
#: Values never copied into the audit trail: they would unblind whoever reads it. Declared on the models
#: (``info={SEALED_COLUMN: True}``), the declaration ``conduct.blinding.SEALED_COLUMNS`` also reads.
SEALED_FIELDS = frozenset(
    (table.name, column.name)
    for table in Base.metadata.tables.values()
    for column in table.columns
    if column.info.get(SEALED_COLUMN)
)
SEALED = "<sealed>"
_NOT_AUDITED = {"audit_log", "patient_keys"}
# Statements of every audited write, built once.
_LAST = select(AuditEntry.id, AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
_KEY = select(PatientKey.key).where(PatientKey.patient_id == bindparam("subject"))
#: The chain's last entry and one patient's key, in one round trip (most appends concern one patient).
_LAST_AND_KEY = (
    select(AuditEntry.id, AuditEntry.entry_hash, _KEY.scalar_subquery())
    .order_by(AuditEntry.id.desc())
    .limit(1)
)
_INSERT_KEY = insert(PatientKey)
_INSERT_ENTRY = insert(AuditEntry)
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_TRY_CHAIN_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")


def set_context(session: Session, user_id: int | None, reason: str = "") -> None:
    """Who is changing data in this session, and why (recorded on every entry that follows)."""
    session.info["audit_user_id"] = user_id
    session.info["audit_reason"] = reason


def _to_text(value: Any) -> str | None:
    """A stored value as the text that is digested and kept: JSON, ISO 8601 for dates, hex for bytes."""
    if value is None:
        return None
    kind = type(value)
    # Numbers and plain strings are most of what is written; json.dumps gives the same text, more slowly.
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)
    if kind is str and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(value, default=str)


def _row_values(obj: Base) -> dict[str, Any]:
    state = inspect(obj)
    table = obj.__table__.name  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        value = getattr(obj, attr.key)
        out[attr.key] = SEALED if (table, attr.key) in SEALED_FIELDS else _to_text(value)
    return out


def _subject(obj: Base) -> int | None:
    if isinstance(obj, Patient):
        return obj.id
    pid = getattr(obj, "patient_id", None)
    return pid if isinstance(pid, int) else None


def _pk(obj: Base) -> str:
    ident = inspect(obj).identity
    return ",".join(str(v) for v in ident) if ident else ""


def _digest(key: bytes, value: str | None) -> str:
    if value is None:
        return ""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 of the previous hash and the entry's metadata and value digests (never the values)."""
    payload = [
        prev_hash,
        row["at"],
        row["user_id"],
        row["table_name"],
        row["row_id"],
        row["subject_id"],
        row["action"],
        row["field"],
        row["old_digest"],
        row["new_digest"],
        row["reason"],
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode("utf-8")).hexdigest()


def acquire_chain_lock(session: Session) -> None:
    """Serialize with every other writer of the audit chain until this transaction ends.

    On PostgreSQL a handler that runs on the event loop (in a greenlet, ``web.deps.inline``) tries the lock
    first and, if another writer has it, waits for it in a thread of its own while the loop runs on;
    anywhere else this thread waits in PostgreSQL's queue of waiters. SQLite's lock is the transaction's
    ``BEGIN IMMEDIATE`` (``store.db``), taken by the first statement here.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql" and not session.info.get("audit_locked"):
        params = {"k": CHAIN_LOCK_KEY}
        if not in_greenlet():
            conn.execute(_CHAIN_LOCK, params)
        elif not conn.execute(_TRY_CHAIN_LOCK, params).scalar():
            await_(asyncio.to_thread(conn.execute, _CHAIN_LOCK, params))
        session.info["audit_locked"] = True


def _patient_key(conn: Connection, session: Session, subject: int | None) -> bytes:
    if subject is None:
        return b""
    cache: dict[int, bytes] = session.info.setdefault("audit_keys", {})
    if subject in cache:
        return cache[subject]
    key = conn.execute(_KEY, {"subject": subject}).scalar()
    cache[subject] = key if key is not None else _new_key(conn, subject)
    return cache[subject]


def _new_key(conn: Connection, subject: int) -> bytes:
    key = secrets.token_bytes(32)
    conn.execute(_INSERT_KEY, {"patient_id": subject, "key": key})
    return key


def _last_entry(conn: Connection, session: Session, subject: int | None) -> Any:
    """The chain's last entry (id, hash), reading ``subject``'s key in the same statement when not known yet."""
    keys: dict[int, bytes] = session.info.setdefault("audit_keys", {})
    if subject is None or subject in keys:
        return conn.execute(_LAST).first()
    last = conn.execute(_LAST_AND_KEY, {"subject": subject}).first()
    if last is not None:  # the chain has entries, so the key column was read: stored, or none yet
        keys[subject] = last[2] if last[2] is not None else _new_key(conn, subject)
    return last


def append(
    session: Session,
    changes: Iterable[tuple[str, str, int | None, str, str, str | None, str | None]],
) -> int:
    """Append entries ``(table, row_id, subject_id, action, field, old, new)`` to the chain.

    Used by the flush hook and by services that change rows with bulk SQL. Returns the number appended.
    """
    rows = list(changes)
    if not rows:
        return 0
    acquire_chain_lock(session)
    conn = session.connection()
    last = _last_entry(conn, session, next((r[2] for r in rows if r[2] is not None), None))
    next_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    user_id = session.info.get("audit_user_id")
    reason = session.info.get("audit_reason", "")
    at = utcnow().isoformat()
    records = []
    for table, row_id, subject, action, field, old, new in rows:
        key = _patient_key(conn, session, subject)
        rec: dict[str, Any] = {
            "id": next_id,
            "at": at,
            "user_id": user_id,
            "table_name": table,
            "row_id": row_id,
            "subject_id": subject,
            "action": action,
            "field": field,
            "old_value": old,
            "new_value": new,
            "old_digest": _digest(key, old),
            "new_digest": _digest(key, new),
            "reason": reason,
            "erased": False,
            "prev_hash": prev,
        }
        rec["entry_hash"] = prev = entry_hash(prev, rec)
        records.append(rec)
        next_id += 1
    conn.execute(_INSERT_ENTRY, records)
    return len(records)


def _audited(obj: object) -> bool:
    return isinstance(obj, Base) and obj.__table__.name not in _NOT_AUDITED  # type: ignore[attr-defined]


def _before_flush(session: Session, _ctx: object, _instances: object) -> None:
    pending: list[tuple[str, str, int | None, str, str, str | None, str | None]] = []
    for obj in session.dirty:
        if not _audited(obj) or not session.is_modified(obj, include_collections=False):
            continue
        state = inspect(obj)
        table = obj.__table__.name
        for attr in state.mapper.column_attrs:
            hist = state.attrs[attr.key].history
            if not hist.has_changes():
                continue
            old = hist.deleted[0] if hist.deleted else None
            new = hist.added[0] if hist.added else None
            old_t: str | None
            new_t: str | None
            if (table, attr.key) in SEALED_FIELDS:  # a change is recorded, the values are not
                old_t, new_t = f"{SEALED} before", f"{SEALED} after"
            else:
                old_t, new_t = _to_text(old), _to_text(new)
            if old_t == new_t:
                continue
            pending.append((table, _pk(obj), _subject(obj), "update", attr.key, old_t, new_t))
    for obj in session.deleted:
        if _audited(obj):
            values = json.dumps(_row_values(obj), sort_keys=True)
            pending.append((obj.__table__.name, _pk(obj), _subject(obj), "delete", "*", values, None))
    session.info["audit_pending"] = pending
    session.info["audit_new"] = [o for o in session.new if _audited(o)]
    if pending or session.info["audit_new"]:
        acquire_chain_lock(session)


def _after_flush(session: Session, _ctx: object) -> None:
    pending = session.info.pop("audit_pending", [])
    for obj in session.info.pop("audit_new", []):
        values = json.dumps(_row_values(obj), sort_keys=True)
        pending.append((obj.__table__.name, _pk(obj), _subject(obj), "insert", "*", None, values))
    append(session, pending)


def _after_end(session: Session, _transaction: object) -> None:
    session.info.pop("audit_locked", None)
    session.info.pop("audit_keys", None)


def install(session_class: type[Session]) -> None:
    """Attach the audit hooks to a Session class (done once by :mod:`immunosep.store.db`)."""
    event.listen(session_class, "before_flush", _before_flush)
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "after_commit", lambda s: _after_end(s, None))
    event.listen(session_class, "after_rollback", lambda s: _after_end(s, None))


def erase_subject(session: Session, subject_id: int, table_counts: dict[str, int]) -> None:
    """Scrub one patient's values from the trail, shred their key, and record the erasure.

    Call after the patient's rows are deleted and flushed. The ``erase`` entry records only how many
    rows per table were removed.
    """
    session.flush()
    acquire_chain_lock(session)
    session.execute(
        update(AuditEntry)
        .where(AuditEntry.subject_id == subject_id)
        .values(old_value=None, new_value=None, erased=True)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(PatientKey).where(PatientKey.patient_id == subject_id))
    session.info.get("audit_keys", {}).pop(subject_id, None)
    summary = json.dumps(dict(sorted(table_counts.items())))
    append(session, [("patients", str(subject_id), None, "erase", "*", None, summary)])


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok`` when every link and every remaining value checks."""

    entries: int
    erased_entries: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(session: Session) -> VerifyResult:
    """Walk the whole chain; report every broken link, wrong hash and value that does not match."""
    keys = dict(session.execute(select(PatientKey.patient_id, PatientKey.key)).all())
    problems: list[str] = []
    prev = GENESIS
    expected_id = 1
    n = erased = 0
    for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars():
        n += 1
        if e.id != expected_id:
            problems.append(f"audit entry {expected_id} is missing (next is {e.id})")
        expected_id = e.id + 1
        row = {c: getattr(e, c) for c in AuditEntry.__table__.columns.keys()}  # noqa: SIM118
        if e.prev_hash != prev:
            problems.append(f"audit entry {e.id}: previous-hash link broken")
        if entry_hash(e.prev_hash, row) != e.entry_hash:
            problems.append(f"audit entry {e.id}: hash does not match its contents")
        if e.erased:
            erased += 1
            if e.old_value is not None or e.new_value is not None:
                problems.append(f"audit entry {e.id}: marked erased but still holds values")
        else:
            key = keys.get(e.subject_id) if e.subject_id is not None else b""
            if key is None:
                problems.append(f"audit entry {e.id}: the key of patient {e.subject_id} is missing")
            else:
                if _digest(key, e.old_value) != e.old_digest:
                    problems.append(f"audit entry {e.id}: old value was changed")
                if _digest(key, e.new_value) != e.new_digest:
                    problems.append(f"audit entry {e.id}: new value was changed")
        prev = e.entry_hash
    return VerifyResult(entries=n, erased_entries=erased, problems=tuple(problems))
