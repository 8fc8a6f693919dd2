"""The submission view of the analysis datasets: ADaMIG 1.3 names, labels, types, lengths and formats.

The analysis works on readable internal columns (``primary_endpoint``, ``death_28d``) that the plan, the
report and the simulator's calibration use. A submission needs CDISC names instead (8 characters or fewer,
labels of 40 or fewer, numeric SAS dates, Y/N flags, the identifiers of SDTM). This module builds that view
at write time, one table of :class:`Variable` per dataset (internal column -> ADaM variable), so the internal
names never ripple through the code:

* ADSL (subject level): STUDYID, USUBJID (:func:`immunosep.conduct.cdisc_ids.usubjid`, the SDTM identifier),
  SUBJID, SITEID, ARMCD/ARM, TRT01P/TRT01A, RANDFL/ITTFL/FASFL/SAFFL, dates, then the trial's own variables;
* ADSOFA (BDS): one record per patient, study day and origin of the daily SOFA with PARAMCD, AVISIT, AVAL,
  BASE, CHG, ABLFL, DTYPE and ANL01FL;
* ADTTE (BDS time to event): PARAMCD, AVAL, CNSR, STARTDT, ADT, EVNTDESC, CNSDTDSC, SRCDOM/SRCVAR/SRCSEQ;
* ADAE (OCCDS): AESEQ numbered like SDTM AE, ASTDT, AENDT, TRTEMFL, TRTA; the seriousness criteria,
  AEACN and AEOUT carried from SDTM AE.

Dates are SAS dates (days since 1960-01-01) with the DATE9. format. A blinded view (for a blinded
package) drops ARMCD/ARM and writes :data:`~immunosep.conduct.blinding.MASKED_TREATMENT` in every
treatment variable (TRT01P, TRT01A, TRTP, TRTA), as the blinded SDTM export does for DM and EX.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from immunosep.conduct.blinding import MASKED_TREATMENT
from immunosep.conduct.cdisc_ids import studyid, usubjid
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

#: Day 0 of SAS dates.
SAS_EPOCH = pd.Timestamp("1960-01-01")
DATE_FORMAT = "DATE9."
#: ADaM DTYPE of a day scored by the death rule (the scale's worst value from the day of death on). The DTYPE
#: codelist (NCI C81224) is extensible; WOCF would carry the patient's own worst *observed* value forward,
#: which this rule does not do, so the term is sponsor-defined (docs/analysis.md, "ADaM").
DTYPE_DEATH_WORST = "DTHWORST"
DTYPE_LOCF = "LOCF"
#: Internal ADSOFA ``dtype`` -> ADaM DTYPE.
DTYPES = {"DEATH": DTYPE_DEATH_WORST, "LOCF": DTYPE_LOCF}
#: Variables that name the treatment: masked in a blinded view; ARMCD/ARM are dropped.
TREATMENT_VARIABLES = ("TRT01P", "TRT01A", "TRTP", "TRTA")
SEALED_VARIABLES = ("ARMCD", "ARM")
MAX_NAME, MAX_LABEL, MAX_CHAR = 8, 40, 200


@dataclass(frozen=True)
class Variable:
    """One ADaM variable: ``name`` (<= 8), ``label`` (<= 40), ``kind`` ("Char" or "Num"), ``origin``
    ("Predecessor", "Derived" or "Assigned", as in define.xml), ``source`` (the internal column or the
    SDTM/ADSL variable it comes from), ``derivation`` (the method, for the dictionary) and ``fmt`` (SAS
    display format, ``DATE9.`` for dates)."""

    name: str
    label: str
    kind: str
    origin: str
    source: str = ""
    derivation: str = ""
    fmt: str = ""


@dataclass(frozen=True)
class AdamDataset:
    """One dataset of the submission view: its name, label, structure class, key and variables."""

    name: str
    label: str
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]
    data: pd.DataFrame

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


# -- value conversions -----------------------------------------------------------------------------------
def sas_date(dates: pd.Series) -> pd.Series:
    """Days since 1960-01-01 as float (NaN for an empty date): the value of a SAS date."""
    values = pd.to_datetime(dates).astype("datetime64[ns]")
    return ((values.dt.normalize() - SAS_EPOCH) / pd.Timedelta(days=1)).astype("float64")


def yes_no(flags: pd.Series) -> pd.Series:
    """0/1 -> "Y"/"N", empty stays "" (a flag not assessed)."""
    numbers = pd.to_numeric(flags, errors="coerce").astype("float64")
    return pd.Series(np.where(numbers.isna(), "", np.where(numbers == 1, "Y", "N")), index=flags.index)


def number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype("float64")


def text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), "").astype(str)


def usubjids(study: str, pseudonyms: pd.Series) -> pd.Series:
    """USUBJID of every row (:func:`immunosep.conduct.cdisc_ids.usubjid`, computed once per subject)."""
    subjects = text(pseudonyms)
    return subjects.map({s: usubjid(study, s) for s in subjects.unique()})


def _day_date(reference: pd.Series, day: pd.Series) -> pd.Series:
    """SAS date of study ``day`` with day 1 on ``reference`` (ADSL REFDT)."""
    return sas_date(reference) + number(day) - 1.0


def check_variables(variables: tuple[Variable, ...], dataset: str) -> None:
    """Names of at most 8 characters (letters, digits, underscore, not starting with a digit), labels of
    at most 40 printable ASCII characters, known kinds and origins; raises :class:`ImmunoSepError`."""
    seen: set[str] = set()
    for v in variables:
        where = f"{dataset}.{v.name}"
        if not (1 <= len(v.name) <= MAX_NAME and v.name.isascii() and v.name.replace("_", "A").isalnum()):
            raise ImmunoSepError(f"{where}: an ADaM variable name has 1-8 letters, digits or underscores")
        if v.name[0].isdigit() or v.name != v.name.upper():
            raise ImmunoSepError(f"{where}: names are upper case and do not start with a digit")
        if not (1 <= len(v.label) <= MAX_LABEL and v.label.isascii() and v.label.isprintable()):
            raise ImmunoSepError(f"{where}: label {v.label!r} must be 1-40 printable ASCII characters")
        if v.kind not in ("Char", "Num") or v.origin not in ("Predecessor", "Derived", "Assigned"):
            raise ImmunoSepError(f"{where}: kind {v.kind!r} / origin {v.origin!r} unknown")
        if v.name in seen:
            raise ImmunoSepError(f"{where} is defined twice")
        seen.add(v.name)


# -- ADSL -------------------------------------------------------------------------------------------------
def _treatment(frame: pd.DataFrame, protocol: Protocol) -> pd.Series:
    """The arm's label (masked later in a blinded view)."""
    labels = {a.code: a.label for a in protocol.arms}
    return text(frame["arm"]).map(lambda code: labels.get(code, code))


def adsl_variables(protocol: Protocol) -> tuple[tuple[Variable, Callable[[pd.DataFrame], pd.Series]], ...]:
    """ADSL variables with the function that computes each from the internal ADSL (unblinded)."""
    p = protocol.endpoints.primary
    d15 = protocol.endpoints.sofa_d15
    labels = {a.code: a.label for a in protocol.arms}
    ident = "STUDYID-SUBJID (conduct.cdisc_ids.usubjid)"

    def flag(col: str) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: yes_no(f[col])

    def num(col: str) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: number(f[col])

    def date(col: str) -> Callable[[pd.DataFrame], pd.Series]:
        return lambda f: sas_date(f[col])

    def arm_label(f: pd.DataFrame) -> pd.Series:
        return text(f["arm"]).map(lambda code: labels.get(code, code))

    study = studyid(protocol)
    rows: list[tuple[Variable, Callable[[pd.DataFrame], pd.Series]]] = [
        (
            Variable("STUDYID", "Study Identifier", "Char", "Assigned", "protocol trial code", "upper case"),
            lambda f: pd.Series(study, index=f.index),
        ),
        (
            Variable("USUBJID", "Unique Subject Identifier", "Char", "Predecessor", "DM.USUBJID", ident),
            lambda f: usubjids(study, f["usubjid"]),
        ),
        (
            Variable("SUBJID", "Subject Identifier for the Study", "Char", "Predecessor", "usubjid"),
            lambda f: text(f["usubjid"]),
        ),
        (
            Variable("SITEID", "Study Site Identifier", "Char", "Predecessor", "siteid"),
            lambda f: text(f["siteid"]),
        ),
        (
            Variable("STRATUM", "Immune Stratum", "Char", "Predecessor", "stratum"),
            lambda f: text(f["stratum"]),
        ),
        (
            Variable("ARMCD", "Planned Arm Code", "Char", "Predecessor", "arm", "DM.ARMCD: code, upper case"),
            lambda f: text(f["arm"]).str.upper().str[:20],
        ),
        (Variable("ARM", "Description of Planned Arm", "Char", "Predecessor", "arm", "DM.ARM"), arm_label),
        (
            Variable("TRT01P", "Planned Treatment for Period 01", "Char", "Derived", "arm", "arm label"),
            arm_label,
        ),
        (
            Variable(
                "TRT01A",
                "Actual Treatment for Period 01",
                "Char",
                "Derived",
                "arm",
                "= TRT01P: every kit of a patient is prepared for the allocated arm (double dummy)",
            ),
            arm_label,
        ),
        (Variable("RANDFL", "Randomized Population Flag", "Char", "Derived", "randfl"), flag("randfl")),
        (
            Variable("ITTFL", "Intent-To-Treat Population Flag", "Char", "Derived", "analysed"),
            flag("analysed"),
        ),
        (
            Variable("FASFL", "Full Analysis Set Population Flag", "Char", "Derived", "analysed"),
            flag("analysed"),
        ),
        (Variable("SAFFL", "Safety Population Flag", "Char", "Derived", "saffl"), flag("saffl")),
        (Variable("SENSFL", "Sensitivity Population Flag", "Char", "Derived", "sensfl"), flag("sensfl")),
        (Variable("SIDFFL", "SIDF Population Flag", "Char", "Derived", "sidffl"), flag("sidffl")),
        (Variable("AGE", "Age", "Num", "Predecessor", "age", "DM.AGE"), num("age")),
        (
            Variable("AGEU", "Age Units", "Char", "Assigned", "", "YEARS"),
            lambda f: pd.Series(np.where(number(f["age"]).notna(), "YEARS", ""), index=f.index),
        ),
        (
            Variable("SEX", "Sex", "Char", "Predecessor", "sex", "DM.SEX: M/F"),
            lambda f: text(f["sex"]).map({"male": "M", "female": "F"}).fillna(""),
        ),
        (
            Variable("RANDDT", "Date of Randomization", "Num", "Derived", "randdt", fmt=DATE_FORMAT),
            date("randdt"),
        ),
        (
            Variable(
                "TRTSDT", "Date of First Exposure to Treatment", "Num", "Derived", "trtsdt", fmt=DATE_FORMAT
            ),
            date("trtsdt"),
        ),
        (
            Variable(
                "TRTEDT", "Date of Last Exposure to Treatment", "Num", "Derived", "trtedt", fmt=DATE_FORMAT
            ),
            date("trtedt"),
        ),
        (
            Variable("REFDT", "Date of Study Day 1", "Num", "Derived", "refdt", fmt=DATE_FORMAT),
            date("refdt"),
        ),
        (Variable("DTHDT", "Date of Death", "Num", "Derived", "dthdt", fmt=DATE_FORMAT), date("dthdt")),
        (
            Variable(
                "DTHFL",
                "Subject Death Flag",
                "Char",
                "Derived",
                "death_day",
                "Y when a death day is recorded",
            ),
            lambda f: pd.Series(np.where(number(f["death_day"]).notna(), "Y", ""), index=f.index),
        ),
        (
            Variable("LSTALVDT", "Date Last Known Alive", "Num", "Derived", "lstalvdt", fmt=DATE_FORMAT),
            date("lstalvdt"),
        ),
        (Variable("DTHDY", "Study Day of Death", "Num", "Derived", "death_day"), num("death_day")),
        (
            Variable("LSTCTDY", "Last Study Day With Any Record", "Num", "Derived", "last_contact_day"),
            num("last_contact_day"),
        ),
        (
            Variable("ICUDSDY", "Study Day of ICU Discharge Alive", "Num", "Derived", "icu_discharge_day"),
            num("icu_discharge_day"),
        ),
        (
            Variable(
                "EDISCHFL",
                f"Discharged From ICU Before Day {p.window_last_day}",
                "Char",
                "Derived",
                "discharged_before_d9",
            ),
            flag("discharged_before_d9"),
        ),
        (Variable("CCI", "Charlson Comorbidity Index", "Num", "Predecessor", "cci"), num("cci")),
        (Variable("APACHE2", "APACHE II Score", "Num", "Predecessor", "apache2"), num("apache2")),
        (
            Variable("INFTYPE", "Type of Infection", "Char", "Predecessor", "infection_type"),
            lambda f: text(f["infection_type"]),
        ),
        (
            Variable("WEIGHTBL", "Body Weight at Baseline (kg)", "Num", "Predecessor", "weight_kg"),
            num("weight_kg"),
        ),
        (
            Variable("ONSDOSEH", "Sepsis Onset to First Dose (h)", "Num", "Derived", "hours_onset_to_dose"),
            num("hours_onset_to_dose"),
        ),
        (
            Variable("MVBLFL", "Mechanical Ventilation at Baseline", "Char", "Derived", "mv_baseline"),
            flag("mv_baseline"),
        ),
        (
            Variable(
                "CKRTBLFL", "Kidney Replacement Therapy at Baseline", "Char", "Derived", "ckrt_baseline"
            ),
            flag("ckrt_baseline"),
        ),
        (
            Variable("PFRATBL", "PaO2/FiO2 at Baseline (mmHg)", "Num", "Derived", "pao2_fio2_baseline"),
            num("pao2_fio2_baseline"),
        ),
        (
            Variable("PLATBL", "Platelets at Baseline (10^3/uL)", "Num", "Derived", "platelets_baseline"),
            num("platelets_baseline"),
        ),
        (
            Variable("BILIBL", "Bilirubin at Baseline (mg/dL)", "Num", "Derived", "bilirubin_baseline"),
            num("bilirubin_baseline"),
        ),
        (
            Variable("CREATBL", "Creatinine at Baseline (mg/dL)", "Num", "Derived", "creatinine_baseline"),
            num("creatinine_baseline"),
        ),
        (
            Variable("FERRBL", "Ferritin at Baseline (ng/mL)", "Num", "Derived", "ferritin_baseline"),
            num("ferritin_baseline"),
        ),
        (
            Variable("HLADRBL", "Monocyte HLA-DR at Baseline", "Num", "Derived", "hla_dr_baseline"),
            num("hla_dr_baseline"),
        ),
        (
            Variable("SOFABL", "SOFA Score at Baseline", "Num", "Derived", "sofa_baseline"),
            num("sofa_baseline"),
        ),
    ]
    organs = {
        "respiration": ("SOFRSPBL", "Respiration"),
        "coagulation": ("SOFCOGBL", "Coagulation"),
        "liver": ("SOFLIVBL", "Liver"),
        "cardiovascular": ("SOFCVBL", "Cardiovascular"),
        "cns": ("SOFCNSBL", "CNS"),
        "renal": ("SOFRENBL", "Renal"),
    }
    for organ, (name, word) in organs.items():
        col = f"sofa_{organ}_baseline"
        rows.append((Variable(name, f"SOFA {word} Score at Baseline", "Num", "Derived", col), num(col)))
    first, last = p.window_first_day, p.window_last_day
    f15, l15 = d15.window_first_day, d15.window_last_day
    rows += [
        (
            Variable("MSOFAPW", f"Mean SOFA of Days {first}-{last}", "Num", "Derived", "mean_sofa_d2_9"),
            num("mean_sofa_d2_9"),
        ),
        (
            Variable("DSOFAPW", f"SOFA Decrease, Days {first}-{last}", "Num", "Derived", "sofa_decrease_d9"),
            num("sofa_decrease_d9"),
        ),
        (
            Variable("PRIMFL", "Primary Endpoint Achieved Flag", "Char", "Derived", "primary_endpoint"),
            flag("primary_endpoint"),
        ),
        (
            Variable("MSOFAD15", f"Mean SOFA of Days {f15}-{l15}", "Num", "Derived", "mean_sofa_d2_15"),
            num("mean_sofa_d2_15"),
        ),
        (
            Variable("DSOFAD15", f"SOFA Decrease, Days {f15}-{l15}", "Num", "Derived", "sofa_decrease_d15"),
            num("sofa_decrease_d15"),
        ),
        (
            Variable(
                "D15EPFL", f"SOFA Decrease Day {l15} Endpoint Flag", "Char", "Derived", "sofa_d15_endpoint"
            ),
            flag("sofa_d15_endpoint"),
        ),
        (
            Variable("IMPDAYS", "Days of Primary Window Imputed", "Num", "Derived", "sofa_imputed_days"),
            num("sofa_imputed_days"),
        ),
        (
            Variable("LOCFFL", "Primary Window Carried Forward Flag", "Char", "Derived", "sofa_locf"),
            flag("sofa_locf"),
        ),
    ]
    for day in protocol.endpoints.mortality.days:
        col = f"death_{day}d"
        rows.append((Variable(f"DTH{day}FL", f"Death by Day {day} Flag", "Char", "Derived", col), flag(col)))
    rows += [
        (
            Variable("SIDFRVFL", "SIDF Reversal Flag", "Char", "Derived", "sidf_reversal"),
            flag("sidf_reversal"),
        ),
        (
            Variable("SIDFRVDY", "Study Day of SIDF Reversal", "Num", "Derived", "sidf_reversal_day"),
            num("sidf_reversal_day"),
        ),
        (
            Variable(
                "SIDFLDDY", "Last Draw of the Stratum Marker (Day)", "Num", "Derived", "sidf_last_draw_day"
            ),
            num("sidf_last_draw_day"),
        ),
        (
            Variable("INF15", "State of the Infection on Day 15", "Char", "Predecessor", "infection_day15"),
            lambda f: text(f["infection_day15"]),
        ),
        (
            Variable("INF15N", "State of the Infection on Day 15 (N)", "Num", "Derived", "infection_day15_n"),
            num("infection_day15_n"),
        ),
    ]
    return tuple(rows)


def _mask(
    variables: tuple[Variable, ...], data: pd.DataFrame, blinded: bool
) -> tuple[tuple[Variable, ...], pd.DataFrame]:
    """The blinded view: sealed variables dropped, treatment variables masked."""
    if not blinded:
        return variables, data
    kept = tuple(v for v in variables if v.name not in SEALED_VARIABLES)
    out = data[[v.name for v in kept]].copy()
    for name in TREATMENT_VARIABLES:
        if name in out.columns:
            out[name] = MASKED_TREATMENT
    return kept, out


def build_adsl(adsl: pd.DataFrame, protocol: Protocol, *, blinded: bool = False) -> AdamDataset:
    """ADSL as ADaM: one record per randomized subject (including those who withdrew consent with removal
    of data, who keep only identifiers, RANDFL = Y, ITTFL/FASFL/SAFFL = N), sorted by USUBJID."""
    spec = adsl_variables(protocol)
    variables = tuple(v for v, _ in spec)
    check_variables(variables, "ADSL")
    data = pd.DataFrame({v.name: compute(adsl) for v, compute in spec}).sort_values("USUBJID", kind="stable")
    variables, data = _mask(variables, data.reset_index(drop=True), blinded)
    return AdamDataset(
        "ADSL", "Subject-Level Analysis Dataset", "ADSL", ("STUDYID", "USUBJID"), variables, data
    )


# -- ADTTE ------------------------------------------------------------------------------------------------
def build_adtte(
    adtte: pd.DataFrame, adsl: pd.DataFrame, protocol: Protocol, *, blinded: bool = False
) -> AdamDataset:
    """ADTTE as ADaM: STARTDT is REFDT (study day 1, the time origin), ADT = STARTDT + AVAL - 1 (AVAL in
    days, day of the event or censoring counted from day 1 = 1), CNSR 0 = event, 1 = censored."""
    need = ("usubjid", "refdt", "last_contact_day")
    missing = [c for c in need if c not in adsl.columns]
    if missing:
        raise ImmunoSepError(f"the ADaM ADTTE needs ADSL column(s) {missing}")
    base = adtte.merge(adsl[list(need)], on="usubjid", how="left", validate="many_to_one")
    event = number(base["cnsr"]) == 0
    aval = number(base["aval"])
    paramcd = text(base["paramcd"])
    sidf = paramcd == "SIDFREV"
    os_horizon = paramcd.str.extract(r"^OS(\d+)$")[0].astype(float)
    at_horizon = ~sidf & ~event & (aval == os_horizon)
    last_ct = number(base["last_contact_day"])
    at_horizon &= ~(last_ct == aval)
    evntdesc = np.select(
        [sidf & event, sidf, event, at_horizon],
        ["SIDF REVERSAL", "NO SIDF REVERSAL", "DEATH", "ALIVE AT END OF FOLLOW-UP"],
        "ALIVE AT LAST CONTACT",
    )
    cnsdtdsc = np.select(
        [event, sidf, at_horizon],
        ["", "LAST DRAW OF THE STRATUM MARKER", "END OF FOLLOW-UP WINDOW"],
        "LAST CONTACT",
    )
    srcvar = np.select(
        [sidf & event, sidf, event, at_horizon], ["SIDFRVDY", "SIDFLDDY", "DTHDT", ""], "LSTALVDT"
    )
    start = sas_date(base["refdt"])
    study = studyid(protocol)
    data = pd.DataFrame(
        {
            "STUDYID": study,
            "USUBJID": usubjids(study, base["usubjid"]),
            "SUBJID": text(base["usubjid"]),
            "SITEID": text(base["siteid"]),
            "STRATUM": text(base["stratum"]),
            "TRTP": _treatment(base, protocol),
            "TRTA": _treatment(base, protocol),
            "PARAMCD": paramcd,
            "PARAM": text(base["param"]),
            "AVAL": aval,
            "CNSR": number(base["cnsr"]),
            "STARTDT": start,
            "ADT": start + aval - 1.0,
            "EVNTDESC": evntdesc,
            "CNSDTDSC": cnsdtdsc,
            "SRCDOM": np.where(srcvar == "", "", "ADSL"),
            "SRCVAR": srcvar,
            "SRCSEQ": np.nan,
        }
    )
    variables: tuple[Variable, ...] = (
        Variable("STUDYID", "Study Identifier", "Char", "Predecessor", "ADSL.STUDYID"),
        Variable("USUBJID", "Unique Subject Identifier", "Char", "Predecessor", "ADSL.USUBJID"),
        Variable("SUBJID", "Subject Identifier for the Study", "Char", "Predecessor", "ADSL.SUBJID"),
        Variable("SITEID", "Study Site Identifier", "Char", "Predecessor", "ADSL.SITEID"),
        Variable("STRATUM", "Immune Stratum", "Char", "Predecessor", "ADSL.STRATUM"),
        Variable("TRTP", "Planned Treatment", "Char", "Predecessor", "ADSL.TRT01P"),
        Variable("TRTA", "Actual Treatment", "Char", "Predecessor", "ADSL.TRT01A"),
        Variable(
            "PARAMCD", "Parameter Code", "Char", "Assigned", "paramcd", "OS<day>: overall survival; SIDFREV"
        ),
        Variable("PARAM", "Parameter", "Char", "Assigned", "param"),
        Variable("AVAL", "Analysis Value (days)", "Num", "Derived", "aval", "ADT - STARTDT + 1"),
        Variable("CNSR", "Censor", "Num", "Derived", "cnsr", "0 = event, 1 = censored"),
        Variable(
            "STARTDT",
            "Time-to-Event Origin Date for Subject",
            "Num",
            "Derived",
            "ADSL.REFDT",
            fmt=DATE_FORMAT,
        ),
        Variable("ADT", "Analysis Date", "Num", "Derived", "", "STARTDT + AVAL - 1", fmt=DATE_FORMAT),
        Variable("EVNTDESC", "Event or Censoring Description", "Char", "Assigned"),
        Variable("CNSDTDSC", "Censor Date Description", "Char", "Assigned"),
        Variable("SRCDOM", "Source Data", "Char", "Assigned", "", "ADSL"),
        Variable("SRCVAR", "Source Variable", "Char", "Assigned", "", "the ADSL variable that gives ADT"),
        Variable("SRCSEQ", "Source Sequence Number", "Num", "Assigned", "", "empty: the source is ADSL"),
    )
    check_variables(variables, "ADTTE")
    variables, data = _mask(variables, data, blinded)
    return AdamDataset(
        "ADTTE", "Time-to-Event Analysis Dataset", "BDS", ("STUDYID", "USUBJID", "PARAMCD"), variables, data
    )


# -- ADAE -------------------------------------------------------------------------------------------------
def build_adae(
    adae: pd.DataFrame, adsl: pd.DataFrame, protocol: Protocol, *, blinded: bool = False
) -> AdamDataset:
    """ADAE as ADaM (OCCDS): AESEQ is SDTM's, ASTDT = REFDT + ASTDY - 1, TRTEMFL = Y when the subject was
    dosed and the onset is on or after the first dose (ASTDT >= TRTSDT)."""
    need = ("usubjid", "refdt", "trtsdt")
    base = adae.merge(adsl[list(need)], on="usubjid", how="left", validate="many_to_one")
    # an ADAE frame made before the criteria, action, outcome and end day were collected: empty columns
    for column in (
        "aeacn",
        "aeout",
        "aendy",
        "aescong",
        "aesdisab",
        "aesdth",
        "aeshosp",
        "aeslife",
        "aesmie",
    ):
        if column not in base.columns:
            base[column] = pd.NA
    study = studyid(protocol)
    astdt = _day_date(base["refdt"], base["astdy"])
    trtsdt = sas_date(base["trtsdt"])
    data = pd.DataFrame(
        {
            "STUDYID": study,
            "USUBJID": usubjids(study, base["usubjid"]),
            "SUBJID": text(base["usubjid"]),
            "SITEID": text(base["siteid"]),
            "STRATUM": text(base["stratum"]),
            "TRTA": _treatment(base, protocol),
            "AESEQ": number(base["aeseq"]),
            "AEDECOD": text(base["aedecod"]),
            "AEBODSYS": text(base["aesoc"]),
            "AESOC": text(base["aesoc"]),
            "ASTDT": astdt,
            "ASTDY": number(base["astdy"]),
            "AENDT": _day_date(base["refdt"], base["aendy"]),
            "AENDY": number(base["aendy"]),
            "TRTEMFL": np.where(trtsdt.notna() & (astdt >= trtsdt), "Y", ""),
            "AESER": yes_no(base["aeser"]),
            "AESCONG": yes_no(base["aescong"]),
            "AESDISAB": yes_no(base["aesdisab"]),
            "AESDTH": yes_no(base["aesdth"]),
            "AESHOSP": yes_no(base["aeshosp"]),
            "AESLIFE": yes_no(base["aeslife"]),
            "AESMIE": yes_no(base["aesmie"]),
            "AEACN": text(base["aeacn"]),
            "AEREL": text(base["aerel"]).str.upper(),
            "ARELGR1": text(base["arelgr1"]).str.upper(),
            "AEOUT": text(base["aeout"]),
            "AEEXPECT": yes_no(base["aeexp"]),
            "SUSARFL": yes_no(base["susar"]),
        }
    )
    variables: tuple[Variable, ...] = (
        Variable("STUDYID", "Study Identifier", "Char", "Predecessor", "ADSL.STUDYID"),
        Variable("USUBJID", "Unique Subject Identifier", "Char", "Predecessor", "AE.USUBJID"),
        Variable("SUBJID", "Subject Identifier for the Study", "Char", "Predecessor", "ADSL.SUBJID"),
        Variable("SITEID", "Study Site Identifier", "Char", "Predecessor", "ADSL.SITEID"),
        Variable("STRATUM", "Immune Stratum", "Char", "Predecessor", "ADSL.STRATUM"),
        Variable("TRTA", "Actual Treatment", "Char", "Predecessor", "ADSL.TRT01A"),
        Variable(
            "AESEQ", "Sequence Number", "Num", "Predecessor", "AE.AESEQ", "conduct.cdisc_ids.aeseq_order"
        ),
        Variable("AEDECOD", "Dictionary-Derived Term", "Char", "Predecessor", "AE.AEDECOD", "MedDRA PT"),
        Variable(
            "AEBODSYS", "Body System or Organ Class", "Char", "Predecessor", "AE.AEBODSYS", "MedDRA SOC"
        ),
        Variable("AESOC", "Primary System Organ Class", "Char", "Predecessor", "AE.AEBODSYS", "MedDRA SOC"),
        Variable(
            "ASTDT", "Analysis Start Date", "Num", "Derived", "astdy", "ADSL.REFDT + ASTDY - 1", DATE_FORMAT
        ),
        Variable("ASTDY", "Analysis Start Relative Day", "Num", "Derived", "astdy", "AE.AESTDY"),
        Variable(
            "AENDT", "Analysis End Date", "Num", "Derived", "aendy", "ADSL.REFDT + AENDY - 1", DATE_FORMAT
        ),
        Variable("AENDY", "Analysis End Relative Day", "Num", "Derived", "aendy", "AE.AEENDY"),
        Variable(
            "TRTEMFL", "Treatment Emergent Analysis Flag", "Char", "Derived", "", "ASTDT >= ADSL.TRTSDT"
        ),
        Variable("AESER", "Serious Event", "Char", "Predecessor", "AE.AESER"),
        Variable("AESCONG", "Congenital Anomaly or Birth Defect", "Char", "Predecessor", "AE.AESCONG"),
        Variable("AESDISAB", "Persist or Signif Disability/Incapacity", "Char", "Predecessor", "AE.AESDISAB"),
        Variable("AESDTH", "Results in Death", "Char", "Predecessor", "AE.AESDTH"),
        Variable("AESHOSP", "Requires or Prolongs Hospitalization", "Char", "Predecessor", "AE.AESHOSP"),
        Variable("AESLIFE", "Is Life Threatening", "Char", "Predecessor", "AE.AESLIFE"),
        Variable("AESMIE", "Other Medically Important Serious Event", "Char", "Predecessor", "AE.AESMIE"),
        Variable(
            "AEACN", "Action Taken with Study Treatment", "Char", "Predecessor", "AE.AEACN", "CDISC ACN"
        ),
        Variable("AEREL", "Causality", "Char", "Predecessor", "AE.AEREL", "four levels"),
        Variable(
            "ARELGR1", "Pooled Causality Group 1", "Char", "Derived", "arelgr1", "probably/possibly = RELATED"
        ),
        Variable("AEOUT", "Outcome of Adverse Event", "Char", "Predecessor", "AE.AEOUT", "CDISC OUT"),
        Variable("AEEXPECT", "Expected Adverse Event", "Char", "Predecessor", "AE.AEEXPECT"),
        Variable("SUSARFL", "SUSAR Flag", "Char", "Derived", "susar", "serious, related and unexpected"),
    )
    check_variables(variables, "ADAE")
    variables, data = _mask(variables, data, blinded)
    return AdamDataset(
        "ADAE", "Adverse Events Analysis Dataset", "OCCDS", ("STUDYID", "USUBJID", "AESEQ"), variables, data
    )


# -- ADSOFA -----------------------------------------------------------------------------------------------
def build_adsofa(
    adsofa: pd.DataFrame, adsl: pd.DataFrame, protocol: Protocol, *, blinded: bool = False
) -> AdamDataset:
    """ADSOFA as a BDS: PARAMCD "SOFA", one record per subject and study day with an observed or imputed
    value. A day the endpoint imputes although a value was recorded (the day of death) has two records: the
    observed one (DTYPE empty, ANL01FL empty) and the derived one (DTYPE set, ANL01FL = Y). BASE is the
    baseline-day value, CHG = AVAL - BASE after baseline, ABLFL = Y on the baseline record."""
    base_day = protocol.endpoints.primary.baseline_day
    base = adsofa.merge(adsl[["usubjid", "refdt"]], on="usubjid", how="left", validate="many_to_one")
    observed = number(base["sofa_observed"])
    aval = number(base["aval"])
    dtype = text(base["dtype"]).map(lambda d: DTYPES.get(d, d))
    derived = dtype != ""
    main = base.assign(aval=aval, dtype=dtype, _anl="Y", _order=1)
    # the record as observed, kept beside the derived record that replaces it in the analysis
    replaced = derived & observed.notna()
    shadow = base.loc[replaced].assign(aval=observed[replaced], dtype="", _anl="", _order=0)
    rows = pd.concat([main, shadow], ignore_index=True)
    rows = rows.loc[number(rows["aval"]).notna()].sort_values(["usubjid", "ady", "_order"], kind="stable")
    rows = rows.reset_index(drop=True)
    is_base = (number(rows["ady"]) == base_day) & (text(rows["dtype"]) == "")
    baseline = number(rows["aval"]).where(is_base).groupby(rows["usubjid"]).transform("max")
    day = number(rows["ady"])
    study = studyid(protocol)
    data = pd.DataFrame(
        {
            "STUDYID": study,
            "USUBJID": usubjids(study, rows["usubjid"]),
            "SUBJID": text(rows["usubjid"]),
            "SITEID": text(rows["siteid"]),
            "STRATUM": text(rows["stratum"]),
            "TRTP": _treatment(rows, protocol),
            "TRTA": _treatment(rows, protocol),
            "PARAMCD": "SOFA",
            "PARAM": "SOFA Total Score (points)",
            "AVISIT": "DAY " + day.astype(int).astype(str),
            "AVISITN": day,
            "ADT": _day_date(rows["refdt"], day),
            "ADY": day,
            "AVAL": number(rows["aval"]),
            "BASE": baseline,
            "CHG": (number(rows["aval"]) - baseline).where(day > base_day),
            "ABLFL": np.where(is_base, "Y", ""),
            "DTYPE": text(rows["dtype"]),
            "ANL01FL": text(rows["_anl"]),
            "PRIMFL": yes_no(rows["primary_achiever"]),
        }
    )
    dt = protocol.endpoints.primary
    variables: tuple[Variable, ...] = (
        Variable("STUDYID", "Study Identifier", "Char", "Predecessor", "ADSL.STUDYID"),
        Variable("USUBJID", "Unique Subject Identifier", "Char", "Predecessor", "ADSL.USUBJID"),
        Variable("SUBJID", "Subject Identifier for the Study", "Char", "Predecessor", "ADSL.SUBJID"),
        Variable("SITEID", "Study Site Identifier", "Char", "Predecessor", "ADSL.SITEID"),
        Variable("STRATUM", "Immune Stratum", "Char", "Predecessor", "ADSL.STRATUM"),
        Variable("TRTP", "Planned Treatment", "Char", "Predecessor", "ADSL.TRT01P"),
        Variable("TRTA", "Actual Treatment", "Char", "Predecessor", "ADSL.TRT01A"),
        Variable("PARAMCD", "Parameter Code", "Char", "Assigned", "", "SOFA"),
        Variable("PARAM", "Parameter", "Char", "Assigned", "", "SOFA Total Score (points)"),
        Variable("AVISIT", "Analysis Visit", "Char", "Derived", "ady", "DAY <study day>"),
        Variable("AVISITN", "Analysis Visit (N)", "Num", "Derived", "ady"),
        Variable("ADT", "Analysis Date", "Num", "Derived", "ady", "ADSL.REFDT + ADY - 1", DATE_FORMAT),
        Variable("ADY", "Analysis Relative Day", "Num", "Derived", "ady", "day 1 = first dose"),
        Variable(
            "AVAL",
            "Analysis Value",
            "Num",
            "Derived",
            "aval",
            f"daily SOFA; death scores {dt.death_score:g} to day {dt.death_imputed_until_day}; LOCF",
        ),
        Variable(
            "BASE", "Baseline Value", "Num", "Derived", "", f"AVAL of day {base_day}, before the first dose"
        ),
        Variable("CHG", "Change from Baseline", "Num", "Derived", "", "AVAL - BASE after baseline"),
        Variable(
            "ABLFL", "Baseline Record Flag", "Char", "Derived", "", f"Y on the observed day-{base_day} record"
        ),
        Variable(
            "DTYPE",
            "Derivation Type",
            "Char",
            "Derived",
            "dtype",
            f"LOCF = last value carried forward; {DTYPE_DEATH_WORST} = death rule (sponsor term)",
        ),
        Variable("ANL01FL", "Analysis Flag 01", "Char", "Derived", "", "Y = the record the endpoint uses"),
        Variable("PRIMFL", "Primary Endpoint Achieved Flag", "Char", "Predecessor", "ADSL.PRIMFL"),
    )
    check_variables(variables, "ADSOFA")
    variables, data = _mask(variables, data, blinded)
    return AdamDataset(
        "ADSOFA",
        "Daily SOFA Analysis Dataset",
        "BDS",
        ("STUDYID", "USUBJID", "PARAMCD", "AVISITN", "DTYPE"),
        variables,
        data,
    )


def adam_view(
    datasets: Mapping[str, pd.DataFrame], protocol: Protocol, *, blinded: bool = False
) -> dict[str, AdamDataset]:
    """The ADaM view of the internal datasets (name -> frame, ADSL required) in the order ADSL, ADSOFA,
    ADTTE, ADAE; a dataset not in ``datasets`` is left out."""
    if "adsl" not in datasets:
        raise ImmunoSepError("the ADaM view needs ADSL: every other dataset takes its dates from it")
    adsl = datasets["adsl"]
    builders: dict[str, Callable[[pd.DataFrame], AdamDataset]] = {
        "adsl": lambda f: build_adsl(f, protocol, blinded=blinded),
        "adsofa": lambda f: build_adsofa(f, adsl, protocol, blinded=blinded),
        "adtte": lambda f: build_adtte(f, adsl, protocol, blinded=blinded),
        "adae": lambda f: build_adae(f, adsl, protocol, blinded=blinded),
    }
    unknown = set(datasets) - set(builders)
    if unknown:
        raise ImmunoSepError(f"no ADaM view for dataset(s) {sorted(unknown)}; known: {sorted(builders)}")
    return {name: build(datasets[name]) for name, build in builders.items() if name in datasets}


def char_length(values: pd.Series) -> int:
    """The SAS length of a character variable: its longest value in bytes (UTF-8), at least 1."""
    return max([1, *(len(str(s).encode("utf-8")) for s in values.astype(str).unique())])
