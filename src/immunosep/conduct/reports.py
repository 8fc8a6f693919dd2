"""Aggregated reports: the DSMB's unblinded counts by arm, and the blinded audit-trail view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, get_patient
from immunosep.conduct.access_log import log_access
from immunosep.conduct.adverse_events import RELATED
from immunosep.conduct.blinding import audit_entry_visible
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.store.models import AdverseEvent, AuditEntry, Outcome, Patient, RandomizationSlot


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    randomized: int
    deaths_by_day: dict[int, int]
    patients_with_sae: int
    patients_with_related_sae: int
    susars: int


def dsmb_summary(session: Session, actor: Actor) -> list[ArmSummary]:
    """Counts by arm for the DSMB: randomized, deaths by each mortality day, SAEs, SUSARs."""
    require(actor, "read_dsmb_report")
    p = protocol_of(session)
    arm_of = dict(
        session.execute(
            select(RandomizationSlot.patient_id, RandomizationSlot.arm).where(
                RandomizationSlot.patient_id.is_not(None)
            )
        ).all()
    )
    deaths: dict[int, int] = {
        pid: day
        for pid, day in session.execute(select(Outcome.patient_id, Outcome.death_day))
        if day is not None
    }
    aes = session.execute(
        select(AdverseEvent.patient_id, AdverseEvent.serious, AdverseEvent.relatedness, AdverseEvent.susar)
    ).all()
    out = []
    for arm in p.arm_codes:
        ids = {pid for pid, a in arm_of.items() if a == arm and pid is not None}
        out.append(
            ArmSummary(
                arm=arm,
                randomized=len(ids),
                deaths_by_day={
                    d: sum(1 for pid in ids if deaths.get(pid, d + 1) <= d)
                    for d in p.endpoints.mortality.days
                },
                patients_with_sae=len({a.patient_id for a in aes if a.patient_id in ids and a.serious}),
                patients_with_related_sae=len(
                    {
                        a.patient_id
                        for a in aes
                        if a.patient_id in ids and a.serious and a.relatedness in RELATED
                    }
                ),
                susars=sum(1 for a in aes if a.patient_id in ids and a.susar),
            )
        )
    log_access(session, actor, "read", "read_dsmb_report", detail={"arms": len(out)})
    return out


@dataclass(frozen=True)
class AuditView:
    id: int
    at: str
    user_id: int | None
    table_name: str
    row_id: str
    action: str
    field: str
    old_value: str | None
    new_value: str | None
    reason: str


def audit_trail(session: Session, actor: Actor, pseudonym: str) -> list[AuditView]:
    """One patient's audit trail for monitors and data managers, without what blinding seals from them."""
    require(actor, "read_audit_trail")
    patient: Patient = get_patient(session, actor, pseudonym)
    rows = session.execute(
        select(AuditEntry).where(AuditEntry.subject_id == patient.id).order_by(AuditEntry.id)
    ).scalars()
    return [
        AuditView(
            e.id,
            e.at,
            e.user_id,
            e.table_name,
            e.row_id,
            e.action,
            e.field,
            e.old_value,
            e.new_value,
            e.reason,
        )
        for e in rows
        if audit_entry_visible(actor.role, e.table_name)
    ]
