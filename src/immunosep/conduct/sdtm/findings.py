"""Findings: LB (ferritin, monocyte HLA-DR) and RS (the daily SOFA as a clinical classification).

SDTMIG 3.3 moved clinical classifications (scores a clinician derives from observations, such as SOFA or
APACHE II) from QS to RS, "Disease Response and Clinical Classification"; SOFA goes there with
``RSCAT = "SOFA"``, one row per patient-day and item: the six organ scores and the total. The test codes
``SOFA0101``..``SOFA0107`` follow the naming pattern of CDISC's questionnaire, rating and scale (QRS)
terminology; that they are CDISC's published codes for SOFA is not verified here (see docs/conduct.md). A
component whose input was not recorded scores 0 in the total (the protocol's rule) and is reported
``RSSTAT = "NOT DONE"``. The SOFA inputs themselves (PaO2/FiO2, platelets...) stay in the database.
``--LOBXFL`` (SDTMIG 3.4's baseline flag) marks the last draw before the first dose in LB and the
protocol's baseline day (the SOFA of day 1, scored before the first dose) in RS.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.sdtm.base import Context, iso_date, iso_datetime
from immunosep.store.models import BiomarkerDraw, DailyCrf

#: (RSTESTCD, RSTEST, CRF column, component name in ``sofa_missing``)
SOFA_ITEMS = (
    ("SOFA0101", "SOFA01-Respiration", "sofa_respiration", "respiration"),
    ("SOFA0102", "SOFA01-Coagulation", "sofa_coagulation", "coagulation"),
    ("SOFA0103", "SOFA01-Liver", "sofa_liver", "liver"),
    ("SOFA0104", "SOFA01-Cardiovascular", "sofa_cardiovascular", "cardiovascular"),
    ("SOFA0105", "SOFA01-Central Nervous System", "sofa_cns", "cns"),
    ("SOFA0106", "SOFA01-Renal", "sofa_renal", "renal"),
    ("SOFA0107", "SOFA01-Total Score", "sofa_total", ""),
)
#: (LBTESTCD, LBTEST, draw column, protocol unit attribute)
LAB_TESTS = (
    ("FERRITIN", "Ferritin", "ferritin_ng_ml", "ferritin_unit"),
    ("HLADRMON", "HLA-DR Receptors per Monocyte", "hla_dr_per_monocyte", "hla_dr_unit"),
)


def lb(ctx: Context, session: Session) -> list[dict[str, Any]]:
    subjects = ctx.by_patient_id()
    treatment_days = ctx.protocol.treatment.days
    draws = (
        session.execute(select(BiomarkerDraw).order_by(BiomarkerDraw.patient_id, BiomarkerDraw.study_day))
        .scalars()
        .all()
    )
    # the last non-missing result of each test drawn at or before the first dose
    before: dict[tuple[int, str], int] = {}
    for b in draws:
        subject = subjects.get(b.patient_id)
        if subject is None or subject.first_dose_at is None or b.drawn_at > subject.first_dose_at:
            continue
        for code, _name, column, _unit in LAB_TESTS:
            if getattr(b, column) is not None:
                before[(b.patient_id, code)] = b.study_day
    last_before = {(pid, code, day) for (pid, code), day in before.items()}
    rows = []
    seq: dict[int, int] = {}
    for b in draws:
        s = subjects.get(b.patient_id)
        if s is None:
            continue
        for code, name, column, unit_attr in LAB_TESTS:
            value = getattr(b, column)
            if value is None:
                continue
            unit = getattr(ctx.protocol.classification, unit_attr)
            seq[b.patient_id] = n = seq.get(b.patient_id, 0) + 1
            rows.append(
                ctx.row(
                    "LB",
                    s,
                    LBSEQ=n,
                    LBTESTCD=code,
                    LBTEST=name,
                    LBCAT="IMMUNE CLASSIFICATION",
                    LBORRES=f"{value:g}",
                    LBORRESU=unit,
                    LBSTRESC=f"{value:g}",
                    LBSTRESN=float(value),
                    LBSTRESU=unit,
                    LBSPEC="BLOOD",
                    LBLOBXFL="Y" if (b.patient_id, code, b.study_day) in last_before else "",
                    VISITNUM=float(b.study_day),
                    VISIT=f"DAY {b.study_day}",
                    EPOCH=s.epoch(b.drawn_at, treatment_days),
                    LBDTC=iso_datetime(b.drawn_at),
                    LBDY=s.dy(b.drawn_at),
                )
            )
    return rows


def rs(ctx: Context, session: Session) -> list[dict[str, Any]]:
    subjects = ctx.by_patient_id()
    treatment_days = ctx.protocol.treatment.days
    baseline = ctx.protocol.endpoints.primary.baseline_day
    rows = []
    seq: dict[int, int] = {}
    for crf in session.execute(select(DailyCrf).order_by(DailyCrf.patient_id, DailyCrf.study_day)).scalars():
        s = subjects.get(crf.patient_id)
        if s is None:
            continue
        when = s.day_date(crf.study_day)
        missing = set(filter(None, crf.sofa_missing.split(",")))
        for code, name, column, component in SOFA_ITEMS:
            value = int(getattr(crf, column))
            not_done = component in missing
            seq[crf.patient_id] = n = seq.get(crf.patient_id, 0) + 1
            rows.append(
                ctx.row(
                    "RS",
                    s,
                    RSSEQ=n,
                    RSTESTCD=code,
                    RSTEST=name,
                    RSCAT="SOFA",
                    RSORRES="" if not_done else str(value),
                    RSSTRESC="" if not_done else str(value),
                    RSSTRESN=None if not_done else float(value),
                    RSSTAT="NOT DONE" if not_done else "",
                    RSREASND="INPUT NOT RECORDED" if not_done else "",
                    RSLOBXFL="Y" if crf.study_day == baseline else "",
                    VISITNUM=float(crf.study_day),
                    VISIT=f"DAY {crf.study_day}",
                    EPOCH=s.epoch(when, treatment_days),
                    RSDTC=iso_date(when),
                    RSDY=s.dy(when),
                )
            )
    return rows
