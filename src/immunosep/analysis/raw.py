"""The raw-frames contract: what the analysis reads from a locked trial, as plain pandas frames.

:class:`RawTrial` is the one boundary between the store (or a simulation, or a hand-built test) and the
analysis derivations. :func:`immunosep.analysis.extract.extract_raw_trial` fills it from a locked database;
tests and benchmarks build it by hand. Days are study days (day 1 = day of the first dose). A missing value
is NaN (numbers) or ``""`` (text). Every frame is checked once, at the top of :func:`check_raw_trial`.

Frames and their columns (extra columns are allowed and ignored unless named below):

``patients`` — one row per randomized patient whose data were kept
    ``usubjid`` (str, pseudonym), ``siteid`` (str), ``stratum`` (protocol stratum code), ``arm`` (protocol
    arm code), ``age`` (years), ``sex`` ("male"/"female"), ``cci`` (Charlson comorbidity index, points),
    ``apache2`` (APACHE II, points), ``infection_type`` (protocol infection code);
    optional: ``weight_kg``, ``hours_onset_to_dose`` (h from sepsis onset to the first dose),
    ``randomized_at`` / ``first_dose_at`` (UTC datetimes, NaT = never dosed) and ``last_dose_day`` (study day of
    the last dose given) for the ADaM dates (RANDDT, TRTSDT, TRTEDT) and the safety population.
``daily_sofa`` — one row per recorded patient-day in the ICU
    ``usubjid``, ``day`` (study day), ``sofa_total`` (points, NaN = not recorded);
    optional: the six ``sofa_<organ>`` components, ``mechanical_ventilation`` (bool), ``ckrt`` (bool), and
    the laboratory inputs ``pao2_fio2_mmhg``, ``platelets_1e3_ul``, ``bilirubin_mg_dl``, ``creatinine_mg_dl``.
``vital_status`` — one row per patient
    ``usubjid``, ``death_day`` (study day, NaN = alive at last contact), ``last_known_alive_day`` (study day),
    ``icu_discharge_day`` (study day alive out of the ICU, NaN = not discharged alive).
``biomarkers`` — one row per draw
    ``usubjid``, ``day`` (study day), ``ferritin_ng_ml``, ``hla_dr`` (receptors per CD45/CD14 monocyte).
``infection`` — one row per patient with an assessment
    ``usubjid``, ``infection_day15`` (one of ``protocol.endpoints.infection_day15.levels`` or "").
``adverse_events`` — one row per treatment-emergent adverse event
    ``usubjid``, ``onset_day``, ``soc_name``, ``pt_name``, ``serious`` (bool), ``relatedness`` (one of
    :data:`RELATEDNESS_LEVELS`), ``expected`` (bool), ``susar`` (bool); optional: ``ae_id`` (the store's
    record id, which orders a subject's events of one day for AESEQ).
``withdrawals`` — one row per randomized patient who withdrew consent with removal of data
    ``usubjid`` (pseudonym kept), ``siteid``, ``arm`` (from the used randomization slot); optional:
    ``randomized_at`` (UTC datetime of the allocation).
``screening`` — one row per screened patient (the screening log)
    ``screen_id``, ``siteid``, ``eligible`` (bool), ``exclusion_reasons`` (";"-separated codes, "" if none),
    ``stratum`` (immune classification, "" when not classified), ``randomized`` (bool).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import pandas as pd

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

#: Relatedness of an adverse event to the study drug, from most to least likely
#: (docs/requirements.md "Safety data").
RELATEDNESS_LEVELS = ("probably related", "possibly related", "probably not related", "unrelated")
#: The levels that count as "related" in Table 3 (docs/requirements.md "Reports": probably/possibly related).
RELATED_LEVELS = ("probably related", "possibly related")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("usubjid", "siteid", "stratum", "arm", "age", "sex", "cci", "apache2", "infection_type"),
    "daily_sofa": ("usubjid", "day", "sofa_total"),
    "vital_status": ("usubjid", "death_day", "last_known_alive_day", "icu_discharge_day"),
    "biomarkers": ("usubjid", "day", "ferritin_ng_ml", "hla_dr"),
    "infection": ("usubjid", "infection_day15"),
    "adverse_events": (
        "usubjid",
        "onset_day",
        "soc_name",
        "pt_name",
        "serious",
        "relatedness",
        "expected",
        "susar",
    ),
    "withdrawals": ("usubjid", "siteid", "arm"),
    "screening": ("screen_id", "siteid", "eligible", "exclusion_reasons", "stratum", "randomized"),
}


@dataclass(frozen=True)
class RawTrial:
    """The raw data of one trial as pandas frames (see the module docstring for the columns).

    ``locked`` says whether the database was locked when it was read; ``trial_code`` names the trial.
    """

    patients: pd.DataFrame
    daily_sofa: pd.DataFrame
    vital_status: pd.DataFrame
    biomarkers: pd.DataFrame
    infection: pd.DataFrame
    adverse_events: pd.DataFrame
    withdrawals: pd.DataFrame
    screening: pd.DataFrame
    locked: bool = True
    trial_code: str = "immunosep"


def empty_frame(name: str) -> pd.DataFrame:
    """An empty frame with the required columns of raw frame ``name``."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in REQUIRED_COLUMNS[name]})


def check_raw_trial(raw: RawTrial, protocol: Protocol) -> None:
    """Check the contract: required columns, unique patients, known strata, arms and levels.

    Raises :class:`ImmunoSepError` naming the frame and what is wrong.
    """
    for f in fields(raw):
        if f.name not in REQUIRED_COLUMNS:
            continue
        frame = getattr(raw, f.name)
        if not isinstance(frame, pd.DataFrame):
            raise ImmunoSepError(f"raw trial frame {f.name!r} must be a pandas DataFrame")
        missing = [c for c in REQUIRED_COLUMNS[f.name] if c not in frame.columns]
        if missing:
            raise ImmunoSepError(f"raw trial frame {f.name!r} lacks column(s) {missing}")
    patients = raw.patients
    if patients["usubjid"].duplicated().any():
        dup = patients.loc[patients["usubjid"].duplicated(), "usubjid"].iloc[0]
        raise ImmunoSepError(f"patient {dup!r} appears more than once in the patients frame")
    unknown_stratum = set(patients["stratum"]) - set(protocol.enrolled_strata)
    if unknown_stratum:
        raise ImmunoSepError(
            f"patients in strata {sorted(unknown_stratum)} not enrolled by the protocol "
            f"({protocol.enrolled_strata})"
        )
    for name in ("patients", "withdrawals"):
        unknown_arm = set(getattr(raw, name)["arm"]) - set(protocol.arm_codes)
        if unknown_arm:
            raise ImmunoSepError(f"{name}: unknown arm(s) {sorted(unknown_arm)}; arms {protocol.arm_codes}")
    known = set(patients["usubjid"])
    for name in ("daily_sofa", "vital_status", "biomarkers", "infection", "adverse_events"):
        strangers = set(getattr(raw, name)["usubjid"]) - known
        if strangers:
            raise ImmunoSepError(
                f"{name} has rows for {len(strangers)} patient(s) not in the patients frame, "
                f"e.g. {sorted(strangers)[0]!r}"
            )
    if raw.vital_status["usubjid"].duplicated().any():
        raise ImmunoSepError("vital_status must have at most one row per patient")
    if raw.daily_sofa.duplicated(["usubjid", "day"]).any():
        raise ImmunoSepError("daily_sofa has two rows for the same patient and day")
    levels = set(protocol.endpoints.infection_day15.levels) | {""}
    bad_levels = set(raw.infection["infection_day15"].fillna("")) - levels
    if bad_levels:
        raise ImmunoSepError(
            f"infection_day15 has unknown state(s) {sorted(bad_levels)}; levels {sorted(levels)}"
        )
    bad_rel = set(raw.adverse_events["relatedness"]) - set(RELATEDNESS_LEVELS)
    if bad_rel:
        raise ImmunoSepError(
            f"adverse_events: unknown relatedness {sorted(bad_rel)}; use {RELATEDNESS_LEVELS}"
        )
