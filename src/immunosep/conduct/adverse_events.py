"""Adverse events: MedDRA-coded, seriousness and its criteria, relatedness on four levels, expectedness,
action taken, outcome, end day, SUSAR flag.

The terms and the rule that ties seriousness, criteria, outcome, end day and the patient's death together
are :mod:`immunosep.clinical.adverse_events`; an inconsistent event is refused before anything is stored.

A serious, related (probably or possibly) and unexpected event is a SUSAR: the flag and its report time
are set in the same transaction that records the event, and :func:`susar_report` lists them at once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.clinical.adverse_events import SERIOUSNESS_CRITERIA, check_adverse_event
from immunosep.conduct.access import (
    Actor,
    begin,
    ensure_writable,
    get_patient,
    in_scope,
)
from immunosep.conduct.meddra import MedDRA, demo_meddra
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.models import AdverseEvent, Outcome, Patient, utcnow

RELATEDNESS = ("probably related", "possibly related", "probably not related", "unrelated")
RELATED = frozenset(RELATEDNESS[:2])


@dataclass(frozen=True)
class AeRecord:
    id: int
    pseudonym: str
    onset_day: int
    pt_name: str
    soc_name: str
    serious: bool
    relatedness: str
    expected: bool
    susar: bool
    susar_reported_at: datetime | None
    #: ticked seriousness criteria (keys of SERIOUSNESS_CRITERIA); None: not collected (before revision 0005)
    criteria: tuple[str, ...] | None = None
    action: str | None = None  # CDISC ACN; None: not collected
    outcome: str | None = None  # CDISC OUT; None: not collected
    end_day: int | None = None  # None: not ended (or not collected)


def criteria_of(ae: AdverseEvent) -> tuple[str, ...] | None:
    """The ticked criteria of a stored event, in SERIOUSNESS_CRITERIA order; None when not collected."""
    values = [getattr(ae, f"crit_{name}") for name in SERIOUSNESS_CRITERIA]
    if all(v is None for v in values):
        return None
    return tuple(name for name, v in zip(SERIOUSNESS_CRITERIA, values, strict=True) if v)


def _record(pseudonym: str, ae: AdverseEvent) -> AeRecord:
    return AeRecord(
        ae.id,
        pseudonym,
        ae.onset_day,
        ae.pt_name,
        ae.soc_name,
        ae.serious,
        ae.relatedness,
        ae.expected,
        ae.susar,
        ae.susar_reported_at,
        criteria_of(ae),
        ae.action,
        ae.outcome,
        ae.end_day,
    )


#: Length of ``AdverseEvent.verbatim`` (store.models), the same on both backends.
VERBATIM_MAX = 200


def is_susar(serious: bool, relatedness: str, expected: bool) -> bool:
    """Serious and related (probably or possibly) and unexpected."""
    return serious and relatedness in RELATED and not expected


def record_adverse_event(
    session: Session,
    actor: Actor,
    pseudonym: str,
    *,
    onset_day: int,
    term: str,
    serious: bool,
    relatedness: str,
    expected: bool,
    action: str,
    outcome: str,
    criteria: Collection[str] = (),
    end_day: int | None = None,
    verbatim: str = "",
    meddra: MedDRA | None = None,
) -> AeRecord:
    """Record a treatment-emergent AE coded to MedDRA PT and SOC; flags and reports a SUSAR at once.

    ``criteria``: the ticked seriousness criteria (keys of ``SERIOUSNESS_CRITERIA``), required exactly when
    ``serious``; ``action``/``outcome``: CDISC ACN/OUT terms; ``end_day``: the study day the event ended
    (resolved, with sequelae, or fatal: the patient's recorded day of death), None while it goes on.
    """
    require(actor, "record_ae")
    begin(session, actor, "adverse event")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if patient.status != "randomized":
        raise ImmunoSepError(
            f"patient {pseudonym} is not randomized; only treatment-emergent events are recorded"
        )
    if relatedness not in RELATEDNESS:
        raise ImmunoSepError(f"relatedness is one of {RELATEDNESS}", field="relatedness")
    last_day = max(protocol_of(session).endpoints.mortality.days)  # the end of follow-up
    if not 1 <= onset_day <= last_day:
        raise ImmunoSepError(f"onset day is a study day 1-{last_day} (got {onset_day})", field="onset_day")
    if end_day is not None and not 1 <= end_day <= last_day:
        raise ImmunoSepError(f"end day is a study day 1-{last_day} (got {end_day})", field="end_day")
    if len(verbatim) > VERBATIM_MAX:
        raise ImmunoSepError(f"the verbatim term has at most {VERBATIM_MAX} characters", field="verbatim")
    ticked = set(criteria)
    death_day = session.execute(select(Outcome.death_day).where(Outcome.patient_id == patient.id)).scalar()
    check_adverse_event(
        serious=serious,
        criteria=ticked,
        action=action,
        outcome=outcome,
        onset_day=onset_day,
        end_day=end_day,
        death_day=death_day,
    )
    coded = (meddra or demo_meddra()).code(term)
    susar = is_susar(serious, relatedness, expected)
    ae = AdverseEvent(
        patient_id=patient.id,
        onset_day=onset_day,
        verbatim=verbatim or term,
        pt_code=coded.pt_code,
        pt_name=coded.pt_name,
        soc_code=coded.soc_code,
        soc_name=coded.soc_name,
        serious=serious,
        relatedness=relatedness,
        expected=expected,
        susar=susar,
        susar_reported_at=utcnow() if susar else None,
        recorded_by=actor.user_id,
        action=action,
        outcome=outcome,
        end_day=end_day,
        **{f"crit_{name}": name in ticked for name in SERIOUSNESS_CRITERIA},
    )
    session.add(ae)
    session.flush()
    return _record(pseudonym, ae)


def adverse_events(session: Session, actor: Actor, pseudonym: str) -> list[AeRecord]:
    """One patient's adverse events (clinical readers in scope)."""
    require(actor, "read_ae")
    patient = get_patient(session, actor, pseudonym)
    rows = session.execute(
        select(AdverseEvent).where(AdverseEvent.patient_id == patient.id).order_by(AdverseEvent.id)
    ).scalars()
    return [_record(pseudonym, r) for r in rows]


def susar_report(session: Session, actor: Actor) -> list[AeRecord]:
    """Every SUSAR in the actor's scope (investigators, monitors, data managers), newest last."""
    require(actor, "read_susars")
    rows = session.execute(
        select(AdverseEvent, Patient)
        .join(Patient, Patient.id == AdverseEvent.patient_id)
        .where(AdverseEvent.susar.is_(True))
        .order_by(AdverseEvent.susar_reported_at)
    ).all()
    return [_record(p.pseudonym, ae) for ae, p in rows if in_scope(actor, p.site_id)]
