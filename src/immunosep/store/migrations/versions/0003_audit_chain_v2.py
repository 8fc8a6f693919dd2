"""audit_log scheme 2: reason digests, erase links, sealed-value digests; the chain is recomputed.

Scheme 1 hashed the reason's text, kept the erased flag outside the chain and recorded sealed values as
``<sealed>``. Scheme 2 (``store.audit``) hashes the reason's HMAC digest (so erasure can drop the text),
links every erased entry to its authorising ``erase`` entry (``erased_by``; the erase entry names the
patient and how many entries it erased) and records sealed values as keyed digests (``audit_seal_key``).

Existing rows migrate by recomputing the whole chain under scheme 2 (one scheme for every row; no per-row
version). So that recomputing cannot launder earlier tampering, the scheme-1 chain is verified first
(links, hashes, remaining values against their digests) and the upgrade is refused if it does not hold.
Sealed values of existing slots get the digest of the value stored now (nothing could check them
before); erased entries whose patient has no later erase entry keep ``erased_by`` NULL, so `audit
verify` reports them. The reasons of entries already erased are dropped now.

The hash function of each scheme is copied here on purpose: a migration must not change when the
application's code does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 21:20:00.000000
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
#: Tables whose primary key is not ``id`` (as of this revision).
_PRIMARY_KEYS = {"monitor_sites": ("user_id", "site_id"), "patient_keys": ("patient_id",)}
SEALED = ("randomization_slots", ("arm", "kit_number"))
_V1 = ("at", "user_id", "table_name", "row_id", "subject_id", "action", "field", "old_digest", "new_digest")


def _hash(prev: str, row: dict[str, Any], last: str) -> str:
    payload = [prev, *(row[c] for c in _V1), row[last]]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode("utf-8")).hexdigest()


def _digest(key: bytes, value: str | None) -> str:
    return "" if value is None else hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _sealed(seal_key: bytes, column: str, row_id: str, value: str | None) -> str:
    msg = f"{SEALED[0]}.{column}.{row_id}={value}".encode()
    return f"<sealed:{hmac.new(seal_key, msg, hashlib.sha256).hexdigest()}>"


def _to_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _rows(conn: sa.Connection) -> list[dict[str, Any]]:
    cols = "id, at, user_id, table_name, row_id, subject_id, action, field, old_value, new_value, "
    cols += "old_digest, new_digest, reason, erased, prev_hash, entry_hash"
    # cols is the constant column list above, never user input
    result = conn.execute(sa.text(f"SELECT {cols} FROM audit_log ORDER BY id"))  # noqa: S608
    return [dict(r._mapping) for r in result]


def _check_scheme_1(rows: list[dict[str, Any]], keys: dict[int, bytes]) -> None:
    problems: list[str] = []
    prev = GENESIS
    for i, r in enumerate(rows, start=1):
        if r["id"] != i:
            problems.append(f"entry {i} is missing")
            break
        if r["prev_hash"] != prev or _hash(r["prev_hash"], r, "reason") != r["entry_hash"]:
            problems.append(f"entry {r['id']}: link or hash broken")
        if not r["erased"]:
            key = keys.get(r["subject_id"]) if r["subject_id"] is not None else b""
            if key is None or (
                _digest(key, r["old_value"]) != r["old_digest"]
                or _digest(key, r["new_value"]) != r["new_digest"]
            ):
                problems.append(f"entry {r['id']}: value does not match its digest")
        prev = r["entry_hash"]
        if len(problems) >= 5:
            break
    if problems:
        raise RuntimeError(
            "the audit trail does not verify under its current scheme, so it is not re-chained: "
            + "; ".join(problems)
            + ". Investigate with `immunosep audit verify` of the previous release before upgrading."
        )


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason_digest", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("erased_by", sa.Integer(), nullable=True))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("reason_digest", server_default=None)
    op.create_table(
        "audit_seal_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_seal_key")),
    )
    conn = op.get_bind()
    rows = _rows(conn)
    keys = {int(p): bytes(k) for p, k in conn.execute(sa.text("SELECT patient_id, key FROM patient_keys"))}
    _check_scheme_1(rows, keys)
    seal_key = secrets.token_bytes(32)
    conn.execute(sa.text("INSERT INTO audit_seal_key (id, key) VALUES (1, :k)"), {"k": seal_key})
    slots = {
        str(r.id): {"arm": _to_text(r.arm), "kit_number": _to_text(r.kit_number)}
        for r in conn.execute(sa.text("SELECT id, arm, kit_number FROM randomization_slots"))
    }
    # which erase entry authorised each erased entry: the first erase of its patient after it
    erase_ids: dict[int, list[int]] = {}
    for r in rows:
        if r["action"] == "erase":
            erase_ids.setdefault(int(r["row_id"]), []).append(r["id"])
    linked: dict[int, list[int]] = {}
    for r in rows:
        r["erased_by"] = None
        if r["erased"]:
            r["reason"] = ""
            later = [e for e in erase_ids.get(r["subject_id"], []) if e > r["id"]]
            if later:
                r["erased_by"] = later[0]
                linked.setdefault(later[0], []).append(r["id"])
    prev = GENESIS
    for r in rows:
        key = keys.get(r["subject_id"]) if r["subject_id"] is not None else b""
        if r["action"] == "insert" and r["row_id"] == "" and r["new_value"] is not None:
            # scheme 1 wrote inserts before the row's identity was known: the key is in the values
            values = json.loads(r["new_value"])
            pk = _PRIMARY_KEYS.get(r["table_name"], ("id",))
            r["row_id"] = ",".join(str(json.loads(values[c])) for c in pk)
        if r["table_name"] == SEALED[0] and r["action"] == "insert" and r["new_value"] is not None:
            values = json.loads(r["new_value"])
            for col in SEALED[1]:
                if r["row_id"] in slots:
                    values[col] = _sealed(seal_key, col, r["row_id"], slots[r["row_id"]][col])
            r["new_value"] = json.dumps(values, sort_keys=True)
            r["new_digest"] = _digest(b"", r["new_value"])
        if r["action"] == "erase":
            summary = json.loads(r["new_value"])
            rows_by_table = summary.get("rows", summary)
            ids = linked.get(r["id"], [])
            r["new_value"] = json.dumps(
                {
                    "subject": int(r["row_id"]),
                    "erased_entries": len(ids),
                    "erased_ids_sha256": hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest(),
                    "rows": rows_by_table,
                },
                sort_keys=True,
            )
            r["new_digest"] = _digest(b"", r["new_value"])
        # an erased patient's key is gone: their reasons' digests are under a key nobody keeps
        r["reason_digest"] = _digest(key if key is not None else secrets.token_bytes(32), r["reason"])
        r["prev_hash"] = prev
        r["entry_hash"] = prev = _hash(prev, r, "reason_digest")
    if rows:
        conn.execute(
            sa.text(
                "UPDATE audit_log SET row_id = :row_id, new_value = :new_value, new_digest = :new_digest, "
                "reason = :reason, "
                "reason_digest = :reason_digest, erased_by = :erased_by, prev_hash = :prev_hash, "
                "entry_hash = :entry_hash WHERE id = :id"
            ),
            [
                {
                    k: r[k]
                    for k in (
                        "id",
                        "row_id",
                        "new_value",
                        "new_digest",
                        "reason",
                        "reason_digest",
                        "erased_by",
                    )
                }
                | {"prev_hash": r["prev_hash"], "entry_hash": r["entry_hash"]}
                for r in rows
            ],
        )


def downgrade() -> None:
    """Back to scheme 1: the chain is recomputed over the reasons' text (dropped reasons stay empty)."""
    conn = op.get_bind()
    prev = GENESIS
    updates = []
    for r in _rows(conn):
        r["prev_hash"] = prev
        r["entry_hash"] = prev = _hash(prev, r, "reason")
        updates.append({"id": r["id"], "prev_hash": r["prev_hash"], "entry_hash": r["entry_hash"]})
    if updates:
        conn.execute(
            sa.text("UPDATE audit_log SET prev_hash = :prev_hash, entry_hash = :entry_hash WHERE id = :id"),
            updates,
        )
    op.drop_table("audit_seal_key")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("erased_by")
        batch_op.drop_column("reason_digest")
