"""Biospecimens: ferritin and mHLA-DR from the central lab on the protocol days, and the SIDF state.

Only protocol days (``protocol.biospecimens.days``) are accepted; values beyond the protocol's
plausibility limits are refused as probable unit errors. After every draw of a randomized patient the
reversal of sepsis-induced immune dysfunction is recomputed by ``clinical.sidf.sidf_reversal`` (the one
definition of the endpoint) from the stratum's marker (ferritin for MALS, mHLA-DR for immunoparalysis):
``Patient.sidf_reversed`` is True/False once the patient has the serial draws that make it assessable,
and empty (None) before that, as in ADSL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.clinical.sidf import sidf_reversal
from immunosep.conduct import sdv
from immunosep.conduct.access import Actor, begin, ensure_writable, get_patient
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.models import BiomarkerDraw, Patient, utcnow


@dataclass(frozen=True)
class DrawReceipt:
    pseudonym: str
    study_day: int
    ferritin_ng_ml: float | None
    hla_dr_per_monocyte: float | None


def _check(session: Session, study_day: int, ferritin: float | None, hla_dr: float | None) -> None:
    p = protocol_of(session)
    if study_day not in p.biospecimens.days:
        raise ImmunoSepError(
            f"day {study_day} is not a biospecimen day; protocol days are {p.biospecimens.days}",
            field="study_day",
        )
    c = p.classification
    if ferritin is not None and not 0 <= ferritin <= c.ferritin_max_plausible:
        raise ImmunoSepError(
            f"ferritin {ferritin:g} {c.ferritin_unit} is outside 0-{c.ferritin_max_plausible:g}: check the unit",
            field="ferritin_ng_ml",
        )
    if hla_dr is not None and not 0 <= hla_dr <= c.hla_dr_max_plausible:
        raise ImmunoSepError(
            f"mHLA-DR {hla_dr:g} is outside 0-{c.hla_dr_max_plausible:g} {c.hla_dr_unit}: check the unit",
            field="hla_dr_per_monocyte",
        )
    if ferritin is None and hla_dr is None:
        raise ImmunoSepError("give ferritin, mHLA-DR or both")


def update_sidf(session: Session, patient: Patient) -> None:
    """Recompute the patient's SIDF state from all draws (stratum marker, first draw = baseline).

    ``sidf_reversed`` is None while the patient is not assessable (no baseline or too few serial draws),
    else whether the reversal is confirmed; ``sidf_day`` is the study day of reversal.
    """
    if patient.stratum is None or patient.status != "randomized":
        return
    draws = (
        session.execute(
            select(BiomarkerDraw)
            .where(BiomarkerDraw.patient_id == patient.id)
            .order_by(BiomarkerDraw.study_day)
        )
        .scalars()
        .all()
    )
    marker = "ferritin_ng_ml" if patient.stratum == "mals" else "hla_dr_per_monocyte"
    result = sidf_reversal(
        patient.stratum,
        [d.study_day for d in draws],
        [getattr(d, marker) for d in draws],
        protocol=protocol_of(session),
    )
    patient.sidf_reversed = result.reversed if result.assessable else None
    patient.sidf_day = result.day


def record_draw(
    session: Session,
    actor: Actor,
    pseudonym: str,
    study_day: int,
    *,
    ferritin_ng_ml: float | None,
    hla_dr_per_monocyte: float | None,
    drawn_at: datetime | None = None,
    reason: str = "",
) -> DrawReceipt:
    """Enter (or, with a reason, correct) the central lab's result for one protocol day."""
    require(actor, "enter_biomarkers")
    begin(session, actor, reason or "biomarker result")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    _check(session, study_day, ferritin_ng_ml, hla_dr_per_monocyte)
    draw = session.execute(
        select(BiomarkerDraw).where(
            BiomarkerDraw.patient_id == patient.id, BiomarkerDraw.study_day == study_day
        )
    ).scalar_one_or_none()
    if draw is None:
        draw = BiomarkerDraw(
            patient_id=patient.id,
            study_day=study_day,
            drawn_at=drawn_at or utcnow(),
            ferritin_ng_ml=ferritin_ng_ml,
            hla_dr_per_monocyte=hla_dr_per_monocyte,
            entered_by=actor.user_id,
        )
        session.add(draw)
    else:
        if not reason.strip():
            raise ImmunoSepError(
                f"day {study_day} of {pseudonym} is already entered; a correction needs a reason",
                field="reason",
            )
        draw.ferritin_ng_ml = ferritin_ng_ml
        draw.hla_dr_per_monocyte = hla_dr_per_monocyte
        session.flush()
        sdv.reset_changed(session, "biomarker_draws", draw)  # a verified value returns to unverified
    session.flush()
    update_sidf(session, patient)
    session.flush()
    return DrawReceipt(pseudonym, study_day, ferritin_ng_ml, hla_dr_per_monocyte)
