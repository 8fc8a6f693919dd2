"""Emergency unblinding of one patient: the only service that tells a blinded investigator an arm.

It needs a reason, is recorded (who, when, why) and appears in :func:`unblinding_report`, which lists the
events without the arm for monitors and data managers.
"""

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
from immunosep.conduct.randomization import slot_of
from immunosep.conduct.reasons import require_meaningful
from immunosep.conduct.trial import protocol_of
from immunosep.store.models import Patient, Unblinding, User, utcnow

MIN_REASON_LENGTH = 10


@dataclass(frozen=True)
class UnblindingDisclosure:
    """What the treating physician learns in an emergency."""

    pseudonym: str
    stratum: str
    arm: str
    arm_label: str
    active_drugs: tuple[str, ...]
    unblinded_at: datetime


def emergency_unblind(session: Session, actor: Actor, pseudonym: str, reason: str) -> UnblindingDisclosure:
    """Reveal one patient's arm to the investigator of the site, recording the reason."""
    require(actor, "unblind_emergency")
    reason = require_meaningful(reason, "emergency unblinding", min_chars=MIN_REASON_LENGTH)
    begin(session, actor, reason)
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    slot = slot_of(session, patient)
    assert patient.stratum is not None
    p = protocol_of(session)
    now = utcnow()
    session.add(
        Unblinding(patient_id=patient.id, reason=reason, unblinded_by=actor.user_id, unblinded_at=now)
    )
    session.flush()
    items = p.regimen_for(patient.stratum, slot.arm)
    label = next(a.label for a in p.arms if a.code == slot.arm)
    return UnblindingDisclosure(
        pseudonym, patient.stratum, slot.arm, label, tuple(i.drug for i in items if not i.dummy), now
    )


@dataclass(frozen=True)
class UnblindingEvent:
    pseudonym: str
    unblinded_at: datetime
    unblinded_by: str
    reason: str


def unblinding_report(session: Session, actor: Actor) -> list[UnblindingEvent]:
    """Every emergency unblinding in scope, without the arm (monitors, data managers, investigators)."""
    require(actor, "read_unblinding_report")
    rows = session.execute(
        select(Unblinding, Patient, User.username)
        .join(Patient, Patient.id == Unblinding.patient_id)
        .join(User, User.id == Unblinding.unblinded_by)
        .order_by(Unblinding.unblinded_at)
    ).all()
    return [
        UnblindingEvent(p.pseudonym, u.unblinded_at, name, u.reason)
        for u, p, name in rows
        if in_scope(actor, p.site_id)
    ]
