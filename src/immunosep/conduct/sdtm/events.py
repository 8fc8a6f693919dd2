"""Events: AE, with MedDRA's preferred term and primary system organ class, and SUPPAE.

The adverse event form records the onset and the end as study days, so ``AESTDTC``/``AEENDTC`` are dates
(no time). Seriousness (``AESER``), the six criteria (``AESCONG``, ``AESDISAB``, ``AESDTH``, ``AESHOSP``,
``AESLIFE``, ``AESMIE``: "Y"/"N", CDISC NY), the action taken (``AEACN``, CDISC ACN) and the outcome
(``AEOUT``, CDISC OUT) are as collected; an event recorded before they were collected (revision 0005)
leaves them empty. The stored coding keeps PT and primary SOC only, so ``AEHLT``/``AEHLGT`` and the LLT are
left out. Expectedness and the SUSAR flag, which SDTMIG has no variable for, go to SUPPAE.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.clinical.adverse_events import SERIOUSNESS_CRITERIA
from immunosep.conduct.adverse_events import criteria_of
from immunosep.conduct.cdisc_ids import aeseq_order
from immunosep.conduct.sdtm.base import Context, iso_date
from immunosep.conduct.sdtm.subjects import supp_row
from immunosep.store.models import AdverseEvent


def _code(value: str) -> int | None:
    """A MedDRA code as the number SDTM's --PTCD/--SOCCD hold (None when not numeric)."""
    return int(value) if value.strip().isdigit() else None


def ae(ctx: Context, session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    subjects = ctx.by_patient_id()
    treatment_days = ctx.protocol.treatment.days
    rows, supp = [], []
    events = [
        a
        for a in session.execute(
            select(AdverseEvent).order_by(AdverseEvent.patient_id, AdverseEvent.id)
        ).scalars()
        if a.patient_id in subjects
    ]
    # AESEQ by the rule ADaM's ADAE uses too (onset day, then record id), so ADAE AESEQ is SDTM AESEQ
    seqs = aeseq_order(
        [str(a.patient_id) for a in events],
        [float("nan") if a.onset_day is None else float(a.onset_day) for a in events],
        [a.id for a in events],
    )
    for a, n in zip(events, seqs, strict=True):
        s = subjects[a.patient_id]
        when = s.day_date(a.onset_day)
        ended = s.day_date(a.end_day)
        ticked = criteria_of(a)
        criteria = {
            var: "" if ticked is None else ("Y" if name in ticked else "N")
            for name, (var, _) in SERIOUSNESS_CRITERIA.items()
        }
        rows.append(
            ctx.row(
                "AE",
                s,
                AESEQ=n,
                AETERM=a.verbatim or a.pt_name,
                AEDECOD=a.pt_name,
                AEPTCD=_code(a.pt_code),
                AESOC=a.soc_name,
                AESOCCD=_code(a.soc_code),
                AEBODSYS=a.soc_name,
                AEBDSYCD=_code(a.soc_code),
                AESER="Y" if a.serious else "N",
                AEACN=a.action or "",
                AEREL=a.relatedness.upper(),
                AEOUT=a.outcome or "",
                AESCONG=criteria["AESCONG"],
                AESDISAB=criteria["AESDISAB"],
                AESDTH=criteria["AESDTH"],
                AESHOSP=criteria["AESHOSP"],
                AESLIFE=criteria["AESLIFE"],
                AESMIE=criteria["AESMIE"],
                EPOCH=s.epoch(when, treatment_days),
                AESTDTC=iso_date(when),
                AEENDTC=iso_date(ended),
                AESTDY=s.dy(when),
                AEENDY=s.dy(ended),
            )
        )
        for qnam, qlabel, value in (
            ("AEEXPECT", "Expected Adverse Event", a.expected),
            ("AESUSAR", "Suspected Unexpected Serious Adv Reaction", a.susar),
        ):
            supp.append(
                supp_row(
                    ctx,
                    "AE",
                    s,
                    "AESEQ",
                    str(n),
                    qnam,
                    qlabel,
                    "Y" if value else "N",
                    "Collected" if qnam == "AEEXPECT" else "Derived",
                )
            )
    return rows, supp
