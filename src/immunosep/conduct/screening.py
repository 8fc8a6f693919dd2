"""Screening: every screened patient enters the log, eligible or not, with every reason for exclusion.

Eligibility is checked against ``protocol.eligibility`` (age, Sepsis-3 by ``clinical.sepsis3``, infection
type, neutrophils, exclusion criteria) and the treatment window
``protocol.treatment.first_dose_max_hours_after_onset`` (screening after the window has closed excludes).
The patient gets a pseudonym ``<site>-<number>`` (``S07-0012``); no name or birth date is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as input_model
from sqlalchemy.orm import Session

from immunosep.clinical.sepsis3 import meets_sepsis3
from immunosep.clinical.sofa import COMPONENTS
from immunosep.clinical.units import measured
from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.bounds import Int32
from immunosep.store.models import Consent, EligibilityAnswer, Patient, ScreeningEntry, Site, utcnow

SEXES = ("male", "female")
CONSENT_GIVERS = ("patient", "relative")
SOFA_MAX = 4 * len(COMPONENTS)
#: The range of each score answered at screening (the scores' definitions, not protocol numbers).
SCORE_RANGES = {
    "sofa_now": ("SOFA", 0, SOFA_MAX),
    "sofa_baseline": ("the baseline SOFA", 0, SOFA_MAX),
    "cci": ("the Charlson comorbidity index", 0, 37),
    "apache2": ("APACHE II", 0, 71),
}


@input_model(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False))
class ScreeningInput:
    """What the investigator answers at screening (units in the names): the one input model of the
    screening service, its API body and its page (and the simulated sites).

    Types are checked when the model is built; ranges and codes (:data:`SCORE_RANGES`, the plausible
    ranges of ``clinical.units.PLAUSIBLE``, the protocol's exclusion codes) when it is screened, each
    refusal one ``ImmunoSepError`` naming its field. ``screened_at``: the screening time for entries made
    after the fact by the simulator (``None`` = now); the API and the pages always screen now.
    """

    age_years: Int32
    sex: str
    infection_type: str
    sepsis_onset_at: datetime
    sofa_now: Int32
    neutrophils_per_mm3: float
    suspected_infection: bool = True
    sofa_baseline: Int32 | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    exclusions: Sequence[str] = ()
    screened_at: datetime | None = None
    #: Baseline severity scores recorded with the screening answers (the analysis reads them as
    #: covariates: ADSL ``cci`` and ``apache2``); ``None`` = not recorded.
    cci: Int32 | None = None
    apache2: Int32 | None = None


@dataclass(frozen=True)
class ScreeningResult:
    pseudonym: str
    eligible: bool
    reasons: tuple[str, ...]


def eligibility_reasons(session: Session, data: ScreeningInput, screened_at: datetime) -> list[str]:
    """Every reason the patient is not eligible (empty when eligible)."""
    p = protocol_of(session)
    e = p.eligibility
    reasons: list[str] = []
    if data.age_years < e.min_age_years:
        reasons.append(f"age below {e.min_age_years} years")
    if not meets_sepsis3(
        data.sofa_now,
        sofa_baseline=data.sofa_baseline,
        suspected_infection=data.suspected_infection,
        protocol=p,
    ):
        reasons.append("does not meet Sepsis-3")
    if data.infection_type not in e.infection_types:
        reasons.append(f"infection type {data.infection_type!r} not eligible")
    if data.neutrophils_per_mm3 < e.min_neutrophils_per_mm3:
        reasons.append(f"neutrophils below {e.min_neutrophils_per_mm3:g}/mm3")
    labels = {x.code: x.label for x in e.exclusions}
    reasons.extend(f"exclusion: {labels[code]}" for code in data.exclusions)
    hours = (screened_at - data.sepsis_onset_at).total_seconds() / 3600.0
    limit = p.treatment.first_dose_max_hours_after_onset
    if hours >= limit:
        reasons.append(f"more than {limit:g} h since sepsis onset")
    if hours < 0:
        reasons.append("sepsis onset is after the screening time")
    return reasons


def _validate(session: Session, data: ScreeningInput) -> None:
    e = protocol_of(session).eligibility
    if data.sex not in SEXES:
        raise ImmunoSepError(f"sex must be one of {SEXES}", field="sex")
    # plausible ranges from their one home (clinical.units.PLAUSIBLE); an adult age is an eligibility
    # criterion (protocol eligibility.min_age_years), answered in the log, not refused here
    measured("age_years", data.age_years, missing_ok=False)
    for name in ("weight_kg", "height_cm"):
        value = getattr(data, name)
        if value is not None:
            measured(name, value, missing_ok=False)
    unknown = [c for c in data.exclusions if c not in {x.code for x in e.exclusions}]
    if unknown:
        raise ImmunoSepError(
            f"unknown exclusion codes {unknown}; known: {[x.code for x in e.exclusions]}", field="exclusions"
        )
    if data.sepsis_onset_at.tzinfo is None:
        raise ImmunoSepError("sepsis onset time needs a time zone (UTC)", field="sepsis_onset_at")
    for name, (what, low, high) in SCORE_RANGES.items():
        value = getattr(data, name)
        if value is not None and not low <= value <= high:
            raise ImmunoSepError(f"{what} is between {low} and {high}", field=name)
    if not data.neutrophils_per_mm3 >= 0:
        raise ImmunoSepError("neutrophils per mm3 cannot be negative", field="neutrophils_per_mm3")


def screen(session: Session, actor: Actor, data: ScreeningInput) -> ScreeningResult:
    """Screen one patient at the investigator's site: pseudonym, eligibility answers and the log entry."""
    require(actor, "screen")
    begin(session, actor, "screening")
    ensure_writable(session)
    _validate(session, data)
    (site_id,) = actor.site_ids
    site = session.get(Site, site_id)
    assert site is not None
    screened_at = data.screened_at or utcnow()
    reasons = eligibility_reasons(session, data, screened_at)
    number = site.next_patient_number
    site.next_patient_number = number + 1
    patient = Patient(
        trial_id=site.trial_id,
        site_id=site.id,
        pseudonym=f"{site.code}-{number:04d}",
        status="eligible" if not reasons else "excluded",
        age_years=data.age_years,
        sex=data.sex,
        weight_kg=data.weight_kg,
        height_cm=data.height_cm,
        infection_type=data.infection_type,
        sepsis_onset_at=data.sepsis_onset_at,
    )
    session.add(patient)
    session.flush()
    answers = {
        "suspected_infection": data.suspected_infection,
        "sofa_now": data.sofa_now,
        "sofa_baseline": data.sofa_baseline,
        "neutrophils_per_mm3": data.neutrophils_per_mm3,
        "exclusions": sorted(data.exclusions),
    }
    answers.update({k: v for k, v in (("cci", data.cci), ("apache2", data.apache2)) if v is not None})
    session.add_all(
        EligibilityAnswer(patient_id=patient.id, question=q, answer=json.dumps(a)) for q, a in answers.items()
    )
    session.add(
        ScreeningEntry(
            patient_id=patient.id,
            screened_at=screened_at,
            eligible=not reasons,
            exclusion_reasons="; ".join(reasons),
            screened_by=actor.user_id,
        )
    )
    session.flush()
    return ScreeningResult(patient.pseudonym, not reasons, tuple(reasons))


def record_consent(
    session: Session, actor: Actor, pseudonym: str, given_by: str, consented_at: datetime | None = None
) -> None:
    """Written informed consent by the patient or a first-degree relative."""
    require(actor, "record_consent")
    begin(session, actor, "consent")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if given_by not in CONSENT_GIVERS:
        raise ImmunoSepError(f"consent is given by one of {CONSENT_GIVERS}", field="given_by")
    if patient.status == "excluded":
        raise ImmunoSepError(f"patient {pseudonym} was excluded at screening; consent is not needed")
    if session.query(Consent).filter_by(patient_id=patient.id).first() is not None:
        raise ImmunoSepError(f"consent of patient {pseudonym} is already recorded")
    session.add(
        Consent(
            patient_id=patient.id,
            given_by=given_by,
            consented_at=consented_at or utcnow(),
            recorded_by=actor.user_id,
        )
    )
    session.flush()


@dataclass(frozen=True)
class ScreeningLogRow:
    pseudonym: str
    screened_at: datetime
    eligible: bool
    reasons: str
    status: str


def screening_log(session: Session, actor: Actor) -> list[ScreeningLogRow]:
    """The screening log of the sites in the actor's scope (investigators, monitors, data managers)."""
    require(actor, "read_screening_log")
    from sqlalchemy import select

    from immunosep.conduct.access import in_scope

    rows = session.execute(
        select(Patient, ScreeningEntry)
        .join(ScreeningEntry, ScreeningEntry.patient_id == Patient.id)
        .order_by(Patient.pseudonym)
    ).all()
    return [
        ScreeningLogRow(p.pseudonym, s.screened_at, s.eligible, s.exclusion_reasons, p.status)
        for p, s in rows
        if in_scope(actor, p.site_id)
    ]
