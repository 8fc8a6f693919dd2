"""Special-purpose domains: DM (and SUPPDM), DS, SE and SV.

A subject erased at withdrawal (consent withdrawn with removal of data) keeps only what the trial keeps:
pseudonym, site, the used randomization slot (arm, time of allocation) and the time of the withdrawal. The
export treats such a subject the same way in every domain: one DM row with those identifiers (SEX "U",
no age, no reference dates), DS rows for the randomization and the withdrawal, and no row anywhere else.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from immunosep.conduct.sdtm.base import (
    FOLLOW_UP,
    SCREENING,
    TREATMENT,
    Context,
    Subject,
    iso_date,
    iso_datetime,
)
from immunosep.conduct.sdtm.design import arm_code, arm_label, elements, follow_up_days, visit_days

SEX = {"male": "M", "female": "F"}


def dm(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """DM rows and SUPPDM rows (immune stratum, infection type)."""
    rows, supp = [], []
    for s in ctx.subjects:
        pt = s.patient
        dosed = s.first_dose_at is not None
        end_day = s.end_day()
        end_date = s.day_date(end_day)
        armcd = arm_code(s.arm) if s.arm else ""
        rows.append(
            ctx.row(
                "DM",
                s,
                SUBJID=s.subjid,
                RFSTDTC=iso_datetime(s.reference),
                RFENDTC=iso_date(end_date),
                RFXSTDTC=iso_datetime(s.first_dose_at),
                RFXENDTC=iso_datetime(s.last_dose_at),
                RFICDTC=iso_datetime(s.consented_at),
                # a withdrawal ends participation; otherwise the death or the last day known alive does
                RFPENDTC=iso_datetime(s.withdrawn_at) if s.withdrawn_at else iso_date(end_date),
                DTHDTC=iso_date(s.day_date(s.death_day)),
                DTHFL="Y" if s.death_day is not None else "",
                SITEID=s.siteid,
                AGE=pt.age_years if pt is not None else None,
                AGEU="YEARS" if pt is not None else "",
                SEX=SEX.get(pt.sex, "U") if pt is not None else "U",
                RACE="",
                ARMCD=armcd,
                ARM=arm_label(ctx.protocol, s.arm) if s.arm else "",
                ACTARMCD=armcd if dosed else "",
                ACTARM=arm_label(ctx.protocol, s.arm) if dosed and s.arm else "",
                ARMNRS="ASSIGNED, NOT TREATED" if pt is not None and not dosed else "",
                COUNTRY=s.country,  # the site's, set with the site (admin)
            )
        )
        if pt is None:
            continue
        for qnam, qlabel, qval, qorig in (
            # the stratum is the classification rule applied to the baseline ferritin and mHLA-DR
            ("STRATUM", "Immune Stratum", _stratum_label(ctx, pt.stratum), "Derived"),
            (
                "INFTYPE",
                "Type of Infection",
                ctx.protocol.eligibility.infection_label(pt.infection_type),
                "Collected",
            ),
        ):
            if qval:
                supp.append(supp_row(ctx, "DM", s, "", "", qnam, qlabel, qval, qorig))
    return rows, supp


def _stratum_label(ctx: Context, code: str | None) -> str:
    return next((x.label for x in ctx.protocol.strata if x.code == code), code or "")


def supp_row(
    ctx: Context,
    rdomain: str,
    s: Subject,
    idvar: str,
    idvarval: str,
    qnam: str,
    qlabel: str,
    qval: str,
    qorig: str,
) -> dict[str, Any]:
    return {
        "STUDYID": ctx.studyid,
        "RDOMAIN": rdomain,
        "USUBJID": s.usubjid,
        "IDVAR": idvar,
        "IDVARVAL": idvarval,
        "QNAM": qnam,
        "QLABEL": qlabel,
        "QVAL": qval,
        "QORIG": qorig,
        "QEVAL": "",
    }


def ds(ctx: Context) -> list[dict[str, Any]]:
    """Informed consent and randomization (protocol milestones), then death, withdrawal or completion."""
    rows = []
    last_day = follow_up_days(ctx.protocol)
    treatment_days = ctx.protocol.treatment.days
    for s in ctx.subjects:
        events: list[tuple[str, str, str, Any]] = []
        if s.consented_at is not None:
            events.append(
                (
                    "INFORMED CONSENT OBTAINED",
                    "INFORMED CONSENT OBTAINED",
                    "PROTOCOL MILESTONE",
                    s.consented_at,
                )
            )
        if s.randomized_at is not None:
            events.append(("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", s.randomized_at))
        if s.withdrawn_at is not None:
            term = "WITHDRAWAL OF CONSENT" + (" WITH REMOVAL OF DATA" if s.erased else "")
            events.append((term, "WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT", s.withdrawn_at))
        elif s.death_day is not None:
            events.append(("DEATH", "DEATH", "DISPOSITION EVENT", s.day_date(s.death_day)))
        elif s.last_alive_day is not None:
            done = s.last_alive_day >= last_day
            events.append(
                (
                    "COMPLETED" if done else "LOST TO FOLLOW-UP",
                    "COMPLETED" if done else "LOST TO FOLLOW-UP",
                    "DISPOSITION EVENT",
                    s.day_date(s.last_alive_day),
                )
            )
        for i, (term, decod, cat, when) in enumerate(events, 1):
            text = iso_datetime(when) if hasattr(when, "hour") else iso_date(when)
            epoch = SCREENING if cat == "PROTOCOL MILESTONE" else s.epoch(when, treatment_days)
            rows.append(
                ctx.row(
                    "DS",
                    s,
                    DSSEQ=i,
                    DSTERM=term,
                    DSDECOD=decod,
                    DSCAT=cat,
                    EPOCH=epoch if s.reference is not None or cat == "PROTOCOL MILESTONE" else "",
                    DSSTDTC=text,
                    DSSTDY=s.dy(when),
                )
            )
    return rows


def se(ctx: Context) -> list[dict[str, Any]]:
    """Screening from screening to the reference start, treatment to the last dose day, then follow-up."""
    rows = []
    for s in ctx.subjects:
        if s.erased or s.reference is None:
            continue
        trt = elements(ctx.protocol, blinded=ctx.blinded, arm=s.arm)
        spans: list[tuple[tuple[str, str], str, date | datetime | None, date | datetime | None]] = []
        if s.screened_at is not None:
            spans.append((trt[0], SCREENING, s.screened_at, s.reference))
        if s.first_dose_at is not None and s.last_dose_at is not None:
            spans.append((trt[1], TREATMENT, s.first_dose_at, s.last_dose_at))
            final = s.day_date(s.end_day())
            if final is not None and final > s.last_dose_at.date():
                spans.append((trt[2], FOLLOW_UP, s.last_dose_at, final))
        for i, ((etcd, element), epoch, start, end) in enumerate(spans, 1):
            rows.append(
                ctx.row(
                    "SE",
                    s,
                    SESEQ=i,
                    ETCD=etcd,
                    ELEMENT=element,
                    TAETORD=[SCREENING, TREATMENT, FOLLOW_UP].index(epoch) + 1,
                    EPOCH=epoch,
                    SESTDTC=_dtc(start),
                    SEENDTC=_dtc(end),
                    SESTDY=s.dy(start),
                    SEENDY=s.dy(end),
                )
            )
    return rows


def _dtc(value: Any) -> str:
    return iso_datetime(value) if hasattr(value, "hour") else iso_date(value)


def sv(ctx: Context, visits: dict[str, set[int]]) -> list[dict[str, Any]]:
    """One row per subject and study day that has a visit-based record (LB, RS, PR)."""
    planned = set(visit_days(ctx.protocol))
    rows = []
    for s in ctx.subjects:
        for day in sorted(visits.get(s.usubjid, ())):
            when = s.day_date(day)
            rows.append(
                ctx.row(
                    "SV",
                    s,
                    VISITNUM=float(day),
                    VISIT=f"DAY {day}",
                    SVPRESP="Y" if day in planned else "",
                    SVOCCUR="Y" if day in planned else "",
                    SVSTDTC=iso_date(when),
                    SVENDTC=iso_date(when),
                    SVSTDY=s.dy(when),
                    SVENDY=s.dy(when),
                )
            )
    return rows
