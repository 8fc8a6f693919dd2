"""Concealed randomization: sealed per-site lists made in advance, and atomic allocation.

Lists. Each site has its own sequence (as in the trial: a separate computer-generated sequence per
site; the stratum is *not* a randomization factor). The sequence is made of permuted blocks whose size is
drawn at random from ``protocol.randomization.block_sizes``; inside a block the arms appear in the
protocol ratio, shuffled. All randomness comes from :class:`HmacStream`: HMAC-SHA256 in counter mode
keyed by the trial's secret seed, a pseudorandom function, so the lists are reproducible from the seed and
unpredictable without it. Kit numbers come from a separate stream over the whole trial, so a kit number
says nothing about the arm.

Allocation. :func:`allocate` takes the lowest free slot of the patient's site inside one transaction
that holds the write lock (PostgreSQL: the audit-chain advisory lock plus ``SELECT ... FOR UPDATE`` on
the slot; SQLite: ``BEGIN IMMEDIATE``), so concurrent requests never share or skip a slot. The result
given to the investigator is the slot number and kit number only; the arm is returned only by
:func:`arm_of` to unblinded roles.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient
from immunosep.conduct.access_log import log_access
from immunosep.conduct.permissions import require
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol
from immunosep.store.models import Patient, RandomizationSlot, utcnow

KIT_DIGITS = 6


class HmacStream:
    """Deterministic random integers from HMAC-SHA256(seed, label || counter) blocks."""

    def __init__(self, seed: str, label: str) -> None:
        self._key = seed.encode("utf-8")
        self._label = label.encode("utf-8")
        self._counter = 0
        self._buffer = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            msg = self._label + b"\x00" + self._counter.to_bytes(8, "big")
            self._buffer += hmac.new(self._key, msg, hashlib.sha256).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def randbelow(self, n: int) -> int:
        """Uniform integer in [0, n) by rejection sampling on 64-bit draws (no modulo bias)."""
        if n <= 0:
            raise ValueError("n must be positive")
        limit = (1 << 64) - ((1 << 64) % n)
        while True:
            x = int.from_bytes(self._bytes(8), "big")
            if x < limit:
                return x % n

    def uniform(self) -> float:
        """Uniform float in [0, 1) with 53 random bits."""
        return (int.from_bytes(self._bytes(8), "big") >> 11) / float(1 << 53)


@dataclass(frozen=True)
class ListSlot:
    sequence: int
    block_number: int
    block_size: int
    arm: str


def generate_site_list(protocol: Protocol, seed: str, site_code: str, min_slots: int) -> list[ListSlot]:
    """The permuted-block list of one site, complete blocks, at least ``min_slots`` long."""
    rnd = protocol.randomization
    arms = protocol.arm_codes
    unit = sum(rnd.ratio)
    stream = HmacStream(seed, f"list:{site_code}")
    slots: list[ListSlot] = []
    block = 0
    while len(slots) < min_slots:
        block += 1
        size = rnd.block_sizes[stream.randbelow(len(rnd.block_sizes))]
        content = [arm for arm, r in zip(arms, rnd.ratio, strict=True) for _ in range(r * size // unit)]
        for i in range(len(content) - 1, 0, -1):  # Fisher-Yates with the keyed stream
            j = stream.randbelow(i + 1)
            content[i], content[j] = content[j], content[i]
        base = len(slots)
        slots.extend(ListSlot(base + k + 1, block, size, arm) for k, arm in enumerate(content))
    return slots


#: Outcomes known at a data cut, per stratum and arm: (successes, patients with the outcome known).
DataCut = Mapping[str, Mapping[str, tuple[int, int]]]


def data_cut_digest(cut: DataCut) -> str:
    """SHA-256 of the data cut in canonical JSON (sorted keys), recorded with every adaptive draw."""
    canonical = {s: {a: list(v) for a, v in sorted(arms.items())} for s, arms in sorted(cut.items())}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class AdaptiveDraw:
    """One response-adaptive allocation: sealed (the arm, the probability and the draw say the arm)."""

    stratum: str
    probability: float  # allocation probability to the treatment arm at the data cut
    data_cut_sha256: str
    uniform: float
    arm: str


def adaptive_draw(
    protocol: Protocol, seed: str, site_code: str, sequence: int, stratum: str, cut: DataCut
) -> AdaptiveDraw:
    """The arm of a site's ``sequence``-th allocation under ``[randomization.adaptive]``, reproducibly.

    The allocation probability to treatment is :func:`immunosep.stats.bayes_binomial.rar_allocation` of
    the stratum's posterior probability of benefit at the data cut (the same functions the simulator
    uses); the uniform comes from the keyed stream labelled by site and sequence, so the seed and the data
    cut replay the draw. The treatment arm is the arm that is not ``control_arm``.
    """
    from immunosep.stats.bayes_binomial import prob_benefit, rar_allocation

    adaptive = protocol.randomization.adaptive
    if protocol.randomization.design != "adaptive" or adaptive is None:
        raise ImmunoSepError('the protocol\'s randomization.design is not "adaptive"')
    control = adaptive.control_arm
    (treatment,) = (a for a in protocol.arm_codes if a != control)
    counts = cut.get(stratum, {})
    x_t, n_t = counts.get(treatment, (0, 0))
    x_c, n_c = counts.get(control, (0, 0))
    if not (0 <= x_t <= n_t and 0 <= x_c <= n_c):
        raise ImmunoSepError(f"data cut of stratum {stratum!r}: successes must be between 0 and the patients")
    a0, b0 = adaptive.prior
    p_benefit = prob_benefit(a0 + x_t, b0 + n_t - x_t, a0 + x_c, b0 + n_c - x_c)
    share = float(
        rar_allocation(p_benefit, adaptive.power, adaptive.min_control_share, adaptive.min_treatment_share)
    )
    u = HmacStream(seed, f"adaptive:{site_code}:{sequence}").uniform()
    return AdaptiveDraw(stratum, share, data_cut_digest(cut), u, treatment if u < share else control)


def kit_numbers(seed: str, count: int) -> list[str]:
    """``count`` distinct random kit numbers for the whole trial, independent of the arms."""
    stream = HmacStream(seed, "kits")
    low = 10 ** (KIT_DIGITS - 1)
    if count > 9 * low // 2:
        raise ImmunoSepError(f"{count} kits do not fit in {KIT_DIGITS}-digit kit numbers")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        kit = str(low + stream.randbelow(9 * low))
        if kit not in seen:
            seen.add(kit)
            out.append(kit)
    return out


def seed_fingerprint(seed: str) -> str:
    """SHA-256 of the seed, stored so a seed can later be shown to reproduce the stored lists."""
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Allocation:
    """What the investigator learns: the patient is randomized, slot and kit number (never the arm)."""

    pseudonym: str
    sequence: int
    kit_number: str
    allocated_at: datetime


def allocate(session: Session, actor: Actor, pseudonym: str) -> Allocation:
    """Give the patient the next free slot of their site's sealed list, atomically.

    The patient must be eligible, consented and classified into an enrolled stratum.
    """
    require(actor, "randomize")
    begin(session, actor, "randomization")
    patient = get_patient(session, actor, pseudonym, for_update=True)
    ensure_writable(session, patient)
    if patient.status == "randomized":
        raise ImmunoSepError(f"patient {pseudonym} is already randomized")
    from immunosep.store.models import Consent

    if session.query(Consent).filter_by(patient_id=patient.id).first() is None:
        raise ImmunoSepError(
            f"patient {pseudonym} has no recorded consent; record consent before randomizing"
        )
    if patient.status != "classified":
        raise ImmunoSepError(
            f"patient {pseudonym} cannot be randomized in status {patient.status!r}: screen as eligible, "
            "record consent and classify from the baseline draw first"
        )
    stmt = (
        select(RandomizationSlot)
        .where(RandomizationSlot.site_id == patient.site_id, RandomizationSlot.used.is_(False))
        .order_by(RandomizationSlot.sequence)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    slot = session.execute(stmt).scalar_one_or_none()
    if slot is None:
        raise ImmunoSepError(
            f"the randomization list of patient {pseudonym}'s site is exhausted; ask the trial statistician "
            "to extend it"
        )
    now = utcnow()
    slot.used = True
    slot.patient_id = patient.id
    slot.allocated_at = now
    slot.allocated_by = actor.user_id
    patient.status = "randomized"
    session.flush()
    return Allocation(
        pseudonym=pseudonym, sequence=slot.sequence, kit_number=slot.kit_number, allocated_at=now
    )


@dataclass(frozen=True)
class ArmDisclosure:
    """The arm of a randomized patient, for unblinded roles only."""

    pseudonym: str
    stratum: str
    arm: str
    kit_number: str


def slot_of(session: Session, patient: Patient) -> RandomizationSlot:
    slot = session.execute(
        select(RandomizationSlot).where(RandomizationSlot.patient_id == patient.id)
    ).scalar_one_or_none()
    if slot is None or patient.stratum is None:
        raise ImmunoSepError(f"patient {patient.pseudonym} is not randomized")
    return slot


def arm_of(session: Session, actor: Actor, pseudonym: str) -> ArmDisclosure:
    """The arm of one patient: for the pharmacist of the patient's site only."""
    require(actor, "see_allocation")
    patient = get_patient(session, actor, pseudonym)
    slot = slot_of(session, patient)
    assert patient.stratum is not None
    log_access(session, actor, "read", "see_allocation", subject_id=patient.id, pseudonym=pseudonym)
    return ArmDisclosure(pseudonym, patient.stratum, slot.arm, slot.kit_number)


@dataclass(frozen=True)
class SiteListStatus:
    """How far a site's list has been used (no arms)."""

    site_id: int
    slots: int
    used: int


def list_status(session: Session, actor: Actor, site_id: int) -> SiteListStatus:
    """Slots used and left at a site, for investigators of the site, monitors and data managers."""
    require(actor, "read_list_usage")
    from immunosep.conduct.access import in_scope

    if not in_scope(actor, site_id):
        raise ImmunoSepError("that site is not among the sites you may access")
    total, used = session.execute(
        select(func.count(), func.count().filter(RandomizationSlot.used.is_(True))).where(
            RandomizationSlot.site_id == site_id
        )
    ).one()
    return SiteListStatus(site_id=site_id, slots=int(total), used=int(used))
