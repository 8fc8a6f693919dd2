"""ADSL: one row per randomized patient, with population flags, baseline covariates and endpoint values.

Built in the shape of pharmaverse admiral: :func:`derive_adsl` starts from the randomized patients and
applies one ``derive_var_*`` / ``derive_vars_*`` function per variable (or group of variables computed
together). Each takes the dataset first, checks its inputs at the top, never changes existing variables or
rows of its input, and returns a new frame with the variables added. Every number (days, thresholds) comes
from the protocol.

Patients who withdrew consent with removal of data keep one row with ``usubjid``, ``siteid``, ``arm``,
the population flags ``randfl = 1``, ``analysed = 0``, ``sensfl = 0`` and every other variable empty: the
analysis population (docs/requirements.md, "Statistical analysis plan") is ``analysed == 1``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunosep.analysis.adsofa import derive_sofa_endpoints, sofa_days
from immunosep.analysis.raw import RawTrial, check_raw_trial
from immunosep.clinical.sidf import sidf_reversal_arrays
from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

BINARY = pd.Int8Dtype()  # pandas nullable 0/1: an empty cell stays empty in CSV and XPT


def _require(dataset: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in dataset.columns]
    if missing:
        raise ImmunoSepError(f"{what} needs column(s) {missing} in its input")


def _new_only(dataset: pd.DataFrame, new: tuple[str, ...], what: str) -> None:
    clash = [c for c in new if c in dataset.columns]
    if clash:
        raise ImmunoSepError(f"{what} would overwrite existing variable(s) {clash}")


def _merge(dataset: pd.DataFrame, values: pd.DataFrame) -> pd.DataFrame:
    """Left-join ``values`` (indexed by usubjid) onto ``dataset`` keeping its row order.

    With one row per patient in ``values`` (every derivation here) its rows are looked up and set beside the
    dataset's columns, which are not copied (a join copied all of them at each of ADSL's ten steps); the
    result is what the join gives, missing patients filled as it fills them.
    """
    if not values.index.is_unique:  # a join repeats the dataset's row for each match
        return dataset.join(values, on="usubjid").reset_index(drop=True)
    index = dataset.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        dataset = dataset.reset_index(drop=True)
    aligned = values.reindex(dataset["usubjid"].to_numpy())
    aligned.index = dataset.index
    # copy=False: pandas 2 (pyproject pins < 3) copies every column without it; pandas-stubs follow pandas 3,
    # where concat copies nothing (copy-on-write) and the keyword is deprecated.
    return pd.concat([dataset, aligned], axis=1, copy=False)  # type: ignore[call-overload]


def mortality_variable(day: int) -> str:
    """ADSL variable name of death by study day ``day`` (``death_28d``)."""
    return f"death_{day}d"


# -- the start: randomized patients --------------------------------------------------------------------
def derive_adsl_base(raw: RawTrial) -> pd.DataFrame:
    """Randomized patients (kept and withdrawn) with identifiers, population flags and baseline covariates."""
    p = raw.patients
    kept = pd.DataFrame(
        {
            "usubjid": p["usubjid"].astype(str),
            "siteid": p["siteid"].astype(str),
            "stratum": p["stratum"].astype(str),
            "arm": p["arm"].astype(str),
            "randfl": 1,
            "analysed": 1,
            "age": pd.to_numeric(p["age"], errors="coerce"),
            "sex": p["sex"].astype(str),
            "cci": pd.to_numeric(p["cci"], errors="coerce"),
            "apache2": pd.to_numeric(p["apache2"], errors="coerce"),
            "infection_type": p["infection_type"].astype(str),
        }
    )
    for optional in ("weight_kg", "hours_onset_to_dose"):
        kept[optional] = pd.to_numeric(p[optional], errors="coerce") if optional in p.columns else np.nan
    w = raw.withdrawals
    withdrawn = pd.DataFrame(
        {
            "usubjid": w["usubjid"].astype(str),
            "siteid": w["siteid"].astype(str),
            "stratum": "",
            "arm": w["arm"].astype(str),
            "randfl": 1,
            "analysed": 0,
            "sex": "",
            "infection_type": "",
        }
    )
    adsl = pd.concat([kept, withdrawn], ignore_index=True) if len(withdrawn) else kept
    if adsl["usubjid"].duplicated().any():
        raise ImmunoSepError("a withdrawn patient's pseudonym also appears among the kept patients")
    for flag in ("randfl", "analysed"):
        adsl[flag] = adsl[flag].astype(BINARY)
    return adsl.sort_values("usubjid").reset_index(drop=True)


# -- SOFA endpoints -------------------------------------------------------------------------------------
def derive_vars_sofa_endpoints(
    dataset: pd.DataFrame, daily_sofa: pd.DataFrame, vital_status: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add the SOFA endpoints of the protocol for analysed patients (the shared kernel's rules).

    ``sofa_baseline`` (points on the baseline day), ``mean_sofa_d2_9`` / ``sofa_decrease_d9`` /
    ``primary_endpoint`` (primary window), ``mean_sofa_d2_15`` / ``sofa_decrease_d15`` /
    ``sofa_d15_endpoint`` (day-15 window), ``sofa_imputed_days`` (days of the primary window imputed by the
    death or carry-forward rule) and ``sofa_locf`` (1 if any day of the primary window was carried forward).
    """
    new = (
        "sofa_baseline",
        "mean_sofa_d2_9",
        "sofa_decrease_d9",
        "primary_endpoint",
        "mean_sofa_d2_15",
        "sofa_decrease_d15",
        "sofa_d15_endpoint",
        "sofa_imputed_days",
        "sofa_locf",
    )
    _require(dataset, ("usubjid", "analysed"), "derive_vars_sofa_endpoints")
    _new_only(dataset, new, "derive_vars_sofa_endpoints")
    ids = dataset.loc[dataset["analysed"] == 1, "usubjid"]
    n_days = sofa_days(protocol)
    primary = protocol.endpoints.primary
    d9, d15 = derive_sofa_endpoints(
        ids, daily_sofa, vital_status, (primary, protocol.endpoints.sofa_d15), n_days
    )
    window = slice(primary.window_first_day - 1, primary.window_last_day)
    values = pd.DataFrame(
        {
            "sofa_baseline": d9.baseline,
            "mean_sofa_d2_9": d9.window_mean,
            "sofa_decrease_d9": d9.decrease,
            "primary_endpoint": d9.achieved.astype(int),
            "mean_sofa_d2_15": d15.window_mean,
            "sofa_decrease_d15": d15.decrease,
            "sofa_d15_endpoint": d15.achieved.astype(int),
            "sofa_imputed_days": d9.imputed[:, window].sum(axis=1),
            "sofa_locf": d9.carried_forward[:, window].any(axis=1).astype(int),
        },
        index=pd.Index(ids, name="usubjid"),
    )
    out = _merge(dataset, values)
    for col in ("primary_endpoint", "sofa_d15_endpoint", "sofa_locf", "sofa_imputed_days"):
        out[col] = out[col].astype(BINARY if col != "sofa_imputed_days" else "Int16")
    return out


def derive_vars_baseline_support(
    dataset: pd.DataFrame, daily_sofa: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add organ support and SOFA components on the baseline day (``mv_baseline``, ``ckrt_baseline`` 0/1,
    ``sofa_<organ>_baseline`` points) when the daily frame carries them; absent inputs give empty values."""
    _require(dataset, ("usubjid",), "derive_vars_baseline_support")
    base = daily_sofa.loc[daily_sofa["day"] == protocol.endpoints.primary.baseline_day].set_index("usubjid")
    mapping = {"mechanical_ventilation": "mv_baseline", "ckrt": "ckrt_baseline"}
    organs = ("respiration", "coagulation", "liver", "cardiovascular", "cns", "renal")
    mapping |= {f"sofa_{o}": f"sofa_{o}_baseline" for o in organs}
    _new_only(dataset, tuple(mapping.values()), "derive_vars_baseline_support")
    values = pd.DataFrame(index=pd.Index(base.index, name="usubjid"))
    for src, dst in mapping.items():
        values[dst] = (
            pd.to_numeric(base[src], errors="coerce").astype(float) if src in base.columns else np.nan
        )
    out = _merge(dataset, values)
    out.loc[out["analysed"] != 1, list(mapping.values())] = np.nan
    for col in ("mv_baseline", "ckrt_baseline"):
        out[col] = out[col].astype("Float64").round().astype(BINARY)
    return out


#: Laboratory values of Table 1 read from the daily CRF on the baseline day: raw column -> ADSL variable.
BASELINE_LABS = {
    "pao2_fio2_mmhg": "pao2_fio2_baseline",
    "platelets_1e3_ul": "platelets_baseline",
    "bilirubin_mg_dl": "bilirubin_baseline",
    "creatinine_mg_dl": "creatinine_baseline",
}


def derive_vars_baseline_labs(
    dataset: pd.DataFrame, daily_sofa: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add the laboratory values of the baseline day (the SOFA inputs of day 1, before the first dose):
    ``pao2_fio2_baseline`` (mm Hg), ``platelets_baseline`` (10^3/uL), ``bilirubin_baseline`` and
    ``creatinine_baseline`` (mg/dL). A value absent from the daily frame, or not measured, stays empty."""
    _require(dataset, ("usubjid", "analysed"), "derive_vars_baseline_labs")
    _new_only(dataset, tuple(BASELINE_LABS.values()), "derive_vars_baseline_labs")
    base = daily_sofa.loc[daily_sofa["day"] == protocol.endpoints.primary.baseline_day].set_index("usubjid")
    values = pd.DataFrame(index=pd.Index(base.index, name="usubjid"))
    for src, dst in BASELINE_LABS.items():
        values[dst] = (
            pd.to_numeric(base[src], errors="coerce").astype(float) if src in base.columns else np.nan
        )
    out = _merge(dataset, values)
    out.loc[out["analysed"] != 1, list(BASELINE_LABS.values())] = np.nan
    return out


# -- mortality ------------------------------------------------------------------------------------------
def derive_vars_mortality(
    dataset: pd.DataFrame, vital_status: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add ``death_day`` and one 0/1 variable per protocol mortality day (``death_28d``, ``death_90d``).

    A patient who died on or before day D is 1; a patient alive at last contact is 0 (docs/requirements.md
    "Patient pathway": vital status is followed to day 90; a patient lost to follow-up counts as alive, as in
    the published analysis).
    """
    days = protocol.endpoints.mortality.days
    new = ("death_day", *(mortality_variable(d) for d in days))
    _require(dataset, ("usubjid", "analysed"), "derive_vars_mortality")
    _new_only(dataset, new, "derive_vars_mortality")
    death = pd.to_numeric(vital_status.set_index("usubjid")["death_day"], errors="coerce")
    values = pd.DataFrame({"death_day": death})
    for d in days:
        values[mortality_variable(d)] = (death <= d).astype(int)
    out = _merge(dataset, values)
    analysed = out["analysed"] == 1
    for d in days:
        col = mortality_variable(d)
        out[col] = out[col].where(~analysed, out[col].fillna(0)).where(analysed).astype(BINARY)
    return out


def last_record_days(raw: RawTrial) -> tuple[pd.Series, pd.Series]:
    """Each patient's last CRF (daily SOFA) day and last biospecimen draw day, by usubjid."""
    return (
        pd.to_numeric(raw.daily_sofa.groupby("usubjid")["day"].max(), errors="coerce"),
        pd.to_numeric(raw.biomarkers.groupby("usubjid")["day"].max(), errors="coerce"),
    )


def derive_vars_follow_up(
    dataset: pd.DataFrame, raw: RawTrial, *, record_days: tuple[pd.Series, pd.Series] | None = None
) -> pd.DataFrame:
    """Add ``last_contact_day`` (last day known alive or dead, over every record) and ``icu_discharge_day``.
    ``record_days``: :func:`last_record_days` of ``raw`` when the caller has it already."""
    _require(dataset, ("usubjid",), "derive_vars_follow_up")
    _new_only(dataset, ("last_contact_day", "icu_discharge_day"), "derive_vars_follow_up")
    vs = raw.vital_status.set_index("usubjid")
    sofa_last, draw_last = record_days if record_days is not None else last_record_days(raw)
    days = [
        pd.to_numeric(vs["death_day"], errors="coerce"),
        pd.to_numeric(vs["last_known_alive_day"], errors="coerce"),
        sofa_last,
        draw_last,
    ]
    last = pd.concat(days, axis=1).max(axis=1)
    values = pd.DataFrame(
        {
            "last_contact_day": last,
            "icu_discharge_day": pd.to_numeric(vs["icu_discharge_day"], errors="coerce"),
        }
    )
    values.index.name = "usubjid"
    return _merge(dataset, values)


def derive_var_sensitivity_flag(dataset: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Add ``discharged_before_d9`` (0/1: alive out of the ICU before the last day of the primary window) and
    ``sensfl`` (1 = in the sensitivity population: analysed and not discharged before that day)."""
    _require(dataset, ("analysed", "icu_discharge_day", "death_day"), "derive_var_sensitivity_flag")
    _new_only(dataset, ("discharged_before_d9", "sensfl"), "derive_var_sensitivity_flag")
    last = protocol.endpoints.primary.window_last_day
    out = dataset.copy()
    analysed = out["analysed"] == 1
    discharged = (out["icu_discharge_day"] < last) & ~(out["death_day"] <= out["icu_discharge_day"])
    out["discharged_before_d9"] = discharged.fillna(False).astype(int).where(analysed).astype(BINARY)
    out["sensfl"] = (analysed & ~discharged.fillna(False)).astype(int).astype(BINARY)
    return out


# -- dates and the safety population ---------------------------------------------------------------
def study_day_date(reference: pd.Series, day: pd.Series) -> pd.Series:
    """The calendar date of study ``day`` when day 1 is the date ``reference`` (no day 0): ``reference +
    (day - 1)`` days; empty when either is empty."""
    # Days times one day, not ``pd.to_timedelta(..., unit="D")``: for float input pandas rounds each day's
    # fraction in a buffer it leaves unset where the day is missing, and rounding what memory held there
    # raised numpy's "overflow encountered in multiply" now and then (harmless: the result was NaT).
    offset = (pd.to_numeric(day, errors="coerce") - 1) * pd.Timedelta(days=1)
    return (pd.to_datetime(reference).dt.normalize() + offset).astype("datetime64[ns]")


def derive_vars_treatment_dates(
    dataset: pd.DataFrame, raw: RawTrial, *, record_days: tuple[pd.Series, pd.Series] | None = None
) -> pd.DataFrame:
    """Add the ADaM dates and the safety flag: ``randdt`` (date of randomization), ``trtsdt`` / ``trtedt``
    (dates of the first and the last dose given), ``refdt`` (the date of study day 1: ``trtsdt``, or
    ``randdt`` for a patient never dosed, whose study days the CRF still counts from the randomization day),
    ``dthdt`` (date of death), ``lstalvdt`` (last date known alive: the last vital-status, CRF or draw day,
    not after death) and ``saffl`` (0/1: analysed and given at least one dose; never-dosed patients are out
    of the safety population). Dates are UTC calendar dates (``datetime64``, time of day dropped).

    Raw frames without dosing dates (hand-built or simulated calibration frames) give empty dates and count
    every analysed patient as dosed, since they carry no record of a patient who was not. ``record_days``:
    :func:`last_record_days` of ``raw`` when the caller has it already.
    """
    new = ("randdt", "trtsdt", "trtedt", "refdt", "dthdt", "lstalvdt", "saffl")
    _require(dataset, ("usubjid", "analysed", "death_day"), "derive_vars_treatment_dates")
    _new_only(dataset, new, "derive_vars_treatment_dates")
    p, w = raw.patients.set_index("usubjid"), raw.withdrawals.set_index("usubjid")

    def column(frame: pd.DataFrame, name: str) -> pd.Series:
        if name not in frame.columns:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        return pd.to_datetime(frame[name]).astype("datetime64[ns]")

    randomized = pd.concat([column(p, "randomized_at"), column(w, "randomized_at")]).dt.normalize()
    first = column(p, "first_dose_at").dt.normalize()
    last_dose_day = pd.to_numeric(p.get("last_dose_day", pd.Series(np.nan, index=p.index)), errors="coerce")
    vs = raw.vital_status.set_index("usubjid")
    sofa_last, draw_last = record_days if record_days is not None else last_record_days(raw)
    alive_days = [pd.to_numeric(vs["last_known_alive_day"], errors="coerce"), sofa_last, draw_last]
    last_alive = pd.concat(alive_days, axis=1).max(axis=1).reindex(p.index)
    death = pd.to_numeric(vs["death_day"], errors="coerce").reindex(p.index)
    last_alive = last_alive.where(~(last_alive > death), death)
    reference = first.where(first.notna(), randomized.reindex(p.index))
    values = pd.DataFrame(
        {
            "trtsdt": first,
            "trtedt": study_day_date(first, last_dose_day.reindex(p.index)),
            "refdt": reference,
            "dthdt": study_day_date(reference, death),
            "lstalvdt": study_day_date(reference, last_alive),
        },
        index=pd.Index(p.index, name="usubjid"),
    )
    values.insert(0, "randdt", randomized.reindex(values.index))
    out = _merge(dataset, values)
    withdrawn = out["analysed"] != 1
    out.loc[withdrawn, "randdt"] = out.loc[withdrawn, "usubjid"].map(randomized).to_numpy()
    dosed = out["trtsdt"].notna() if "first_dose_at" in p.columns else pd.Series(True, index=out.index)
    out["saffl"] = ((out["analysed"] == 1) & dosed).astype(int).astype(BINARY)
    return out


# -- SIDF reversal --------------------------------------------------------------------------------------
def derive_vars_sidf_reversal(
    dataset: pd.DataFrame, biomarkers: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add ``sidffl`` (1 = in the SIDF population), ``sidf_reversal`` (0/1, empty outside it),
    ``sidf_reversal_day``, ``sidf_last_draw_day`` and the baseline ferritin and mHLA-DR.

    The rule is :func:`immunosep.clinical.sidf.sidf_reversal_arrays` on the stratum's marker (ferritin for
    MALS, mHLA-DR for immunoparalysis) at the protocol draw days. The SIDF population (the denominator of
    the published Table 2 row) is the analysed patients with a baseline draw of that marker and at least
    ``sidf.min_later_draws`` serial draws after it.
    """
    new = (
        "sidffl",
        "sidf_reversal",
        "sidf_reversal_day",
        "sidf_last_draw_day",
        "ferritin_baseline",
        "hla_dr_baseline",
    )
    _require(dataset, ("usubjid", "stratum", "analysed"), "derive_vars_sidf_reversal")
    _new_only(dataset, new, "derive_vars_sidf_reversal")
    draw_days = list(protocol.biospecimens.days)
    ids = dataset["usubjid"]
    rows = pd.Index(ids).get_indexer(pd.Index(biomarkers["usubjid"]))
    cols = pd.Index(draw_days).get_indexer(pd.Index(biomarkers["day"]))
    keep = (rows >= 0) & (cols >= 0)
    matrices = {}
    for name in ("ferritin_ng_ml", "hla_dr"):
        m = np.full((len(ids), len(draw_days)), np.nan)
        m[rows[keep], cols[keep]] = pd.to_numeric(biomarkers[name], errors="coerce").to_numpy(float)[keep]
        matrices[name] = m
    strata = dataset["stratum"].astype(str).to_numpy()
    mals = strata == "mals"
    rated = (dataset["analysed"] == 1).to_numpy() & (mals | (strata == "immunoparalysis"))
    marker = np.where(mals[:, None], matrices["ferritin_ng_ml"], matrices["hla_dr"])
    result = sidf_reversal_arrays(strata[rated], draw_days, marker[rated], protocol)
    assessable = np.zeros(len(ids), bool)
    assessable[rated] = result.assessable
    reversed_ = np.full(len(ids), np.nan)
    reversed_[rated] = np.where(result.assessable, result.reversed.astype(float), np.nan)
    reversal_day = np.full(len(ids), np.nan)
    reversal_day[rated] = result.day
    day_array = np.asarray(draw_days, dtype=float)
    with np.errstate(invalid="ignore"):
        last_draw = np.fmax.reduce(np.where(np.isnan(marker), np.nan, day_array[None, :]), axis=1)
    last_draw = np.where(rated, last_draw, np.nan)
    values_frame = pd.DataFrame(
        {
            "sidffl": assessable.astype(int),
            "sidf_reversal": reversed_,
            "sidf_reversal_day": reversal_day,
            "sidf_last_draw_day": last_draw,
            "ferritin_baseline": matrices["ferritin_ng_ml"][:, 0],
            "hla_dr_baseline": matrices["hla_dr"][:, 0],
        },
        index=pd.Index(ids, name="usubjid"),
    )
    out = _merge(dataset, values_frame)
    out["sidffl"] = out["sidffl"].astype(BINARY)
    out["sidf_reversal"] = out["sidf_reversal"].round().astype(BINARY)
    return out


# -- infection state ------------------------------------------------------------------------------------
def derive_var_infection_day15(
    dataset: pd.DataFrame, infection: pd.DataFrame, protocol: Protocol
) -> pd.DataFrame:
    """Add ``infection_day15`` (the state, "" when not assessed) and ``infection_day15_n`` (1 = best level)."""
    _require(dataset, ("usubjid",), "derive_var_infection_day15")
    _new_only(dataset, ("infection_day15", "infection_day15_n"), "derive_var_infection_day15")
    levels = protocol.endpoints.infection_day15.levels
    state = infection.set_index("usubjid")["infection_day15"].fillna("").astype(str)
    values = pd.DataFrame({"infection_day15": state})
    values["infection_day15_n"] = state.map({lv: i + 1 for i, lv in enumerate(levels)})
    values.index.name = "usubjid"
    out = _merge(dataset, values)
    out["infection_day15"] = out["infection_day15"].fillna("")
    out["infection_day15_n"] = out["infection_day15_n"].astype("Int8")
    return out


# -- the whole dataset ----------------------------------------------------------------------------------
def derive_adsl(raw: RawTrial, protocol: Protocol) -> pd.DataFrame:
    """ADSL for the whole trial: every derivation of this module applied in order."""
    check_raw_trial(raw, protocol)
    adsl = derive_adsl_base(raw)
    adsl = derive_vars_baseline_support(adsl, raw.daily_sofa, protocol)
    adsl = derive_vars_baseline_labs(adsl, raw.daily_sofa, protocol)
    adsl = derive_vars_sofa_endpoints(adsl, raw.daily_sofa, raw.vital_status, protocol)
    adsl = derive_vars_mortality(adsl, raw.vital_status, protocol)
    record_days = last_record_days(raw)  # grouped once for both derivations (1.5 M SOFA rows at 100,000)
    adsl = derive_vars_follow_up(adsl, raw, record_days=record_days)
    adsl = derive_var_sensitivity_flag(adsl, protocol)
    adsl = derive_vars_treatment_dates(adsl, raw, record_days=record_days)
    adsl = derive_vars_sidf_reversal(adsl, raw.biomarkers, protocol)
    adsl = derive_var_infection_day15(adsl, raw.infection, protocol)
    return adsl
