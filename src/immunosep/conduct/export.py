"""Export of the locked trial as CDISC SDTM-style tables, CSV and Parquet, with a define-style dictionary.

Domains: DM (demographics; ARMCD/ARM only in an unblinded export), DS (disposition: randomized, death,
withdrawal), EX (exposure: every logged injection), LB (ferritin and mHLA-DR), AE (MedDRA-coded), and
**SF**, a custom findings domain for the daily SOFA (one row per patient-day and test: the six components,
the total, and the organ-support flags MECHVENT, VASOPRES, CKRT). SDTM has no standard domain for SOFA;
SF follows the findings class layout (--TESTCD, --TEST, --ORRES, --STRESN, --STRESC, --DY).
Deviations from SDTM, chosen for a self-contained file set: the stratum is a DM column (STRATUM) instead of
SUPPDM, and AE expectedness and the SUSAR flag are AE columns (AEEXPECT, AESUSAR) instead of SUPPAE.

A blinded export (the default, and the only one a blinded role can ask for) has no arm columns, EXTRT is
"BLINDED STUDY TREATMENT", and doses are given as the (arm-independent) injected volume only; which
variables are sealed or masked is :mod:`immunosep.conduct.blinding`'s rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor, trial
from immunosep.conduct.blinding import export_masks, export_variables
from immunosep.conduct.permissions import can, require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.store.models import (
    AdverseEvent,
    BiomarkerDraw,
    DailyCrf,
    DoseRecord,
    Outcome,
    Patient,
    RandomizationSlot,
    Site,
    Withdrawal,
)

ROUTES = {"iv": "INTRAVENOUS", "sc": "SUBCUTANEOUS"}

#: (dataset, variable) -> (label, type); the define-style data dictionary.
VARIABLES: dict[str, dict[str, tuple[str, str]]] = {
    "DM": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "SUBJID": ("Subject Identifier for the Study (pseudonym)", "text"),
        "SITEID": ("Study Site Identifier", "text"),
        "AGE": ("Age", "integer"),
        "AGEU": ("Age Units", "text"),
        "SEX": ("Sex", "text"),
        "RFSTDTC": ("Subject Reference Start Date/Time (first dose)", "datetime"),
        "STRATUM": ("Immune stratum (sponsor-defined; SUPPDM in strict SDTM)", "text"),
        "DTHFL": ("Subject Death Flag", "text"),
        "ARMCD": ("Planned Arm Code (unblinded export only)", "text"),
        "ARM": ("Description of Planned Arm (unblinded export only)", "text"),
    },
    "DS": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "DSSEQ": ("Sequence Number", "integer"),
        "DSTERM": ("Reported Term for the Disposition Event", "text"),
        "DSDECOD": ("Standardized Disposition Term", "text"),
        "DSCAT": ("Category for Disposition Event", "text"),
        "DSSTDY": ("Study Day of Start of Disposition Event", "integer"),
    },
    "EX": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "EXSEQ": ("Sequence Number", "integer"),
        "EXTRT": ("Name of Treatment (blinded unless unblinded export)", "text"),
        "EXDOSE": ("Dose (unblinded export only)", "float"),
        "EXDOSU": ("Dose Units (unblinded export only)", "text"),
        "EXVOLML": ("Injected volume, mL (sponsor-defined)", "float"),
        "EXROUTE": ("Route of Administration", "text"),
        "EXOCCUR": ("Occurrence (Y given, N missed)", "text"),
        "EXREASOC": ("Reason for Occur Value (missed dose)", "text"),
        "EXADJ": ("Reason for Dose Adjustment", "text"),
        "EXDY": ("Study Day of Exposure", "integer"),
        "EXTPT": ("Planned Time Point Name (hour of the day)", "text"),
    },
    "LB": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "LBSEQ": ("Sequence Number", "integer"),
        "LBTESTCD": ("Lab Test Short Name", "text"),
        "LBTEST": ("Lab Test Name", "text"),
        "LBORRES": ("Result in Original Units", "text"),
        "LBORRESU": ("Original Units", "text"),
        "LBSTRESN": ("Numeric Result in Standard Units", "float"),
        "LBDY": ("Study Day of Specimen Collection", "integer"),
    },
    "AE": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "AESEQ": ("Sequence Number", "integer"),
        "AETERM": ("Reported Term for the Adverse Event", "text"),
        "AEDECOD": ("Dictionary-Derived Term (MedDRA PT)", "text"),
        "AEPTCD": ("Preferred Term Code", "text"),
        "AEBODSYS": ("Body System or Organ Class (MedDRA primary SOC)", "text"),
        "AEBDSYCD": ("Body System or Organ Class Code", "text"),
        "AESER": ("Serious Event", "text"),
        "AEREL": ("Causality (four levels)", "text"),
        "AEEXPECT": ("Expected (sponsor-defined; SUPPAE in strict SDTM)", "text"),
        "AESUSAR": ("SUSAR flag (sponsor-defined)", "text"),
        "AESTDY": ("Study Day of Start of Adverse Event", "integer"),
    },
    "SF": {
        "STUDYID": ("Study Identifier", "text"),
        "DOMAIN": ("Domain Abbreviation (custom: SOFA findings)", "text"),
        "USUBJID": ("Unique Subject Identifier", "text"),
        "SFSEQ": ("Sequence Number", "integer"),
        "SFTESTCD": ("SOFA Test Short Name", "text"),
        "SFTEST": ("SOFA Test Name", "text"),
        "SFORRES": ("Result in Original Units", "text"),
        "SFSTRESN": ("Numeric Result (points; 1/0 for flags)", "float"),
        "SFSTRESC": ("Character Result", "text"),
        "SFDY": ("Study Day of Assessment", "integer"),
    },
}

SOFA_TESTS = (
    ("SOFARESP", "SOFA respiration", "sofa_respiration"),
    ("SOFACOAG", "SOFA coagulation", "sofa_coagulation"),
    ("SOFALIVR", "SOFA liver", "sofa_liver"),
    ("SOFACV", "SOFA cardiovascular", "sofa_cardiovascular"),
    ("SOFACNS", "SOFA central nervous system", "sofa_cns"),
    ("SOFARENL", "SOFA renal", "sofa_renal"),
    ("SOFATOT", "SOFA total", "sofa_total"),
    ("MECHVENT", "Mechanical ventilation", "mechanical_ventilation"),
    ("VASOPRES", "Vasopressors", "vasopressors"),
    ("CKRT", "Continuous kidney replacement therapy", "ckrt"),
)


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    blinded: bool
    rows: dict[str, int]
    files: tuple[Path, ...]


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def sdtm_frames(session: Session, *, blinded: bool) -> dict[str, pd.DataFrame]:
    """The SDTM-style datasets as data frames (columns as in :data:`VARIABLES`)."""
    p = protocol_of(session)
    study = trial(session).code.upper()
    patients = session.execute(select(Patient, Site.code).join(Site).order_by(Patient.pseudonym)).all()
    randomized = {pt.id: (pt, site) for pt, site in patients if pt.status in ("randomized", "withdrawn")}
    usub = {pid: f"{study}-{pt.pseudonym}" for pid, (pt, _s) in randomized.items()}
    arm = dict(
        session.execute(
            select(RandomizationSlot.patient_id, RandomizationSlot.arm).where(
                RandomizationSlot.patient_id.is_not(None)
            )
        ).all()
    )
    outcome = {o.patient_id: o for o in session.execute(select(Outcome)).scalars()}
    labels = {a.code: a.label for a in p.arms}

    dm = []
    for pid, (pt, site) in randomized.items():
        row: dict[str, Any] = {
            "STUDYID": study,
            "DOMAIN": "DM",
            "USUBJID": usub[pid],
            "SUBJID": pt.pseudonym,
            "SITEID": site,
            "AGE": pt.age_years,
            "AGEU": "YEARS",
            "SEX": "M" if pt.sex == "male" else "F",
            "RFSTDTC": pt.first_dose_at.isoformat() if pt.first_dose_at else "",
            "STRATUM": pt.stratum,
            "DTHFL": "Y" if pid in outcome and outcome[pid].death_day is not None else "",
            "ARMCD": arm.get(pid, ""),
            "ARM": labels.get(arm.get(pid, ""), ""),
        }
        dm.append(row)

    ds = []
    for pid in randomized:
        events: list[tuple[str, str, str, int | None]] = [
            ("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", 1)
        ]
        o = outcome.get(pid)
        if o is not None and o.death_day is not None:
            events.append(("DEATH", "DEATH", "DISPOSITION EVENT", o.death_day))
        if randomized[pid][0].status == "withdrawn":
            events.append(("WITHDRAWAL OF CONSENT", "WITHDRAWAL BY SUBJECT", "DISPOSITION EVENT", None))
        for i, (term, decod, cat, day) in enumerate(events, 1):
            ds.append(
                {
                    "STUDYID": study,
                    "DOMAIN": "DS",
                    "USUBJID": usub[pid],
                    "DSSEQ": i,
                    "DSTERM": term,
                    "DSDECOD": decod,
                    "DSCAT": cat,
                    "DSSTDY": day,
                }
            )
    erased = session.execute(select(Withdrawal.pseudonym).where(Withdrawal.data_erased.is_(True))).scalars()
    for k, pseudonym in enumerate(erased, 1):
        ds.append(
            {
                "STUDYID": study,
                "DOMAIN": "DS",
                "USUBJID": f"{study}-{pseudonym}",
                "DSSEQ": k,
                "DSTERM": "WITHDRAWAL OF CONSENT WITH REMOVAL OF DATA",
                "DSDECOD": "WITHDRAWAL BY SUBJECT",
                "DSCAT": "DISPOSITION EVENT",
                "DSSTDY": None,
            }
        )

    ex = []
    seq: dict[int, int] = {}
    doses = session.execute(
        select(DoseRecord).order_by(
            DoseRecord.patient_id, DoseRecord.study_day, DoseRecord.hour, DoseRecord.route
        )
    ).scalars()
    for d in doses:
        if d.patient_id not in usub:
            continue
        seq[d.patient_id] = seq.get(d.patient_id, 0) + 1
        ex.append(
            {
                "STUDYID": study,
                "DOMAIN": "EX",
                "USUBJID": usub[d.patient_id],
                "EXSEQ": seq[d.patient_id],
                "EXTRT": d.drug,
                "EXDOSE": d.dose,
                "EXDOSU": d.unit,
                "EXVOLML": d.volume_ml,
                "EXROUTE": ROUTES.get(d.route, d.route.upper()),
                "EXOCCUR": _yn(d.given),
                "EXREASOC": d.missed_reason,
                "EXADJ": "RENAL" if d.renal_adjusted else "",
                "EXDY": d.study_day,
                "EXTPT": f"H{d.hour:02d}",
            }
        )

    lb = []
    c = p.classification
    draws = session.execute(
        select(BiomarkerDraw).order_by(BiomarkerDraw.patient_id, BiomarkerDraw.study_day)
    ).scalars()
    seq = {}
    for b in draws:
        if b.patient_id not in usub:
            continue
        for code, name, value, unit in (
            ("FERRITIN", "Ferritin", b.ferritin_ng_ml, c.ferritin_unit),
            ("HLADR", "Monocyte HLA-DR", b.hla_dr_per_monocyte, c.hla_dr_unit),
        ):
            if value is None:
                continue
            seq[b.patient_id] = seq.get(b.patient_id, 0) + 1
            lb.append(
                {
                    "STUDYID": study,
                    "DOMAIN": "LB",
                    "USUBJID": usub[b.patient_id],
                    "LBSEQ": seq[b.patient_id],
                    "LBTESTCD": code,
                    "LBTEST": name,
                    "LBORRES": f"{value:g}",
                    "LBORRESU": unit,
                    "LBSTRESN": value,
                    "LBDY": b.study_day,
                }
            )

    ae = []
    seq = {}
    for a in session.execute(
        select(AdverseEvent).order_by(AdverseEvent.patient_id, AdverseEvent.id)
    ).scalars():
        if a.patient_id not in usub:
            continue
        seq[a.patient_id] = seq.get(a.patient_id, 0) + 1
        ae.append(
            {
                "STUDYID": study,
                "DOMAIN": "AE",
                "USUBJID": usub[a.patient_id],
                "AESEQ": seq[a.patient_id],
                "AETERM": a.verbatim,
                "AEDECOD": a.pt_name,
                "AEPTCD": a.pt_code,
                "AEBODSYS": a.soc_name,
                "AEBDSYCD": a.soc_code,
                "AESER": _yn(a.serious),
                "AEREL": a.relatedness.upper(),
                "AEEXPECT": _yn(a.expected),
                "AESUSAR": _yn(a.susar),
                "AESTDY": a.onset_day,
            }
        )

    sf = []
    seq = {}
    for crf in session.execute(select(DailyCrf).order_by(DailyCrf.patient_id, DailyCrf.study_day)).scalars():
        if crf.patient_id not in usub:
            continue
        for code, name, attr in SOFA_TESTS:
            value = getattr(crf, attr)
            seq[crf.patient_id] = seq.get(crf.patient_id, 0) + 1
            is_flag = isinstance(value, bool)
            sf.append(
                {
                    "STUDYID": study,
                    "DOMAIN": "SF",
                    "USUBJID": usub[crf.patient_id],
                    "SFSEQ": seq[crf.patient_id],
                    "SFTESTCD": code,
                    "SFTEST": name,
                    "SFORRES": _yn(value) if is_flag else str(value),
                    "SFSTRESN": float(value),
                    "SFSTRESC": _yn(value) if is_flag else str(value),
                    "SFDY": crf.study_day,
                }
            )

    out = {}
    for name, rows in (("DM", dm), ("DS", ds), ("EX", ex), ("LB", lb), ("AE", ae), ("SF", sf)):
        frame = pd.DataFrame(rows, columns=export_variables(name, VARIABLES[name], blinded=blinded))
        for variable, mask in export_masks(name, blinded=blinded).items():
            frame[variable] = mask
        out[name] = frame
    return out


def export_sdtm(
    session: Session, actor: Actor | None, out_dir: str | Path, *, unblinded: bool = False
) -> ExportResult:
    """Write the locked trial to ``out_dir``: ``<domain>.csv``, ``<domain>.parquet``, ``define.csv/json``.

    ``actor=None`` is the command line (database access). A blinded role may export blinded data only.
    """
    if actor is not None:
        require(actor, "export")
        if unblinded and not can(actor, "export_unblinded"):
            raise AccessDenied(f"the {actor.role} role may export blinded data only")
    if trial(session).locked_at is None:
        raise ImmunoSepError("the trial is not locked; lock it (`immunosep lock --db URL`) before export")
    frames = sdtm_frames(session, blinded=not unblinded)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    define_rows = []
    for name, df in frames.items():
        csv_path, pq_path = out / f"{name.lower()}.csv", out / f"{name.lower()}.parquet"
        df.to_csv(csv_path, index=False)
        df.to_parquet(pq_path, index=False)
        files += [csv_path, pq_path]
        for var in df.columns:
            label, kind = VARIABLES[name][var]
            define_rows.append({"dataset": name, "variable": var, "label": label, "type": kind})
    define_csv, define_json = out / "define.csv", out / "define.json"
    pd.DataFrame(define_rows).to_csv(define_csv, index=False)
    define_json.write_text(
        json.dumps(
            {
                "study": trial(session).code,
                "blinded": not unblinded,
                "sofa_domain": "SF",
                "variables": define_rows,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    files += [define_csv, define_json]
    return ExportResult(out, not unblinded, {k: len(v) for k, v in frames.items()}, tuple(files))
