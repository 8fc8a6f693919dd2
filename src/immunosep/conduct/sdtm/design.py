"""Trial design domains from the protocol file: TS, TA, TE, TV and TI.

The design is the protocol's, so these rows come from :class:`~immunosep.protocol.schema.Protocol` (and, for
the study start and end dates and the subject count, from the data). A blinded export describes one blinded
treatment element and arm (``BLINDED``) and masks the investigational drugs, so that no file of it names
an arm or a drug (:mod:`immunosep.conduct.blinding`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from immunosep.conduct.blinding import MASKED_TREATMENT
from immunosep.conduct.sdtm.base import FOLLOW_UP, SCREENING, TREATMENT, Context, iso_date
from immunosep.protocol.countries import country_alpha3
from immunosep.protocol.schema import Protocol

BLINDED_ARMCD = "BLINDED"
SDTMIG_VERSION = "3.4"
SDTM_VERSION = "2.0"


def arm_code(code: str) -> str:
    """ARMCD of a protocol arm (its code in upper case, at most 20 characters)."""
    return code.upper()[:20]


def arm_label(protocol: Protocol, code: str) -> str:
    return next((a.label for a in protocol.arms if a.code == code), code)


def follow_up_days(protocol: Protocol) -> int:
    """Last planned study day of follow-up (the latest mortality day, day 90)."""
    return max(protocol.endpoints.mortality.days)


def visit_days(protocol: Protocol) -> list[int]:
    """Planned visits: every day of the treatment period (daily CRF) and every biospecimen day."""
    return sorted(set(range(1, protocol.treatment.days + 1)) | set(protocol.biospecimens.days))


def elements(protocol: Protocol, *, blinded: bool, arm: str = "") -> list[tuple[str, str]]:
    """(ETCD, ELEMENT) of screening, the arm's treatment and follow-up (one blinded treatment if blinded)."""
    if blinded or not arm:
        trt = ("TRT", "Blinded study treatment")
    else:
        i = [a.code for a in protocol.arms].index(arm) + 1
        trt = (f"TRT{i}", arm_label(protocol, arm))
    return [("SCRN", "Screening"), trt, ("FU", "Follow-up")]


def te(ctx: Context) -> list[dict[str, Any]]:
    p = ctx.protocol
    days = p.treatment.days
    trts = (
        [elements(p, blinded=True)[1]]
        if ctx.blinded
        else [elements(p, blinded=False, arm=a.code)[1] for a in p.arms]
    )
    rows = [("SCRN", "Screening", "Screening of a patient with sepsis", "First dose of study treatment", "")]
    for etcd, element in trts:
        rows.append(
            (
                etcd,
                element,
                "First dose of study treatment",
                f"End of study day {days} or earlier end of treatment",
                f"P{days}D",
            )
        )
    rows.append(
        (
            "FU",
            "Follow-up",
            "Day after the last day of treatment",
            f"Study day {follow_up_days(p)} or death",
            "",
        )
    )
    return [
        {
            "STUDYID": ctx.studyid,
            "DOMAIN": "TE",
            "ETCD": e,
            "ELEMENT": el,
            "TESTRL": s,
            "TEENRL": n,
            "TEDUR": d,
        }
        for e, el, s, n, d in rows
    ]


def ta(ctx: Context) -> list[dict[str, Any]]:
    p = ctx.protocol
    arms = (
        [(BLINDED_ARMCD, "Blinded study treatment", "")]
        if ctx.blinded
        else [(arm_code(a.code), a.label, a.code) for a in p.arms]
    )
    rows = []
    for armcd, arm, code in arms:
        for order, ((etcd, element), epoch) in enumerate(
            zip(elements(p, blinded=ctx.blinded, arm=code), (SCREENING, TREATMENT, FOLLOW_UP), strict=True), 1
        ):
            rows.append(
                {
                    "STUDYID": ctx.studyid,
                    "DOMAIN": "TA",
                    "ARMCD": armcd,
                    "ARM": arm,
                    "TAETORD": order,
                    "ETCD": etcd,
                    "ELEMENT": element,
                    "TABRANCH": f"Randomized to {arm}" if order == 1 else "",
                    "TATRANS": "",
                    "EPOCH": epoch,
                }
            )
    return rows


def tv(ctx: Context) -> list[dict[str, Any]]:
    return [
        {
            "STUDYID": ctx.studyid,
            "DOMAIN": "TV",
            "VISITNUM": float(day),
            "VISIT": f"DAY {day}",
            "VISITDY": day,
            "ARMCD": "",
            "TVSTRL": f"Study day {day} (day 1 = day of the first dose)",
        }
        for day in visit_days(ctx.protocol)
    ]


def ti(ctx: Context) -> list[dict[str, Any]]:
    """Inclusion and exclusion criteria, worded from the protocol's numbers."""
    p = ctx.protocol
    e, c = p.eligibility, p.classification
    infections = ", ".join(e.infection_label(t) for t in e.infection_types)
    requiring = ", ".join(e.infection_label(t) for t in e.infections_requiring_mals)
    inclusion = [
        f"Age >= {e.min_age_years} years",
        f"Sepsis (Sepsis-3): SOFA >= {e.min_sofa} on admission or an acute rise >= {e.min_sofa_rise} points",
        f"Infection: {infections}" + (f" ({requiring} only with MALS)" if requiring else ""),
        f"MALS (ferritin > {c.mals_ferritin_above:g} {c.ferritin_unit}) or immunoparalysis (ferritin <= "
        f"{c.mals_ferritin_above:g} and mHLA-DR < {c.immunoparalysis_hla_dr_below:g} per monocyte)",
        "Written informed consent of the patient or a first-degree relative",
        f"First study dose possible < {p.treatment.first_dose_max_hours_after_onset:g} h after sepsis onset",
    ]
    exclusion = [x.label for x in e.exclusions] + [f"Neutrophils < {e.min_neutrophils_per_mm3:g}/mm3"]
    rows = []
    for cat, prefix, texts in (("INCLUSION", "INCL", inclusion), ("EXCLUSION", "EXCL", exclusion)):
        for i, text in enumerate(texts, 1):
            rows.append(
                {
                    "STUDYID": ctx.studyid,
                    "DOMAIN": "TI",
                    "IETESTCD": f"{prefix}{i:02d}",
                    "IETEST": text[:200],
                    "IECAT": cat,
                    "TIVERS": p.trial.version,
                }
            )
    return rows


def ts(ctx: Context, *, locked_at: datetime | None, subjects: int) -> list[dict[str, Any]]:
    """Trial summary parameters (those FDA's Technical Conformance Guide asks for that the protocol gives).

    A parameter the protocol does not state carries a null flavor (``TSVALNF``): ``UNK`` (the trial phase,
    which the protocol file does not record) or ``PINF`` (no upper age limit).
    """
    p = ctx.protocol
    starts = [s.consented_at for s in ctx.subjects if s.consented_at is not None]
    ends = [s.day_date(s.end_day()) for s in ctx.subjects if s.end_day() is not None]
    drugs = sorted({r.drug for r in p.regimen if not r.dummy})
    params: list[tuple[str, str, str, str, str]] = [
        ("TITLE", "Trial Title", p.trial.title, "", ""),
        ("REGID", "Registry Identifier", p.trial.registration, p.trial.registration, "ClinicalTrials.gov"),
        ("SDTIGVER", "SDTM IG Version", SDTMIG_VERSION, "", ""),
        ("SDTMVER", "SDTM Version", SDTM_VERSION, "", ""),
        ("SSTDTC", "Study Start Date", iso_date(min(starts).date()) if starts else "", "", ""),
        ("SENDTC", "Study End Date", iso_date(max(d for d in ends if d is not None)) if ends else "", "", ""),
        ("DCUTDTC", "Data Cutoff Date", iso_date(locked_at.date()) if locked_at else "", "", ""),
        ("DCUTDESC", "Data Cutoff Description", "DATABASE LOCK", "", ""),
        ("STYPE", "Study Type", "INTERVENTIONAL", "", ""),
        ("TTYPE", "Trial Type", "EFFICACY", "", ""),
        ("TPHASE", "Trial Phase Classification", "", "", ""),
        ("INDIC", "Trial Disease/Condition Indication", "Sepsis", "", ""),
        ("TBLIND", "Trial Blinding Schema", "DOUBLE BLIND", "", ""),
        ("TCNTRL", "Control Type", "PLACEBO", "", ""),
        ("RANDOM", "Trial is Randomized", "Y", "", ""),
        ("INTMODEL", "Intervention Model", "PARALLEL", "", ""),
        ("INTTYPE", "Intervention Type", "DRUG", "", ""),
        ("ADDON", "Added on to Existing Treatments", "Y", "", ""),
        ("ADAPT", "Adaptive Design", "N", "", ""),
        ("HLTSUBJI", "Healthy Subject Indicator", "N", "", ""),
        ("PDSTIND", "Pediatric Study Indicator", "N", "", ""),
        ("NARMS", "Planned Number of Arms", str(len(p.arms)), "", ""),
        ("PLANSUB", "Planned Number of Subjects", str(p.sample_size.total_planned), "", ""),
        ("ACTSUB", "Actual Number of Subjects", str(subjects), "", ""),
        ("AGEMIN", "Planned Minimum Age of Subjects", f"P{p.eligibility.min_age_years}Y", "", ""),
        ("AGEMAX", "Planned Maximum Age of Subjects", "", "", ""),
        ("SEXPOP", "Sex of Participants", "BOTH", "", ""),
        ("LENGTH", "Trial Length", f"P{follow_up_days(p)}D", "", ""),
        ("OUTMSPRI", "Primary Outcome Measure", p.endpoints.primary.name, "", ""),
    ]
    params += [
        ("TRT", "Investigational Therapy or Treatment", MASKED_TREATMENT if ctx.blinded else d, "", "")
        for d in (drugs[:1] if ctx.blinded else drugs)
    ]
    params += [
        ("FCNTRY", "Planned Country of Investigational Sites", code, code, "ISO 3166")
        for code in map(country_alpha3, p.trial.countries)
    ]
    null_flavor = {"TPHASE": "UNK", "AGEMAX": "PINF"}
    rows = []
    seq: dict[str, int] = {}
    for code, name, value, vcode, ref in params:
        seq[code] = seq.get(code, 0) + 1
        rows.append(
            {
                "STUDYID": ctx.studyid,
                "DOMAIN": "TS",
                "TSSEQ": seq[code],
                "TSPARMCD": code,
                "TSPARM": name,
                "TSVAL": value,
                "TSVALNF": null_flavor.get(code, "") if not value else "",
                "TSVALCD": vcode,
                "TSVCDREF": ref,
                "TSVCDVER": "",
            }
        )
    return rows
