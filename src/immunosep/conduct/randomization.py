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

Response-adaptive design (``[randomization] design = "adaptive"``). ``db init`` makes each site's slots
with a kit number and a sealed uniform from the keyed stream (:func:`adaptive_uniform`; the database keeps
only the seed's fingerprint, so the uniforms are drawn while the seed is at hand) and no arm. At
allocation, inside the same locked transaction, :func:`data_cut` reads the outcomes known at that moment
(per stratum and arm: successes and patients whose primary endpoint the stored data fix), and
:func:`allocation_probability` turns the patient's stratum's counts into the allocation probability to
treatment (the first ``burn_in`` allocations of the site and stratum at the fixed ratio); the arm is
treatment when the slot's uniform is below it. The stratum, the probability, the data cut and its
SHA-256 are written to the slot (sealed columns: the audit trail keeps them as keyed digests and blinded
roles never see the slot's entries), so the seed and the recorded cut replay every arm
(:func:`adaptive_draw`).
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
#: The arm of an adaptive slot before its allocation draws it.
NO_ARM_YET = ""


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


def data_cut_json(cut: DataCut) -> str:
    """The data cut in canonical JSON (sorted keys, no spaces): what a slot records and its digest hashes."""
    canonical = {s: {a: list(v) for a, v in sorted(arms.items())} for s, arms in sorted(cut.items())}
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def parse_data_cut(text: str) -> dict[str, dict[str, tuple[int, int]]]:
    """A recorded data cut (:func:`data_cut_json`) back as counts."""
    raw = json.loads(text)
    return {s: {a: (int(v[0]), int(v[1])) for a, v in arms.items()} for s, arms in raw.items()}


def data_cut_digest(cut: DataCut) -> str:
    """SHA-256 of the data cut in canonical JSON (sorted keys), recorded with every adaptive draw."""
    return hashlib.sha256(data_cut_json(cut).encode()).hexdigest()


@dataclass(frozen=True)
class AdaptiveDraw:
    """One response-adaptive allocation: sealed (the arm, the probability and the draw say the arm)."""

    stratum: str
    probability: float  # allocation probability to the treatment arm at the data cut
    data_cut_sha256: str
    uniform: float
    arm: str


def adaptive_arms(protocol: Protocol) -> tuple[str, str]:
    """``(treatment, control)`` of an adaptive protocol; an error for any other design."""
    adaptive = protocol.randomization.adaptive
    if protocol.randomization.design != "adaptive" or adaptive is None:
        raise ImmunoSepError('the protocol\'s randomization.design is not "adaptive"')
    control = adaptive.control_arm
    (treatment,) = (a for a in protocol.arm_codes if a != control)
    return treatment, control


def allocation_probability(
    protocol: Protocol, stratum: str, cut: DataCut, earlier: int | None = None
) -> float:
    """The allocation probability to treatment of a patient of ``stratum`` at the data cut ``cut``.

    :func:`immunosep.stats.bayes_binomial.rar_allocation` of the stratum's posterior probability of benefit
    (:func:`~immunosep.stats.bayes_binomial.prob_benefit`, the functions the simulator uses) from that
    stratum's counts only, within the minimum shares. While fewer than ``burn_in`` allocations were made
    at the site in the stratum (``earlier``; None: past the burn-in), it is the fixed ratio's share of
    treatment instead.
    """
    from immunosep.stats.bayes_binomial import prob_benefit, rar_allocation

    treatment, control = adaptive_arms(protocol)
    adaptive = protocol.randomization.adaptive
    assert adaptive is not None
    counts = cut.get(stratum, {})
    x_t, n_t = counts.get(treatment, (0, 0))
    x_c, n_c = counts.get(control, (0, 0))
    if not (0 <= x_t <= n_t and 0 <= x_c <= n_c):
        raise ImmunoSepError(f"data cut of stratum {stratum!r}: successes must be between 0 and the patients")
    if earlier is not None and earlier < adaptive.burn_in:
        ratio = dict(zip(protocol.arm_codes, protocol.randomization.ratio, strict=True))
        return ratio[treatment] / (ratio[treatment] + ratio[control])
    a0, b0 = adaptive.prior
    p_benefit = prob_benefit(a0 + x_t, b0 + n_t - x_t, a0 + x_c, b0 + n_c - x_c)
    return float(
        rar_allocation(p_benefit, adaptive.power, adaptive.min_control_share, adaptive.min_treatment_share)
    )


def adaptive_uniform(seed: str, site_code: str, sequence: int) -> float:
    """The uniform of a site's ``sequence``-th adaptive slot, from the keyed stream (drawn at ``db init``)."""
    return HmacStream(seed, f"adaptive:{site_code}:{sequence}").uniform()


def adaptive_draw(
    protocol: Protocol,
    seed: str,
    site_code: str,
    sequence: int,
    stratum: str,
    cut: DataCut,
    earlier: int | None = None,
) -> AdaptiveDraw:
    """The arm of a site's ``sequence``-th allocation under ``[randomization.adaptive]``, reproducibly.

    The allocation probability is :func:`allocation_probability` at the data cut (``earlier``: allocations
    made before at the site in the stratum, for the burn-in; None: past it); the uniform comes from the keyed stream
    labelled by site and sequence (:func:`adaptive_uniform`), so the seed and the data cut replay the draw.
    The arm is treatment (the arm that is not ``control_arm``) when the uniform is below the probability.
    """
    treatment, control = adaptive_arms(protocol)
    share = allocation_probability(protocol, stratum, cut, earlier)
    u = adaptive_uniform(seed, site_code, sequence)
    return AdaptiveDraw(stratum, share, data_cut_digest(cut), u, treatment if u < share else control)


def data_cut(session: Session, protocol: Protocol) -> dict[str, dict[str, tuple[int, int]]]:
    """The primary-endpoint outcomes known now, per enrolled stratum and arm: (successes, known).

    A randomized patient's outcome is *known* when the stored data fix it: the follow-up to the
    endpoint's last day (``[endpoints.primary] window_last_day``) is complete, that is a daily SOFA is
    recorded on that day or later, or the patient died or left the ICU on or before it (the endpoint's
    imputation rules then fill the window). The endpoint is then derived with the same kernel as the
    analysis (:func:`immunosep.clinical.sofa_endpoint.sofa_decrease`: death scores, last observation
    carried forward; no baseline SOFA is no success). Patients still in follow-up, and erased ones, are
    not counted. Every enrolled stratum and arm appears, with ``(0, 0)`` when nothing is known.
    """
    import numpy as np

    from immunosep.clinical.sofa_endpoint import sofa_decrease
    from immunosep.store.models import DailyCrf, Outcome

    endpoint = protocol.endpoints.primary
    last = endpoint.window_last_day
    cut: dict[str, dict[str, list[int]]] = {
        s: {a: [0, 0] for a in protocol.arm_codes} for s in protocol.enrolled_strata
    }
    randomized: dict[int, tuple[str, str]] = {
        pid: (stratum, arm)
        for pid, stratum, arm in session.execute(
            select(
                Patient.id,
                func.coalesce(RandomizationSlot.stratum, Patient.stratum),
                RandomizationSlot.arm,
            )
            .join(Patient, Patient.id == RandomizationSlot.patient_id)
            .where(RandomizationSlot.arm != NO_ARM_YET)
        )
    }
    days: dict[int, dict[int, int]] = {}
    for pid, day, total in session.execute(
        select(DailyCrf.patient_id, DailyCrf.study_day, DailyCrf.sofa_total).join(
            RandomizationSlot, RandomizationSlot.patient_id == DailyCrf.patient_id
        )
    ):
        days.setdefault(pid, {})[day] = total
    ends = {
        pid: (death, discharge)
        for pid, death, discharge in session.execute(
            select(Outcome.patient_id, Outcome.death_day, Outcome.icu_discharge_day).join(
                RandomizationSlot, RandomizationSlot.patient_id == Outcome.patient_id
            )
        )
    }
    known = []
    for pid in sorted(randomized):
        recorded = days.get(pid, {})
        death, discharge = ends.get(pid, (None, None))
        if (
            max(recorded, default=0) >= last
            or (death is not None and death <= last)
            or (discharge is not None and discharge <= last)
        ):
            known.append(pid)
    if known:
        n_days = max(last, endpoint.death_imputed_until_day)
        sofa = np.full((len(known), n_days), np.nan)
        for i, pid in enumerate(known):
            for day, total in days.get(pid, {}).items():
                if 1 <= day <= n_days and total is not None:
                    sofa[i, day - 1] = total
        deaths = np.array(
            [np.nan if ends.get(p, (None,))[0] is None else ends[p][0] for p in known], dtype=float
        )
        achieved = sofa_decrease(sofa, deaths, endpoint).achieved
        for pid, success in zip(known, achieved, strict=True):
            stratum, arm = randomized[pid]
            if stratum in cut and arm in cut[stratum]:
                cut[stratum][arm][0] += int(success)
                cut[stratum][arm][1] += 1
    return {s: {a: (v[0], v[1]) for a, v in arms.items()} for s, arms in cut.items()}


@dataclass(frozen=True)
class Replay:
    """What :func:`replay_allocations` checked: slots, allocations replayed, and the slots that differ.

    ``differ`` names ``(site, sequence)`` only, never an arm, so it may be printed.
    """

    design: str
    slots: int
    allocations: int
    differ: tuple[tuple[str, int], ...]

    @property
    def ok(self) -> bool:
        return not self.differ


def replay_allocations(session: Session, seed: str) -> Replay:
    """Re-derive every stored slot from the trial's seed (database access: the trial statistician's tool).

    Block design: each site's list is generated again and every slot's arm compared. Adaptive design: each
    slot's uniform is drawn again, and every used slot's arm, probability and digest re-derived with
    :func:`adaptive_draw` from the data cut it recorded and the allocations made before it at the site in
    its stratum. A seed whose fingerprint is not the trial's is refused.
    """
    from immunosep.conduct.access import trial
    from immunosep.conduct.trial import protocol_of
    from immunosep.store.models import Site

    if seed_fingerprint(seed) != trial(session).randomization_seed_sha256:
        raise ImmunoSepError("that seed is not this trial's randomization seed (its fingerprint differs)")
    protocol = protocol_of(session)
    rows = session.execute(
        select(Site.code, RandomizationSlot)
        .join(Site, Site.id == RandomizationSlot.site_id)
        .order_by(Site.code, RandomizationSlot.sequence)
    ).all()
    differ: list[tuple[str, int]] = []
    allocations = 0
    if protocol.randomization.design != "adaptive":
        by_site: dict[str, list[RandomizationSlot]] = {}
        for code, slot in rows:
            by_site.setdefault(code, []).append(slot)
        for code, slots in by_site.items():
            made = generate_site_list(protocol, seed, code, len(slots))
            for slot in slots:
                allocations += int(slot.used)
                if slot.sequence > len(made) or made[slot.sequence - 1].arm != slot.arm:
                    differ.append((code, slot.sequence))
        return Replay("block", len(rows), allocations, tuple(differ))
    earlier: dict[tuple[str, str], int] = {}
    for code, slot in rows:
        if slot.uniform != adaptive_uniform(seed, code, slot.sequence):
            differ.append((code, slot.sequence))
            continue
        if not slot.used:
            continue
        allocations += 1
        stratum = slot.stratum or ""
        k = earlier.get((code, stratum), 0)
        earlier[(code, stratum)] = k + 1
        try:
            draw = adaptive_draw(
                protocol, seed, code, slot.sequence, stratum, parse_data_cut(slot.data_cut or "{}"), k
            )
        except (ImmunoSepError, ValueError, KeyError, IndexError):
            differ.append((code, slot.sequence))
            continue
        if (draw.arm, draw.probability, draw.data_cut_sha256) != (
            slot.arm,
            slot.probability,
            slot.data_cut_sha256,
        ):
            differ.append((code, slot.sequence))
    return Replay("adaptive", len(rows), allocations, tuple(differ))


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
    if slot.arm == NO_ARM_YET:
        _draw_adaptively(session, patient, slot)
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


def _draw_adaptively(session: Session, patient: Patient, slot: RandomizationSlot) -> None:
    """Give an adaptive slot its arm: the stratum's probability at the data cut of now, against its uniform."""
    from immunosep.conduct.trial import protocol_of

    protocol = protocol_of(session)
    treatment, control = adaptive_arms(protocol)
    if slot.uniform is None or patient.stratum is None:
        raise ImmunoSepError(
            f"the randomization slot of patient {patient.pseudonym}'s site was not made for an adaptive "
            "design; ask the trial statistician"
        )
    earlier = session.execute(
        select(func.count()).where(
            RandomizationSlot.site_id == slot.site_id,
            RandomizationSlot.stratum == patient.stratum,
            RandomizationSlot.used.is_(True),
        )
    ).scalar_one()
    cut = data_cut(session, protocol)
    probability = allocation_probability(protocol, patient.stratum, cut, int(earlier))
    slot.stratum = patient.stratum
    slot.probability = probability
    slot.data_cut = data_cut_json(cut)
    slot.data_cut_sha256 = data_cut_digest(cut)
    slot.arm = treatment if slot.uniform < probability else control


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
