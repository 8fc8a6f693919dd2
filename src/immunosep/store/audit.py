"""The audit trail: every insert, update and delete, append-only and hash-chained.

Captured from SQLAlchemy session events, so a service cannot forget it: an insert is one entry with the
whole new row (``field="*"``), an update one entry per changed field (old and new value), a delete one
entry with the whole old row. Who and why come from :func:`set_context` (``session.info``).

Chain design (scheme 2, revision 0003; chosen so that erasure keeps the chain verifiable): each entry's
``entry_hash`` is SHA-256 over the previous entry's hash, the entry's metadata and the *digests* of its
old value, new value and reason, never their text. For patient data the digest is HMAC-SHA256 under a
random key kept per patient in ``patient_keys``; for other data the key is empty. Sealed values (an arm, a
kit number) are kept only as ``<sealed:HMAC>`` under the database's seal key (:func:`sealed_text`).
Erasing a patient appends an ``erase`` entry naming the patient and how many entries it erases, sets the
values and reasons of their entries to NULL / "" with ``erased_by`` pointing to it, and deletes their
key (so the remaining digests cannot be linked back to any value by guessing).

:func:`verify` checks every link, every remaining value and reason against its digest, every erased entry
against its authorising erase entry, optionally the chain's head against a checkpoint signed with the
data manager's key (:func:`checkpoint`: entries removed from the end), and replays the trail to every
row's latest state to compare it with the live tables (rows changed, inserted or deleted with SQL).

Writers serialize on the chain: on PostgreSQL a transaction-scoped advisory lock is taken at its first
audited flush; on SQLite every transaction is ``BEGIN IMMEDIATE`` (see :mod:`immunosep.store.db`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete, event, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import await_, in_greenlet

from immunosep.errors import ImmunoSepError
from immunosep.store import crf_days
from immunosep.store.models import (
    SEALED_COLUMN,
    AuditEntry,
    AuditSealKey,
    Base,
    Patient,
    PatientKey,
    Trial,
    utcnow,
)

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
_NOT_AUDITED = {
    "audit_log",
    "patient_keys",
    "audit_seal_key",
    "crf_days_entered",  # derived from daily_crf by a trigger; verify checks it against the rows
}
# Statements of every audited write, built once.
#: The head's id as ``max(id)``, not ``ORDER BY id DESC LIMIT 1``: the limit is a bound parameter, and a
#: PostgreSQL prepared statement with an unknown limit has a generic plan estimated at a tenth of the
#: table, so it was planned afresh at every execution (0.3-0.4 ms, three times its execution).
_HEAD_ID = select(func.max(AuditEntry.id)).scalar_subquery()
_LAST = select(AuditEntry.id, AuditEntry.entry_hash).where(AuditEntry.id == _HEAD_ID)
_KEY = select(PatientKey.key).where(PatientKey.patient_id == bindparam("subject"))
#: The chain's last entry and one patient's key, in one round trip (most appends concern one patient).
_LAST_AND_KEY = select(AuditEntry.id, AuditEntry.entry_hash, _KEY.scalar_subquery()).where(
    AuditEntry.id == _HEAD_ID
)
_INSERT_KEY = insert(PatientKey)
_SEAL_KEY = select(AuditSealKey.key).where(AuditSealKey.id == 1)
_INSERT_ENTRY = insert(AuditEntry)
_CHAIN_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_TRY_CHAIN_LOCK = text("SELECT pg_try_advisory_xact_lock(:k)")


def set_context(session: Session, user_id: int | None, reason: str = "") -> None:
    """Who is changing data in this session, and why (recorded on every entry that follows)."""
    session.info["audit_user_id"] = user_id
    session.info["audit_reason"] = reason


def trail_text(value: Any) -> str | None:
    """A stored value as the trail's text of it (what is digested and kept as old/new value): JSON, ISO 8601
    for dates, hex for bytes. A migration that writes trail entries itself uses this, so that ``audit verify``
    replays them to the live rows."""
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


def _seal_key(session: Session) -> bytes:
    """The key of sealed-value digests (made at first need, under the chain lock)."""
    key: bytes | None = session.info.get("audit_seal_key")
    if key is None:
        acquire_chain_lock(session)
        conn = session.connection()
        key = conn.execute(_SEAL_KEY).scalar()
        if key is None:
            key = secrets.token_bytes(32)
            conn.execute(insert(AuditSealKey), {"id": 1, "key": key})
        session.info["audit_seal_key"] = key
    return key


def sealed_text(seal_key: bytes, table: str, column: str, row_id: str, value: str | None) -> str:
    """What the trail keeps of a sealed value: ``<sealed:HMAC(table.column.row=value)>``.

    The row is in the message so that equal arms of two slots do not give equal digests.
    """
    msg = f"{table}.{column}.{row_id}={value}".encode()
    return f"<sealed:{hmac.new(seal_key, msg, hashlib.sha256).hexdigest()}>"


def _row_values(session: Session, obj: Base) -> dict[str, Any]:
    state = inspect(obj)
    table = obj.__table__.name  # type: ignore[attr-defined]
    values = {attr.key: getattr(obj, attr.key) for attr in state.mapper.column_attrs}
    return _trail_values(session, table, values, lambda: _pk(obj))


def _trail_values(
    session: Session, table: str, values: Mapping[str, Any], pk: Callable[[], str]
) -> dict[str, Any]:
    """Column -> the trail's text of its value (sealed columns as their keyed digest, by the row's key)."""
    out: dict[str, Any] = {}
    for column, value in values.items():
        text_ = trail_text(value)
        if (table, column) in SEALED_FIELDS:
            text_ = sealed_text(_seal_key(session), table, column, pk(), text_)
        out[column] = text_
    return out


def insert_entry(
    session: Session, table: str, values: Mapping[str, Any], subject: int | None
) -> tuple[str, str, int | None, str, str, str | None, str | None]:
    """The entry the flush hook appends for a row inserted with ``values`` (every column, the key ``id``
    included), for :func:`append`: for a service that inserts a row with a Core statement."""
    row_id = str(values["id"])
    new = json.dumps(_trail_values(session, table, values, lambda: row_id), sort_keys=True)
    return (table, row_id, subject, "insert", "*", None, new)


def _subject(obj: Base) -> int | None:
    if isinstance(obj, Patient):
        return obj.id
    pid = getattr(obj, "patient_id", None)
    return pid if isinstance(pid, int) else None


def _pk(obj: Base) -> str:
    """The row's primary key as text (``"7"``, ``"3,2"``), also for a row just inserted by this flush.

    (The instance's identity is not yet set in ``after_flush``: before revision 0003 every insert
    entry had an empty ``row_id``; the migration fills it in from the entry's values.)
    """
    state = inspect(obj)
    ident = state.identity or state.mapper.primary_key_from_instance(obj)
    return ",".join(str(v) for v in ident) if ident else ""


def _digest(key: bytes, value: str | None) -> str:
    if value is None:
        return ""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def entry_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 of the previous hash, the entry's metadata and the digests of its values and reason.

    Scheme 2 (revision 0003): the reason is covered by its digest, not its text, so erasure can drop
    the text. Never the values themselves, so erasure can drop them.
    """
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
        row["reason_digest"],
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode("utf-8")).hexdigest()


#: Pauses (s) after which a writer on the event loop that found the chain's lock taken tries it again, before
#: it joins PostgreSQL's queue of waiters (:func:`acquire_chain_lock`): 20 ms in all.
RETRY_PAUSES_S = (0.00025, 0.0005, 0.001, 0.002, 0.004, 0.004, 0.004, 0.004)


def acquire_chain_lock(session: Session) -> None:
    """Serialize with every other writer of the audit chain until this transaction ends.

    On PostgreSQL a handler that runs on the event loop (in a greenlet, ``web.deps.inline``) tries the lock.
    If another writer has it, it gives the loop back and tries again after each of :data:`RETRY_PAUSES_S`,
    then waits in PostgreSQL's queue, in a thread of its own while the loop runs on. It queues only then
    because a lock granted in the queue sits idle until the loop gets back to the waiter: under load a
    median of about 1 ms, a mean of 5-7 ms and a 90th percentile of 16-24 ms (bench_web, two processes),
    while every other writer waits. A writer that tries when its loop is free takes the lock when it can
    use it, and after 20 ms it queues, so that no run of the other process's writers can starve it.
    Anywhere else this thread waits in the queue. SQLite's lock is the transaction's ``BEGIN IMMEDIATE``
    (``store.db``), taken by the first statement here.
    """
    if session.info.get("audit_locked"):  # held to the transaction's end: asked 3 times by a CRF write
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = {"k": CHAIN_LOCK_KEY}
        if not in_greenlet():
            conn.execute(_CHAIN_LOCK, params)
        elif not conn.execute(_TRY_CHAIN_LOCK, params).scalar():
            for pause in RETRY_PAUSES_S:
                await_(asyncio.sleep(pause))
                if conn.execute(_TRY_CHAIN_LOCK, params).scalar():
                    break
            else:
                await_(asyncio.to_thread(conn.execute, _CHAIN_LOCK, params))
        session.info["audit_locked"] = True


def holds_chain_lock(session: Session) -> bool:
    """True once this PostgreSQL transaction took the chain's lock (:func:`acquire_chain_lock`).

    It holds it until it ends. SQLite's writers hold theirs from their first statement (``store.db``).
    """
    return bool(session.info.get("audit_locked"))


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


#: ``session.info`` key of the chain's last entry (id, hash) as this transaction appended it: it holds the
#: chain's lock to its end and every append goes through :func:`append`, so the next append links to it
#: without reading it back. Dropped at the end of the transaction or of a savepoint.
_HEAD = "audit_head"


#: ``session.info`` key of the entries appended but not inserted yet, in a transaction that defers them
#: (:func:`defer_entries`); absent in any other.
_DEFERRED = "audit_deferred"


def defer_entries(session: Session) -> None:
    """Keep the entries this session's transaction appends, linked as ever, and insert them all with one
    statement as it commits (``web.deps.CommitGroups``: one statement per group instead of one per write,
    under the writers' lock), or earlier with :func:`insert_deferred`. Inside a savepoint, from the commit
    on (its own flushes) and after the transaction ends (a rollback drops what was kept), entries are
    inserted as they are appended."""
    session.info[_DEFERRED] = []


def deferred_count(session: Session) -> int:
    """How many appended entries are kept for :func:`insert_deferred`."""
    return len(session.info.get(_DEFERRED, ()))


def insert_deferred(session: Session) -> int:
    """Insert the entries kept since :func:`defer_entries` (one statement); returns how many."""
    kept: list[dict[str, Any]] | None = session.info.get(_DEFERRED)
    if not kept:
        return 0
    session.connection().execute(_INSERT_ENTRY, kept)
    n = len(kept)
    kept.clear()
    return n


def _last_entry(conn: Connection, session: Session, subject: int | None) -> Any:
    """The chain's last entry (id, hash), reading ``subject``'s key in the same statement when not known yet."""
    kept = session.info.get(_DEFERRED)
    if kept:  # not in the table yet
        return kept[-1]["id"], kept[-1]["entry_hash"]
    head = session.info.get(_HEAD)
    if head is not None:
        return head
    keys: dict[int, bytes] = session.info.setdefault("audit_keys", {})
    if subject is None or subject in keys:
        return conn.execute(_LAST).first()
    last = conn.execute(_LAST_AND_KEY, {"subject": subject}).first()
    if last is not None:  # the chain has entries, so the key column was read: stored, or none yet
        keys[subject] = last[2] if last[2] is not None else _new_key(conn, subject)
    return last


def head_and_key(subject: Any) -> tuple[Any, Any, Any]:
    """Columns of the chain's last entry (id, hash) and of the key of patient ``subject`` (a column), to
    read with a row a write reads anyway, under the chain's lock: then :func:`note_head`."""
    return (
        _HEAD_ID,
        _LAST.with_only_columns(AuditEntry.entry_hash).scalar_subquery(),
        select(PatientKey.key).where(PatientKey.patient_id == subject).scalar_subquery(),
    )


def note_head(
    session: Session, last_id: int | None, last_hash: str | None, subject: int, key: bytes | None
) -> None:
    """Remember the chain's last entry and ``subject``'s key as read (:func:`head_and_key`) by a transaction
    that holds the chain's lock, so that its first append reads neither (one round trip less under the lock).

    An empty chain or a patient without a key yet is left to :func:`append` to read (and make).
    """
    if last_id is not None and last_hash is not None and not session.info.get(_DEFERRED):
        session.info[_HEAD] = (last_id, last_hash)  # (entries kept back are later than what was read)
    if key is not None:
        session.info.setdefault("audit_keys", {})[subject] = key


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
            "reason_digest": _digest(key, reason),
            "erased": False,
            "erased_by": None,
            "prev_hash": prev,
        }
        rec["entry_hash"] = prev = entry_hash(prev, rec)
        records.append(rec)
        next_id += 1
    kept = session.info.get(_DEFERRED)
    if kept is None or session.in_nested_transaction():  # a savepoint rolled back takes its entries
        conn.execute(_INSERT_ENTRY, records)  # (those kept from before it went in as it began)
    else:
        kept += records
    session.info[_HEAD] = (next_id - 1, prev)
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
            old_t, new_t = trail_text(old), trail_text(new)
            if (table, attr.key) in SEALED_FIELDS:  # a change is recorded, the values only as digests
                seal, pk = _seal_key(session), _pk(obj)
                old_t = sealed_text(seal, table, attr.key, pk, old_t)
                new_t = sealed_text(seal, table, attr.key, pk, new_t)
            if old_t == new_t:
                continue
            pending.append((table, _pk(obj), _subject(obj), "update", attr.key, old_t, new_t))
    for obj in session.deleted:
        if _audited(obj):
            values = json.dumps(_row_values(session, obj), sort_keys=True)
            pending.append((obj.__table__.name, _pk(obj), _subject(obj), "delete", "*", values, None))
    session.info["audit_pending"] = pending
    session.info["audit_new"] = [o for o in session.new if _audited(o)]
    if pending or session.info["audit_new"]:
        acquire_chain_lock(session)


def _after_flush(session: Session, _ctx: object) -> None:
    pending = session.info.pop("audit_pending", [])
    for obj in session.info.pop("audit_new", []):
        values = json.dumps(_row_values(session, obj), sort_keys=True)
        pending.append((obj.__table__.name, _pk(obj), _subject(obj), "insert", "*", None, values))
    append(session, pending)


def _before_commit(session: Session) -> None:
    """Insert the entries kept back (:func:`defer_entries`); those of the commit's own flushes, which come
    after this hook, go in as they are appended. Not at a savepoint's release (SQLAlchemy calls the hook
    there too): what it appended went in as it came."""
    if not session.in_nested_transaction():
        insert_deferred(session)
        session.info.pop(_DEFERRED, None)


def _after_end(session: Session, _transaction: object) -> None:
    session.info.pop(_HEAD, None)
    session.info.pop("audit_locked", None)
    session.info.pop("audit_keys", None)
    session.info.pop("audit_seal_key", None)


def install(session_class: type[Session]) -> None:
    """Attach the audit hooks to a Session class (done once by :mod:`immunosep.store.db`)."""
    event.listen(session_class, "before_flush", _before_flush)
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "before_commit", _before_commit)
    event.listen(session_class, "after_transaction_end", _forget_head)
    event.listen(session_class, "after_soft_rollback", _forget_rolled_back)


def _forget_head(session: Session, transaction: Any) -> None:
    """The transaction's end (all it knew goes), or a savepoint's (its head is read again; a savepoint
    rolled back takes its entries with it); not the inner transaction of a flush.

    A savepoint released keeps the rest: what it wrote (a patient's key, the seal key) and the chain's lock
    (PostgreSQL moves a released savepoint's locks to the transaction) stay the transaction's, so the
    members of a commit group (``web.deps.CommitGroups``) after the first neither lock nor read them again.
    """
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_DEFERRED, None)  # inserted by now, or rolled back with the rest
        _after_end(session, transaction)
    elif transaction.nested:
        session.info.pop(_HEAD, None)


def _forget_rolled_back(session: Session, previous_transaction: Any) -> None:
    """A savepoint rolled back: a key it made is gone with it, and the chain's lock, if it took it there."""
    if previous_transaction.nested:
        _after_end(session, previous_transaction)


def erase_subject(session: Session, subject_id: int, table_counts: dict[str, int]) -> None:
    """Drop one patient's values and reasons from the trail, shred their key, and record the erasure.

    Call after the patient's rows are deleted and flushed. The ``erase`` entry (in the chain) names the
    patient and how many entries it erases and rows per table it removed; each erased entry points to it
    (``erased_by``), so ``verify`` refuses an entry marked erased without a matching erase entry.
    """
    session.flush()
    acquire_chain_lock(session)
    of_subject = (AuditEntry.subject_id == subject_id) & AuditEntry.erased.is_(False)
    ids = session.execute(select(AuditEntry.id).where(of_subject).order_by(AuditEntry.id)).scalars().all()
    summary = json.dumps(
        {
            "subject": subject_id,
            "erased_entries": len(ids),
            "erased_ids_sha256": erased_ids_digest(ids),
            "rows": dict(sorted(table_counts.items())),
        },
        sort_keys=True,
    )
    append(session, [("patients", str(subject_id), None, "erase", "*", None, summary)])
    insert_deferred(session)
    erase_id = session.execute(_LAST).first()[0]  # type: ignore[index]
    session.execute(
        update(AuditEntry)
        .where(of_subject, AuditEntry.id < erase_id)
        .values(old_value=None, new_value=None, reason="", erased=True, erased_by=erase_id)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(PatientKey).where(PatientKey.patient_id == subject_id))
    session.info.get("audit_keys", {}).pop(subject_id, None)


def erased_ids_digest(ids: Iterable[int]) -> str:
    """SHA-256 of the ascending ids an erase entry erases: the erased entries' links, kept in the chain."""
    return hashlib.sha256(",".join(str(i) for i in sorted(ids)).encode("ascii")).hexdigest()


# --- the chain's head, anchored outside the database ------------------------------------------------

#: Environment variables holding the data manager's checkpoint key (the key itself, or a file holding it).
KEY_ENV = "IMMUNOSEP_AUDIT_KEY"
KEY_FILE_ENV = "IMMUNOSEP_AUDIT_KEY_FILE"
KEY_MIN_BYTES = 32
CHECKPOINT_FORMAT = "immunosep-audit-checkpoint/1"


@dataclass(frozen=True)
class ChainHead:
    """Where the chain ends: how many entries, the last id and its hash (``entries == 0``: empty)."""

    entries: int
    last_id: int
    last_hash: str


def chain_head(session: Session) -> ChainHead:
    """The chain's head as stored now (with what this transaction appended)."""
    insert_deferred(session)
    n = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    last = session.execute(_LAST).first()
    return ChainHead(int(n), int(last[0]), str(last[1])) if last else ChainHead(0, 0, GENESIS)


def checkpoint_key(key_file: Path | None = None) -> bytes:
    """The checkpoint key: ``key_file``, else ``$IMMUNOSEP_AUDIT_KEY_FILE``, else ``$IMMUNOSEP_AUDIT_KEY``."""
    path = key_file or (Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None)
    if path is not None:
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise ImmunoSepError(
                f"cannot read the audit checkpoint key file {path}: {exc.strerror}"
            ) from None
    else:
        key = os.environ.get(KEY_ENV, "").encode("utf-8")
    if not key:
        raise ImmunoSepError(
            f"no audit checkpoint key: give --key-file, or set {KEY_FILE_ENV} (a file only the data manager "
            f"can read) or {KEY_ENV}"
        )
    if len(key) < KEY_MIN_BYTES:
        raise ImmunoSepError(f"the audit checkpoint key is too short: use at least {KEY_MIN_BYTES} bytes")
    return key


def _mac(key: bytes, body: dict[str, Any]) -> str:
    msg = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def checkpoint(session: Session, key: bytes) -> dict[str, Any]:
    """An HMAC-SHA256-signed record of the chain's head now, to keep outside the database."""
    code = session.execute(select(Trial.code).limit(1)).scalar()
    return sign_head(chain_head(session), code, key)


def sign_head(head: ChainHead, trial_code: str | None, key: bytes) -> dict[str, Any]:
    """The checkpoint of ``head``: its fields, when it was made, and their HMAC-SHA256 under ``key``."""
    body: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "trial": trial_code,
        "entries": head.entries,
        "last_id": head.last_id,
        "last_hash": head.last_hash,
        "at": utcnow().isoformat(),
    }
    return {**body, "hmac": _mac(key, body)}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read by :func:`read_checkpoint`, with whether its signature holds."""

    trial: str | None
    at: str
    head: ChainHead
    #: False when the HMAC does not match (changed, or signed with another key): verify reports it
    signed: bool = True


def read_checkpoint(data: Any, key: bytes) -> Checkpoint:
    """Check a checkpoint's signature and shape; an ImmunoSepError says what is wrong."""
    fields = ("format", "trial", "entries", "last_id", "last_hash", "at")
    if not isinstance(data, dict) or set(data) != {*fields, "hmac"} or data["format"] != CHECKPOINT_FORMAT:
        raise ImmunoSepError("not an audit checkpoint (make one with `immunosep audit checkpoint`)")
    body = {k: data[k] for k in fields}
    if not all(isinstance(data[k], int) and not isinstance(data[k], bool) for k in ("entries", "last_id")):
        raise ImmunoSepError("not an audit checkpoint: entries and last_id must be whole numbers")
    signed = isinstance(data["hmac"], str) and hmac.compare_digest(_mac(key, body), data["hmac"])
    head = ChainHead(data["entries"], data["last_id"], str(data["last_hash"]))
    return Checkpoint(data["trial"], str(data["at"]), head, signed)


# --- verification ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One thing ``verify`` found: which table, which row (an audit entry id or a row's key), what kind."""

    table: str
    row: str
    kind: str

    def __str__(self) -> str:
        """One line naming the table, the row (or entry) and the kind of finding."""
        label = {"audit_log": "entry", "checkpoint": "of"}.get(self.table, "row")
        return f"{self.table} {label} {self.row}: {self.kind}"


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: ``ok`` when the chain, the erasures, the live rows (and the checkpoint) check."""

    entries: int
    erased_entries: int
    rows_checked: int
    checkpoint: Checkpoint | None
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(str(f) for f in self.findings)


_UNKNOWN = object()  # a value the trail no longer holds (erased)
_SEALED_PREFIX = "<sealed:"


class _Replay:
    """Each row's latest state as the trail tells it: ``(table, row_id) -> (subject, {field: text})``."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[int | None, dict[str, Any]]] = {}
        self.by_subject: dict[int, set[tuple[str, str]]] = {}

    def apply(
        self, table: str, row_id: str, subject: int | None, action: str, fld: str, new: str | None
    ) -> None:
        key = (table, row_id)
        if action == "insert":
            values: dict[str, Any] = json.loads(new) if new is not None else {"*": _UNKNOWN}
            self.rows[key] = (subject, values)
            if subject is not None:
                self.by_subject.setdefault(subject, set()).add(key)
        elif action == "update":
            state = self.rows.get(key)
            if state is None:  # a row the trail never saw inserted: checked as far as the updates go
                state = self.rows[key] = (None, {"*": _UNKNOWN})
            state[1][fld] = new  # None: the value became NULL (an erased update is apply_erased_update)
        elif action == "delete":
            self.rows.pop(key, None)

    def apply_erased_update(self, table: str, row_id: str, fld: str) -> None:
        state = self.rows.get((table, row_id))
        if state is not None:
            state[1][fld] = _UNKNOWN

    def erase(self, subject: int) -> None:
        """An erasure removes every row of the patient (the database cascades from ``patients``)."""
        for key in self.by_subject.pop(subject, set()):
            self.rows.pop(key, None)


def _same(stored: str, live: Any) -> bool:
    """Whether a live value is the value the trail recorded.

    The trail keeps what the application handed over (an int for a float column, 1 for a boolean); the
    database gives it back in the column's type, so equal values of another type count as the same.
    """
    if trail_text(live) == stored:
        return True
    if isinstance(live, datetime):
        try:
            return datetime.fromisoformat(stored) == live
        except ValueError:
            return False
    try:
        recorded = json.loads(stored)
    except ValueError:
        return False
    if isinstance(live, bool):
        return recorded in (0, 1) and bool(recorded) is live
    if isinstance(live, int | float):
        return isinstance(recorded, int | float) and recorded == live
    if isinstance(live, str):
        return isinstance(recorded, int | float) and str(recorded) == live
    return False


def _check_live(session: Session, replay: _Replay, seal_key: bytes | None, out: list[Finding]) -> int:
    """Compare every audited table with the replayed trail; returns the number of live rows checked."""
    checked = 0
    for table in Base.metadata.sorted_tables:
        name = table.name
        if name in _NOT_AUDITED:
            continue
        pk_cols = [c.name for c in table.primary_key.columns]
        cols = [c.name for c in table.columns]
        pk_idx = [cols.index(c) for c in pk_cols]
        seen: set[str] = set()
        for row in session.execute(select(table)):
            checked += 1
            row_id = ",".join(str(row[i]) for i in pk_idx)
            seen.add(row_id)
            state = replay.rows.get((name, row_id))
            if state is None:
                out.append(Finding(name, row_id, "not in the audit trail (written outside the application)"))
                continue
            recorded = state[1]
            for col, live in zip(cols, row, strict=True):
                stored = recorded.get(col, _UNKNOWN)
                if stored is _UNKNOWN:
                    continue
                if (name, col) in SEALED_FIELDS:
                    if not (isinstance(stored, str) and stored.startswith(_SEALED_PREFIX)):
                        continue  # recorded before sealed values had digests (revision 0003)
                    if (
                        seal_key is None
                        or sealed_text(seal_key, name, col, row_id, trail_text(live)) != stored
                    ):
                        out.append(Finding(name, row_id, "sealed column changed"))
                elif stored is None:
                    if live is not None:
                        out.append(Finding(name, row_id, f"{col} differs from the audit trail"))
                elif live is None or not _same(stored, live):
                    out.append(Finding(name, row_id, f"{col} differs from the audit trail"))
        for table_name, row_id in replay.rows:
            if table_name == name and row_id not in seen:
                out.append(Finding(name, row_id, "deleted outside the audit trail"))
    return checked


def verify(session: Session, checkpoint: Checkpoint | None = None) -> VerifyResult:
    """Walk the whole chain and replay it against the live tables; name every finding.

    Checks: every link and hash; every remaining value and reason against its digest; every erased entry
    against the erase entry that authorised it (and every erase entry's count); with ``checkpoint``, that
    the chain still holds the checkpoint's head (truncation); every live row of every audited table
    against its latest state in the trail (sealed values by their keyed digest only). Findings name the
    table, row and kind, never a value.
    """
    keys = dict(session.execute(select(PatientKey.patient_id, PatientKey.key)).all())
    seal_key = session.execute(_SEAL_KEY).scalar()
    out: list[Finding] = []
    prev = GENESIS
    expected_id = 1
    n = 0
    erased: list[tuple[int, int | None, int | None]] = []  # (id, subject, erased_by)
    erases: dict[int, tuple[int | None, int, str]] = {}  # erase entry id -> (subject, count, ids digest)
    last_erase_of: dict[int, int] = {}
    kept_of_subject: list[tuple[int, int]] = []  # (id, subject) of entries still holding values
    replay = _Replay()
    head_hash: str | None = None
    at_head = 0
    columns = [c.name for c in AuditEntry.__table__.columns]
    for values in session.execute(select(AuditEntry.__table__).order_by(AuditEntry.id)):
        e = dict(zip(columns, values, strict=True))
        eid = e["id"]
        n += 1
        if eid != expected_id:
            out.append(Finding("audit_log", str(expected_id), f"missing (entries {expected_id}..{eid - 1})"))
        expected_id = eid + 1
        if e["prev_hash"] != prev:
            out.append(Finding("audit_log", str(eid), "previous-hash link broken"))
        if entry_hash(e["prev_hash"], e) != e["entry_hash"]:
            out.append(Finding("audit_log", str(eid), "hash does not match its contents"))
        prev = e["entry_hash"]
        if checkpoint is not None and eid <= checkpoint.head.last_id:
            at_head += 1
            if eid == checkpoint.head.last_id:
                head_hash = e["entry_hash"]
        subject = e["subject_id"]
        if e["erased"]:
            erased.append((eid, subject, e["erased_by"]))
            if e["old_value"] is not None or e["new_value"] is not None or e["reason"]:
                out.append(Finding("audit_log", str(eid), "marked erased but still holds values or a reason"))
            if e["action"] == "update":
                replay.apply_erased_update(e["table_name"], e["row_id"], e["field"])
            else:
                replay.apply(e["table_name"], e["row_id"], subject, e["action"], e["field"], None)
            continue
        if e["erased_by"] is not None:
            out.append(Finding("audit_log", str(eid), "points to an erase entry but is not marked erased"))
        key = keys.get(subject) if subject is not None else b""
        if key is None:
            out.append(Finding("audit_log", str(eid), f"the key of patient {subject} is missing"))
        else:
            if _digest(key, e["old_value"]) != e["old_digest"]:
                out.append(Finding("audit_log", str(eid), "old value was changed"))
            if _digest(key, e["new_value"]) != e["new_digest"]:
                out.append(Finding("audit_log", str(eid), "new value was changed"))
            if _digest(key, e["reason"]) != e["reason_digest"]:
                out.append(Finding("audit_log", str(eid), "reason was changed"))
        if subject is not None:
            kept_of_subject.append((eid, subject))
        if e["action"] == "erase":
            erases[eid] = _erase_entry(e, out)
            erased_subject = erases[eid][0]
            if erased_subject is not None:
                last_erase_of[erased_subject] = eid
                replay.erase(erased_subject)
        else:
            replay.apply(e["table_name"], e["row_id"], subject, e["action"], e["field"], e["new_value"])
    _check_erasures(erased, erases, last_erase_of, kept_of_subject, out)
    if checkpoint is not None:
        code = session.execute(select(Trial.code).limit(1)).scalar()
        if checkpoint.signed and checkpoint.trial != code:
            out.append(Finding("checkpoint", checkpoint.at, f"made for trial {checkpoint.trial}, not {code}"))
        else:
            _check_head(checkpoint, head_hash, at_head, out)
    rows = _check_live(session, replay, seal_key, out)
    _check_crf_days(session, out)
    return VerifyResult(
        entries=n, erased_entries=len(erased), rows_checked=rows, checkpoint=checkpoint, findings=tuple(out)
    )


def _check_crf_days(session: Session, out: list[Finding]) -> None:
    """Each patient's list of CRF days (``crf_days_entered``, kept by a trigger, not audited) against the
    patient's ``daily_crf`` rows, which are audited: the dashboard shows the list. ``immunosep db
    rebuild-crf-days`` writes a list found wrong afresh (``store.crf_days``)."""
    for patient_id in crf_days.disagreeing(session):
        out.append(Finding("crf_days_entered", str(patient_id), "does not list the daily CRF's days"))


def _erase_entry(e: dict[str, Any], out: list[Finding]) -> tuple[int | None, int, str]:
    """The patient an erase entry names, the number of entries it erases and the digest of their ids."""
    try:
        summary = json.loads(e["new_value"])
        subject, count = int(summary["subject"]), int(summary["erased_entries"])
        ids = str(summary["erased_ids_sha256"])
    except (TypeError, ValueError, KeyError):
        out.append(Finding("audit_log", str(e["id"]), "erase entry without its patient, count and ids"))
        return None, 0, ""
    if e["row_id"] != str(subject):
        out.append(Finding("audit_log", str(e["id"]), "erase entry names two different patients"))
    return subject, count, ids


def _check_erasures(
    erased: list[tuple[int, int | None, int | None]],
    erases: dict[int, tuple[int | None, int, str]],
    last_erase_of: dict[int, int],
    kept_of_subject: list[tuple[int, int]],
    out: list[Finding],
) -> None:
    pointing: dict[int, list[int]] = {}
    for eid, subject, by in erased:
        authority = erases.get(by) if by is not None else None
        if authority is None or by is None or by <= eid:
            out.append(Finding("audit_log", str(eid), "marked erased without an authorising erase entry"))
        elif authority[0] != subject:
            kind = f"marked erased by erase entry {by} of another patient"
            out.append(Finding("audit_log", str(eid), kind))
        else:
            pointing.setdefault(by, []).append(eid)
    for by, (_subject, declared, ids_digest) in erases.items():
        ids = pointing.get(by, [])
        if len(ids) != declared:
            kind = f"erase entry declares {declared} erased entries, {len(ids)} point to it"
            out.append(Finding("audit_log", str(by), kind))
        elif erased_ids_digest(ids) != ids_digest:
            kind = "the entries pointing to this erase entry are not those it erased"
            out.append(Finding("audit_log", str(by), kind))
    for eid, subject in kept_of_subject:
        if last_erase_of.get(subject, 0) > eid:
            out.append(
                Finding("audit_log", str(eid), f"entry of erased patient {subject} still holds its values")
            )


def _check_head(cp: Checkpoint, head_hash: str | None, at_head: int, out: list[Finding]) -> None:
    head = cp.head
    if not cp.signed:
        kind = "signature does not match: the checkpoint was changed, or signed with another key"
        out.append(Finding("checkpoint", cp.at, kind))
        return
    if head.entries == 0:
        return
    if head_hash is None or at_head < head.entries:
        out.append(
            Finding(
                "audit_log",
                str(head.last_id),
                f"truncated: the checkpoint of {cp.at} ends at entry {head.last_id} after {head.entries} "
                f"entries; the database holds {at_head} of them",
            )
        )
    elif head_hash != head.last_hash or at_head != head.entries:
        out.append(
            Finding(
                "audit_log",
                str(head.last_id),
                f"rewritten: the chain no longer ends as the checkpoint of {cp.at} says",
            )
        )
