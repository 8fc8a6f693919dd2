"""The data dictionary of the analysis datasets: label, unit and derivation of every variable.

Labels of endpoint variables are written from the protocol (windows, thresholds), so a dictionary written
for another protocol file describes that protocol.
:func:`variable_descriptions` describes the internal columns; :func:`adam_dictionary` the written ADaM
variables (name, label, type, length, format, origin, source and the derivation of the internal column it
comes from), the define-style metadata of the submission package.
"""

from __future__ import annotations

import pandas as pd

from immunosep.analysis.adam import AdamDataset, char_length
from immunosep.protocol.schema import Protocol


def variable_descriptions(protocol: Protocol) -> dict[str, tuple[str, str, str]]:
    """``{variable: (label, unit, derivation)}`` for every variable of ADSL, ADSOFA, ADTTE and ADAE."""
    p = protocol.endpoints.primary
    d15 = protocol.endpoints.sofa_d15
    levels = protocol.endpoints.infection_day15.levels
    sidf = protocol.sidf
    m = {
        "usubjid": ("Unique subject identifier (pseudonym)", "", "store: patients.pseudonym"),
        "siteid": ("Study site identifier", "", "store: sites.code"),
        "stratum": ("Immune stratum", "", f"one of {protocol.enrolled_strata}"),
        "arm": ("Randomized arm", "", f"one of {protocol.arm_codes}"),
        "randfl": ("Randomized population flag", "0/1", "1 for every randomized patient"),
        "analysed": (
            "Analysis population flag",
            "0/1",
            "1 = randomized and did not withdraw consent with removal of data",
        ),
        "sensfl": (
            "Sensitivity population flag",
            "0/1",
            "analysed and not discharged alive before the primary window end",
        ),
        "age": ("Age", "years", "at screening"),
        "sex": ("Sex", "", "male/female"),
        "cci": ("Charlson comorbidity index", "points", "baseline"),
        "apache2": ("APACHE II score", "points", "baseline"),
        "infection_type": ("Type of infection", "", "protocol infection code"),
        "weight_kg": ("Body weight", "kg", "baseline"),
        "hours_onset_to_dose": ("Time from sepsis onset to the first dose", "h", ""),
        "mv_baseline": ("Mechanical ventilation on the baseline day", "0/1", "daily CRF, baseline day"),
        "ckrt_baseline": ("Continuous kidney replacement therapy on the baseline day", "0/1", "daily CRF"),
        "pao2_fio2_baseline": ("PaO2/FiO2 on the baseline day", "mmHg", "daily CRF, baseline day"),
        "platelets_baseline": ("Platelets on the baseline day", "10^3/uL", "daily CRF, baseline day"),
        "bilirubin_baseline": ("Bilirubin on the baseline day", "mg/dL", "daily CRF, converted from umol/L"),
        "creatinine_baseline": (
            "Creatinine on the baseline day",
            "mg/dL",
            "daily CRF, converted from umol/L",
        ),
        "sofa_baseline": (
            "SOFA score on the baseline day",
            "points",
            f"day {p.baseline_day}, before the first dose",
        ),
        "mean_sofa_d2_9": (
            f"Mean SOFA of days {p.window_first_day}-{p.window_last_day}",
            "points",
            f"death scores {p.death_score:g} to day {p.death_imputed_until_day}; last value carried forward",
        ),
        "sofa_decrease_d9": ("SOFA decrease, primary window", "points", "sofa_baseline - mean_sofa_d2_9"),
        "primary_endpoint": (p.name, "0/1", f"sofa_decrease_d9 >= {p.min_decrease:g}; missing baseline = 0"),
        "mean_sofa_d2_15": (
            f"Mean SOFA of days {d15.window_first_day}-{d15.window_last_day}",
            "points",
            "same imputation rules as the primary endpoint",
        ),
        "sofa_decrease_d15": ("SOFA decrease, day-15 window", "points", "sofa_baseline - mean_sofa_d2_15"),
        "sofa_d15_endpoint": (d15.name, "0/1", f"sofa_decrease_d15 >= {d15.min_decrease:g}"),
        "sofa_imputed_days": ("Days of the primary window imputed", "days", "death or carry-forward rule"),
        "sofa_locf": ("Any day of the primary window carried forward", "0/1", ""),
        "randdt": ("Date of randomization", "date", "randomization slot allocation time, UTC date"),
        "trtsdt": ("Date of the first dose given", "date", "dose log, UTC date; empty = never dosed"),
        "trtedt": ("Date of the last dose given", "date", "trtsdt + last study day with a dose given - 1"),
        "refdt": ("Date of study day 1", "date", "trtsdt, or randdt for a patient never dosed"),
        "dthdt": ("Date of death", "date", "refdt + death_day - 1"),
        "lstalvdt": (
            "Last date known alive",
            "date",
            "refdt + last vital-status, CRF or draw day - 1, not after death",
        ),
        "saffl": ("Safety population flag", "0/1", "analysed and given at least one dose"),
        "death_day": ("Study day of death", "day", "empty = alive at last contact"),
        "last_contact_day": ("Last study day with any record", "day", "max over vital status, CRF and draws"),
        "icu_discharge_day": ("Study day of ICU discharge alive", "day", ""),
        "discharged_before_d9": (
            f"Discharged alive from the ICU before day {p.window_last_day}",
            "0/1",
            "excluded from the sensitivity analysis",
        ),
        "sidffl": (
            "SIDF population flag",
            "0/1",
            f"analysed, baseline draw and >= {sidf.min_later_draws} serial draws of the stratum's marker",
        ),
        "sidf_reversal": (
            "Reversal of sepsis-induced immune dysfunction",
            "0/1",
            f"MALS: ferritin falls >= {100 * sidf.mals_ferritin_min_fall_fraction:g}% from baseline; "
            f"immunoparalysis: mHLA-DR {'rises by' if sidf.immunoparalysis_hla_dr_criterion == 'rise' else '>'} "
            f"{sidf.immunoparalysis_hla_dr_above:g}; confirmed at the last >= {sidf.min_confirming_draws} "
            "serial draws; empty = sidffl 0",
        ),
        "sidf_reversal_day": ("Study day of SIDF reversal", "day", ""),
        "sidf_last_draw_day": ("Last draw of the stratum's marker", "day", ""),
        "ferritin_baseline": ("Ferritin at baseline", "ng/mL", "central lab"),
        "hla_dr_baseline": ("Monocyte HLA-DR at baseline", "receptors per CD45/CD14 monocyte", "central lab"),
        "infection_day15": ("State of the infection on day 15", "", " < ".join(levels)),
        "infection_day15_n": ("State of the infection on day 15 (ordered code)", "1..", "1 = " + levels[0]),
        "ady": ("Study day", "day", "day 1 = first dose"),
        "sofa_observed": ("SOFA as recorded", "points", "empty = not recorded"),
        "aval": ("Analysis value", "points or days", "ADSOFA: SOFA after imputation; ADTTE: time in days"),
        "imputed": ("Imputed analysis value", "0/1", ""),
        "dtype": ("Derivation type", "", "DEATH = death rule; LOCF = carried forward"),
        "primary_achiever": ("Patient achieved the primary endpoint", "0/1", "from ADSL"),
        "paramcd": ("Parameter code", "", "OS<day> = overall survival; SIDFREV = time to SIDF reversal"),
        "param": ("Parameter", "", ""),
        "cnsr": ("Censoring", "0/1", "1 = censored, 0 = event"),
        "aeseq": ("Adverse event sequence number", "", "within patient"),
        "astdy": ("Onset study day", "day", ""),
        "aesoc": ("MedDRA system organ class", "", ""),
        "aedecod": ("MedDRA preferred term", "", ""),
        "aeser": ("Serious adverse event", "0/1", ""),
        "aerel": ("Relatedness to the study drug", "", "as recorded (four levels)"),
        "arelgr1": ("Relatedness group", "", "related = probably/possibly related"),
        "aeexp": ("Expected adverse event", "0/1", ""),
        "susar": ("Suspected unexpected serious adverse reaction", "0/1", "serious, related, unexpected"),
        "aeacn": ("Action taken with the study treatment", "", "CDISC ACN (C66767)"),
        "aeout": ("Outcome of the adverse event", "", "CDISC OUT (C66768)"),
        "aendy": ("End study day", "day", "empty while the event goes on"),
        "aesdth": ("Serious: results in death", "0/1", "empty where not collected"),
        "aeslife": ("Serious: life-threatening", "0/1", "empty where not collected"),
        "aeshosp": ("Serious: requires or prolongs hospitalization", "0/1", "empty where not collected"),
        "aesdisab": ("Serious: persistent or significant disability", "0/1", "empty where not collected"),
        "aescong": ("Serious: congenital anomaly or birth defect", "0/1", "empty where not collected"),
        "aesmie": ("Serious: other medically important event", "0/1", "empty where not collected"),
    }
    organs = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
    for organ in organs:
        m[f"sofa_{organ}_baseline"] = (f"SOFA {organ} component on the baseline day", "points", "")
    for day in protocol.endpoints.mortality.days:
        m[f"death_{day}d"] = (f"Death by day {day}", "0/1", f"death_day <= {day}")
    return m


def adam_dictionary(dataset: AdamDataset, protocol: Protocol) -> pd.DataFrame:
    """One row per ADaM variable of ``dataset``: ``dataset, variable, label, type, length, format, origin,
    source, derivation``. ``length`` is the longest value in bytes for Char and 8 for Num; ``derivation`` is
    the variable's own method, else the internal column's description."""
    desc = variable_descriptions(protocol)
    rows = []
    for v in dataset.variables:
        length = char_length(dataset.data[v.name]) if v.kind == "Char" else 8
        internal = desc.get(v.source)
        derivation = v.derivation or (internal[2] if internal else "")
        unit = internal[1] if internal and v.fmt == "" else ""
        rows.append(
            (dataset.name, v.name, v.label, v.kind, length, v.fmt, v.origin, v.source, unit, derivation)
        )
    columns = [
        "dataset",
        "variable",
        "label",
        "type",
        "length",
        "format",
        "origin",
        "source",
        "unit",
        "derivation",
    ]
    return pd.DataFrame(rows, columns=columns)
