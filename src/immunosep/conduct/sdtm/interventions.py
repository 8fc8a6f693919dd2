"""Interventions: EX (every injection given), EC (every scheduled injection not given) and PR (organ support).

An injection's time is the first dose's time plus the hours of the schedule since the first dose's slot
(the dosing log keeps study day and scheduled hour). A blinded export masks the treatment name and drops the
dose (the rule is :mod:`immunosep.conduct.blinding`'s); the injected volume, which is the same in every arm,
stays in SUPPEX.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.sdtm.base import Context, dose_time, iso_date, iso_datetime, schedule_hour
from immunosep.conduct.sdtm.subjects import supp_row
from immunosep.store.models import DailyCrf, DoseRecord

ROUTES = {"iv": "INTRAVENOUS", "sc": "SUBCUTANEOUS"}
#: Organ support recorded on the daily CRF: (CRF column, PRTRT).
ORGAN_SUPPORT = (
    ("mechanical_ventilation", "MECHANICAL VENTILATION"),
    ("vasopressors", "VASOPRESSOR SUPPORT"),
    ("ckrt", "CONTINUOUS KIDNEY REPLACEMENT THERAPY"),
)


def ex_ec(
    ctx: Context, session: Session
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """EX rows (given), SUPPEX rows (injected volume) and EC rows (scheduled, not given)."""
    subjects = ctx.by_patient_id()
    treatment_days = ctx.protocol.treatment.days
    records = session.execute(
        select(DoseRecord).order_by(
            DoseRecord.patient_id, DoseRecord.study_day, DoseRecord.hour, DoseRecord.route
        )
    ).scalars()
    by_patient: dict[int, list[DoseRecord]] = {}
    for d in records:
        if d.patient_id in subjects:
            by_patient.setdefault(d.patient_id, []).append(d)
    ex, suppex, ec = [], [], []
    for pid, doses in by_patient.items():
        s = subjects[pid]
        given = [d for d in doses if d.given]
        first_slot = schedule_hour(given[0].study_day, given[0].hour) if given else 0
        exseq = ecseq = 0
        for d in doses:
            when = dose_time(s, d.study_day, d.hour, first_slot)
            common = {
                "DOSFRM": "INJECTION",
                "ROUTE": ROUTES.get(d.route, d.route.upper()),
                "EPOCH": s.epoch(when, treatment_days) if when else "",
                "STDTC": iso_datetime(when),
                "STDY": s.dy(when),
                "TPT": f"DAY {d.study_day} HOUR {d.hour:02d}",
            }
            if d.given:
                exseq += 1
                ex.append(
                    ctx.row(
                        "EX",
                        s,
                        EXSEQ=exseq,
                        EXTRT=d.drug.upper(),
                        EXDOSE=d.dose,
                        EXDOSU=d.unit,
                        EXDOSFRM=common["DOSFRM"],
                        EXROUTE=common["ROUTE"],
                        EXADJ="RENAL IMPAIRMENT" if d.renal_adjusted else "",
                        EPOCH=common["EPOCH"],
                        EXSTDTC=common["STDTC"],
                        EXENDTC=common["STDTC"],
                        EXSTDY=common["STDY"],
                        EXENDY=common["STDY"],
                        EXTPT=common["TPT"],
                    )
                )
                suppex.append(
                    supp_row(
                        ctx,
                        "EX",
                        s,
                        "EXSEQ",
                        str(exseq),
                        "EXVOLML",
                        "Injected Volume (mL)",
                        f"{d.volume_ml:g}",
                        "Protocol",
                    )
                )
            else:
                ecseq += 1
                ec.append(
                    ctx.row(
                        "EC",
                        s,
                        ECSEQ=ecseq,
                        ECTRT=d.drug.upper(),
                        ECPRESP="Y",
                        ECOCCUR="N",
                        ECREASOC=d.missed_reason,
                        ECDOSFRM=common["DOSFRM"],
                        ECROUTE=common["ROUTE"],
                        EPOCH=common["EPOCH"],
                        ECSTDTC=common["STDTC"],
                        ECSTDY=common["STDY"],
                        ECTPT=common["TPT"],
                    )
                )
    return ex, suppex, ec


def pr(ctx: Context, session: Session) -> list[dict[str, Any]]:
    """Organ support on each daily CRF (pre-specified, PROCCUR Y or N); dated by study day."""
    subjects = ctx.by_patient_id()
    treatment_days = ctx.protocol.treatment.days
    rows = []
    seq: dict[int, int] = {}
    for crf in session.execute(select(DailyCrf).order_by(DailyCrf.patient_id, DailyCrf.study_day)).scalars():
        s = subjects.get(crf.patient_id)
        if s is None:
            continue
        when = s.day_date(crf.study_day)
        for column, name in ORGAN_SUPPORT:
            seq[crf.patient_id] = seq.get(crf.patient_id, 0) + 1
            rows.append(
                ctx.row(
                    "PR",
                    s,
                    PRSEQ=seq[crf.patient_id],
                    PRTRT=name,
                    PRCAT="ORGAN SUPPORT",
                    PRPRESP="Y",
                    PROCCUR="Y" if getattr(crf, column) else "N",
                    VISITNUM=float(crf.study_day),
                    VISIT=f"DAY {crf.study_day}",
                    EPOCH=s.epoch(when, treatment_days),
                    PRSTDTC=iso_date(when),
                    PRSTDY=s.dy(when),
                )
            )
    return rows
