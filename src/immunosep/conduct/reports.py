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
from immunosep.conduct.randomization import adaptive_arms
from immunosep.conduct.trial import protocol_of
from immunosep.stats.predictability import METHOD as GUESS_METHOD
from immunosep.stats.predictability import (
    expected_guess_share_adaptive,
    expected_guess_share_blocks,
    guess_share,
)
from immunosep.store.models import AdverseEvent, AuditEntry, Outcome, Patient, RandomizationSlot, Site


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
class GuessRow:
    """Correct guesses by the convergence strategy at one site (or pooled: ``site`` is ``"all"``).

    ``share`` is the correct guess probability of the allocated sequence, ``excess`` its excess over
    chance, ``expected_share`` what the design gives on average for as many allocations (the three are
    None without allocations). Under a response-adaptive design ``expected_share`` is computed from the
    allocation probabilities stored with each draw, and ``block_expected_share`` is what the protocol's
    permuted blocks would give for as many allocations, beside it (None under the block design).
    """

    site: str
    allocations: int
    correct: float
    share: float | None
    excess: float | None
    expected_share: float | None
    block_expected_share: float | None = None


@dataclass(frozen=True)
class PredictabilityReport:
    """Randomization predictability for the DSMB: per site and pooled, no patient named."""

    design: str
    block_sizes: list[int]
    chance: float
    sites: list[GuessRow]
    pooled: GuessRow
    method: str = GUESS_METHOD


def predictability_report(session: Session, actor: Actor) -> PredictabilityReport:
    """The share of next allocations an investigator would guess right by the convergence strategy.

    Computed from each site's used sealed slots in allocation order (an erased patient's slot stays
    used and counts, since the investigator saw that allocation happen), per site and pooled (correct
    guesses over allocations), beside the design's expectation for the same numbers of allocations
    (:func:`immunosep.stats.predictability.expected_guess_share_blocks`). Under a response-adaptive design
    the same guess share is computed from the drawn arms, and its expectation from the allocation
    probability stored with each draw (:func:`~immunosep.stats.predictability.expected_guess_share_adaptive`),
    with the protocol's permuted blocks' expectation beside it for comparison. Aggregates only: no patient,
    slot or arm appears, so it is for the DSMB (unblinded to aggregates) alone.
    """
    require(actor, "read_dsmb_report")
    p = protocol_of(session)
    rnd = p.randomization
    adaptive = rnd.design == "adaptive"
    rows = session.execute(
        select(Site.code, RandomizationSlot.arm, RandomizationSlot.probability)
        .join(Site, Site.id == RandomizationSlot.site_id)
        .where(RandomizationSlot.used.is_(True))
        .order_by(Site.code, RandomizationSlot.sequence)
    ).all()
    by_site: dict[str, list[tuple[str, float | None]]] = {}
    for code, arm, probability in rows:
        by_site.setdefault(code, []).append((arm, probability))
    treatment = adaptive_arms(p)[0] if adaptive else None
    sites = []
    for code, drawn in sorted(by_site.items()):
        sequence = [arm for arm, _ in drawn]
        got = guess_share(sequence, p.arm_codes, rnd.ratio)
        blocks = expected_guess_share_blocks(rnd.block_sizes, len(sequence), rnd.ratio).share
        if adaptive:
            probs = [0.5 if q is None else q for _, q in drawn]
            expected = expected_guess_share_adaptive(sequence, probs, p.arm_codes, treatment, rnd.ratio).share
            sites.append(
                GuessRow(code, got.allocations, got.correct, got.share, got.excess, expected, blocks)
            )
        else:
            sites.append(GuessRow(code, got.allocations, got.correct, got.share, got.excess, blocks))
    n = sum(r.allocations for r in sites)
    correct = sum(r.correct for r in sites)
    expected_correct = sum((r.expected_share or 0.0) * r.allocations for r in sites)
    block_correct = sum((r.block_expected_share or 0.0) * r.allocations for r in sites)
    chance = 1 / len(p.arm_codes)
    pooled = (
        GuessRow(
            "all",
            n,
            correct,
            correct / n,
            correct / n - chance,
            expected_correct / n,
            block_correct / n if adaptive else None,
        )
        if n
        else GuessRow("all", 0, 0.0, None, None, None)
    )
    if adaptive:
        return PredictabilityReport("adaptive", [], chance, sites, pooled)
    return PredictabilityReport("block", list(rnd.block_sizes), chance, sites, pooled)


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
