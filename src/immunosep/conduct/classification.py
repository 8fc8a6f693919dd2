"""Immune classification from the baseline draw by ``clinical.immune.classify``.

An unclassified patient is not enrolled, and an infection listed in
``protocol.eligibility.infections_requiring_mals`` (SARS-CoV-2 pneumonia) is enrolled only with MALS.
The stratum is open information (it decides which active drug exists), so it is returned to every role
that may see the patient; the arm is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.clinical.immune import classify
from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.models import BiomarkerDraw

MALS = "mals"


@dataclass(frozen=True)
class ClassificationResult:
    pseudonym: str
    stratum: str
    enrolled: bool
    reason: str


def classify_patient(session: Session, actor: Actor, pseudonym: str) -> ClassificationResult:
    """Classify an eligible patient from the baseline draw and decide enrolment."""
    require(actor, "classify")
    begin(session, actor, "immune classification")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if patient.status != "eligible":
        raise ImmunoSepError(f"patient {pseudonym} cannot be classified in status {patient.status!r}")
    p = protocol_of(session)
    draw = session.execute(
        select(BiomarkerDraw).where(
            BiomarkerDraw.patient_id == patient.id, BiomarkerDraw.study_day == p.biospecimens.baseline_day
        )
    ).scalar_one_or_none()
    if draw is None or draw.ferritin_ng_ml is None:
        raise ImmunoSepError(
            f"patient {pseudonym} has no baseline ferritin yet; the central lab enters day "
            f"{p.biospecimens.baseline_day} first"
        )
    stratum = classify(draw.ferritin_ng_ml, draw.hla_dr_per_monocyte, protocol=p)
    enrolled_strata = set(p.enrolled_strata)
    reason = ""
    if stratum not in enrolled_strata:
        reason = f"stratum {stratum} is not enrolled"
    elif patient.infection_type in p.eligibility.infections_requiring_mals and stratum != MALS:
        reason = f"{patient.infection_type} is enrolled only with MALS"
    patient.stratum = stratum
    patient.status = "not_enrolled" if reason else "classified"
    session.flush()
    return ClassificationResult(pseudonym, stratum, not reason, reason)
