"""Reading a trial database into the raw frames of :class:`~immunosep.analysis.raw.RawTrial` (read only).

The store holds the arm only in the sealed randomization slot; the extractor joins it because the analysis is
unblinded by nature (it runs after the lock, or for the DSMB at an interim look). Patients erased after a
withdrawal survive only as a ``withdrawals`` row (pseudonym, site, the used slot's arm); they are added to the
screening log as randomized so that the CONSORT flow counts them. Baseline scores the store does not carry as
columns (Charlson index, APACHE II) are read from the eligibility answers named ``cci`` and ``apache2`` when
present and are empty otherwise.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from immunosep.analysis.raw import RawTrial
from immunosep.clinical.units import bilirubin_mg_dl, creatinine_mg_dl
from immunosep.errors import ImmunoSepError
from immunosep.protocol import parse_protocol
from immunosep.protocol.schema import Protocol
from immunosep.store.db import make_engine
from immunosep.store.models import (
    AdverseEvent,
    BiomarkerDraw,
    DailyCrf,
    DoseRecord,
    EligibilityAnswer,
    Outcome,
    Patient,
    RandomizationSlot,
    ScreeningEntry,
    Site,
    Trial,
    Withdrawal,
)

#: Eligibility-answer questions read as baseline covariates: question -> ADSL variable.
COVARIATE_QUESTIONS = {"cci": "cci", "apache2": "apache2"}


def _frame(conn: Any, stmt: Any) -> pd.DataFrame:
    return pd.read_sql(stmt, conn)


def _answer_value(text: str) -> float:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return np.nan
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan


def read_trial(engine: Engine) -> tuple[RawTrial, Protocol]:
    """The raw frames and the protocol the trial runs under, from one consistent read of the database."""
    with engine.connect() as conn:
        trials = _frame(conn, select(Trial.code, Trial.protocol_text, Trial.locked_at))
        if len(trials) != 1:
            raise ImmunoSepError(f"the database holds {len(trials)} trials; analysis needs exactly one")
        t = trials.iloc[0]
        protocol = parse_protocol(str(t["protocol_text"]), source=f"trial {t['code']} protocol")
        locked = pd.notna(t["locked_at"])
        sites = _frame(conn, select(Site.id.label("site_id"), Site.code.label("siteid")))
        site_code = dict(zip(sites["site_id"], sites["siteid"], strict=True))
        pts = _frame(
            conn,
            select(
                Patient.id.label("patient_id"),
                Patient.pseudonym.label("usubjid"),
                Patient.site_id,
                Patient.stratum,
                Patient.age_years.label("age"),
                Patient.sex,
                Patient.weight_kg,
                Patient.infection_type,
                Patient.sepsis_onset_at,
                Patient.first_dose_at,
                RandomizationSlot.arm,
                RandomizationSlot.allocated_at.label("randomized_at"),
            ).join(RandomizationSlot, RandomizationSlot.patient_id == Patient.id),
        )
        pid_to_usubjid = dict(zip(pts["patient_id"], pts["usubjid"], strict=True))
        answers = _frame(
            conn,
            select(EligibilityAnswer.patient_id, EligibilityAnswer.question, EligibilityAnswer.answer).where(
                EligibilityAnswer.question.in_(list(COVARIATE_QUESTIONS))
            ),
        )
        crf = _frame(
            conn,
            select(
                DailyCrf.patient_id,
                DailyCrf.study_day.label("day"),
                DailyCrf.sofa_total,
                DailyCrf.sofa_respiration,
                DailyCrf.sofa_coagulation,
                DailyCrf.sofa_liver,
                DailyCrf.sofa_cardiovascular,
                DailyCrf.sofa_cns,
                DailyCrf.sofa_renal,
                DailyCrf.mechanical_ventilation,
                DailyCrf.ckrt,
                DailyCrf.pao2_fio2_mmhg,
                DailyCrf.platelets_1e3_ul,
                DailyCrf.bilirubin,
                DailyCrf.bilirubin_unit,
                DailyCrf.creatinine,
                DailyCrf.creatinine_unit,
            ),
        )
        outcomes = _frame(
            conn,
            select(
                Outcome.patient_id,
                Outcome.death_day,
                Outcome.last_known_alive_day,
                Outcome.icu_discharge_day,
                Outcome.infection_day15,
            ),
        )
        draws = _frame(
            conn,
            select(
                BiomarkerDraw.patient_id,
                BiomarkerDraw.study_day.label("day"),
                BiomarkerDraw.ferritin_ng_ml,
                BiomarkerDraw.hla_dr_per_monocyte.label("hla_dr"),
            ),
        )
        last_doses = _frame(
            conn,
            select(DoseRecord.patient_id, func.max(DoseRecord.study_day).label("last_dose_day"))
            .where(DoseRecord.given.is_(True))
            .group_by(DoseRecord.patient_id),
        )
        aes = _frame(
            conn,
            select(
                AdverseEvent.patient_id,
                AdverseEvent.id.label("ae_id"),
                AdverseEvent.onset_day,
                AdverseEvent.soc_name,
                AdverseEvent.pt_name,
                AdverseEvent.serious,
                AdverseEvent.relatedness,
                AdverseEvent.expected,
                AdverseEvent.susar,
                AdverseEvent.action,
                AdverseEvent.outcome,
                AdverseEvent.end_day,
                AdverseEvent.crit_death,
                AdverseEvent.crit_life_threatening,
                AdverseEvent.crit_hospitalization,
                AdverseEvent.crit_disability,
                AdverseEvent.crit_congenital_anomaly,
                AdverseEvent.crit_medically_important,
            ),
        )
        withdrawn = _frame(
            conn,
            select(
                Withdrawal.pseudonym.label("usubjid"),
                Withdrawal.site_id,
                RandomizationSlot.arm,
                RandomizationSlot.allocated_at.label("randomized_at"),
            )
            .join(RandomizationSlot, RandomizationSlot.id == Withdrawal.slot_id)
            .where(Withdrawal.data_erased.is_(True)),
        )
        screening = _frame(
            conn,
            select(
                ScreeningEntry.patient_id,
                Patient.pseudonym.label("screen_id"),
                Patient.site_id,
                Patient.stratum,
                ScreeningEntry.eligible,
                ScreeningEntry.exclusion_reasons,
            ).join(Patient, Patient.id == ScreeningEntry.patient_id),
        )

    def by_patient(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.loc[frame["patient_id"].isin(pid_to_usubjid)].copy()
        out.insert(0, "usubjid", out["patient_id"].map(pid_to_usubjid))
        return out.drop(columns=["patient_id"]).reset_index(drop=True)

    patients = pts.copy()
    patients["siteid"] = patients["site_id"].map(site_code)
    onset = pd.to_datetime(patients["sepsis_onset_at"], utc=True)
    first = pd.to_datetime(patients["first_dose_at"], utc=True)
    patients["hours_onset_to_dose"] = (first - onset).dt.total_seconds() / 3600.0
    # Dates for the ADaM date variables (UTC, naive): randomization, first dose, last dose given.
    patients["first_dose_at"] = first.dt.tz_localize(None)
    patients["randomized_at"] = pd.to_datetime(patients["randomized_at"], utc=True).dt.tz_localize(None)
    last_dose = dict(zip(last_doses["patient_id"], last_doses["last_dose_day"], strict=True))
    patients["last_dose_day"] = patients["patient_id"].map(last_dose).astype(float)
    for question, variable in COVARIATE_QUESTIONS.items():
        rows = answers.loc[answers["question"] == question]
        values = dict(zip(rows["patient_id"], rows["answer"].map(_answer_value), strict=True))
        patients[variable] = patients["patient_id"].map(values).astype(float)
    patients = patients[
        [
            "usubjid",
            "siteid",
            "stratum",
            "arm",
            "age",
            "sex",
            "cci",
            "apache2",
            "infection_type",
            "weight_kg",
            "hours_onset_to_dose",
            "randomized_at",
            "first_dose_at",
            "last_dose_day",
        ]
    ]
    daily = by_patient(crf)
    for lab, to_mg_dl in (("bilirubin", bilirubin_mg_dl), ("creatinine", creatinine_mg_dl)):
        measured = pd.to_numeric(daily[lab], errors="coerce").to_numpy(float)
        units = daily[f"{lab}_unit"].astype(str).to_numpy()
        mg_dl = np.full(len(daily), np.nan)
        for unit in np.unique(units[~np.isnan(measured)]):
            mask = (units == unit) & ~np.isnan(measured)
            mg_dl[mask] = to_mg_dl(measured[mask], str(unit))
        daily[f"{lab}_mg_dl"] = mg_dl
        daily = daily.drop(columns=[lab, f"{lab}_unit"])
    outcomes_p = by_patient(outcomes)
    randomized_ids = set(pts["patient_id"])
    screening["randomized"] = screening["patient_id"].isin(randomized_ids)
    screening["siteid"] = screening["site_id"].map(site_code)
    screening["stratum"] = screening["stratum"].fillna("")
    screening["exclusion_reasons"] = screening["exclusion_reasons"].fillna("").str.replace("; ", ";")
    withdrawals = pd.DataFrame(
        {
            "usubjid": withdrawn["usubjid"],
            "siteid": withdrawn["site_id"].map(site_code),
            "arm": withdrawn["arm"],
            "randomized_at": pd.to_datetime(withdrawn["randomized_at"], utc=True).dt.tz_localize(None),
        }
    )
    erased_screening = pd.DataFrame(
        {
            "screen_id": withdrawals["usubjid"],
            "siteid": withdrawals["siteid"],
            "eligible": True,
            "exclusion_reasons": "",
            "stratum": "",
            "randomized": True,
        }
    )
    screening_all = pd.concat(
        [
            screening[["screen_id", "siteid", "eligible", "exclusion_reasons", "stratum", "randomized"]],
            erased_screening,
        ],
        ignore_index=True,
    )
    raw = RawTrial(
        patients=patients.reset_index(drop=True),
        daily_sofa=daily,
        vital_status=outcomes_p[["usubjid", "death_day", "last_known_alive_day", "icu_discharge_day"]],
        biomarkers=by_patient(draws),
        infection=outcomes_p.loc[outcomes_p["infection_day15"].notna(), ["usubjid", "infection_day15"]],
        adverse_events=by_patient(aes),
        withdrawals=withdrawals.reset_index(drop=True),
        screening=screening_all,
        locked=bool(locked),
        trial_code=str(t["code"]),
    )
    return raw, protocol


def extract_raw_trial(db_url: str) -> tuple[RawTrial, Protocol]:
    """Open ``db_url`` and read the trial (see :func:`read_trial`)."""
    engine = make_engine(db_url)
    try:
        return read_trial(engine)
    finally:
        engine.dispose()
