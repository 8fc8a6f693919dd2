"""A hand-built trial of five kept patients and one withdrawal, each exercising one derivation rule.

| usubjid | stratum / arm | rule exercised |
|---|---|---|
| S01-0001 | mals / precision | complete record: SOFA 10 then 8 on days 2-15 (decrease 2.0, achiever) |
| S01-0002 | immunoparalysis / placebo | death on day 3: days 3-15 score 24 |
| S02-0001 | immunoparalysis / precision | ICU discharge on day 6: SOFA of day 6 carried forward |
| S02-0002 | mals / placebo | a missing day (day 4) carried forward; death on day 40 |
| S03-0001 | immunoparalysis / placebo | missing baseline SOFA: decrease not defined, not achieved |
| S03-0002 | (withdrawn, precision) | consent withdrawn with removal of data: randomized, not analysed |

SIDF: S01-0001 and S02-0001 reverse (days 2 and 4, confirmed by later draws); S01-0002 has one serial
draw and S02-0002 no baseline ferritin (outside the SIDF population); S03-0001 crosses 8000 only at its
last draw (day 4), not confirmed: in the population, not reversed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunosep.analysis.raw import RawTrial

NAN = np.nan


def _sofa_rows(
    usubjid: str, by_day: dict[int, float], extra: dict[int, dict[str, object]] | None = None
) -> list[dict]:
    rows = []
    for day, value in by_day.items():
        row = {
            "usubjid": usubjid,
            "day": day,
            "sofa_total": value,
            "mechanical_ventilation": day == 1,
            "ckrt": False,
        }
        row.update((extra or {}).get(day, {}))
        rows.append(row)
    return rows


def handmade_raw() -> RawTrial:
    """The hand-built trial described in the module docstring."""
    patients = pd.DataFrame(
        [
            ("S01-0001", "S01", "mals", "precision", 71, "male", 4, 21, "vap", 80.0, 30.0),
            ("S01-0002", "S01", "immunoparalysis", "placebo", 65, "female", 6, 27, "cap", 62.0, 48.0),
            ("S02-0001", "S02", "immunoparalysis", "precision", 58, "male", 3, 15, "hap", 90.0, 20.0),
            ("S02-0002", "S02", "mals", "placebo", 80, "female", 7, 24, "primary_bacteremia", 70.0, 60.0),
            ("S03-0001", "S03", "immunoparalysis", "placebo", 49, "male", 2, 12, "cap", 85.0, 12.0),
        ],
        columns=[
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
        ],
    )
    sofa = []
    sofa += _sofa_rows("S01-0001", {1: 10.0, **{d: 8.0 for d in range(2, 16)}})
    sofa += _sofa_rows("S01-0002", {1: 12.0, 2: 13.0})
    sofa += _sofa_rows("S02-0001", {1: 9.0, 2: 8.0, 3: 7.0, 4: 6.0, 5: 5.0, 6: 4.0})
    sofa += _sofa_rows("S02-0002", {d: (8.0 if d <= 3 else 7.0) for d in range(1, 16) if d != 4})
    sofa += _sofa_rows("S03-0001", {d: 6.0 for d in range(2, 16)})
    daily_sofa = pd.DataFrame(sofa)
    vital_status = pd.DataFrame(
        [
            ("S01-0001", NAN, 90.0, 20.0),
            ("S01-0002", 3.0, 2.0, NAN),
            ("S02-0001", NAN, 90.0, 6.0),
            ("S02-0002", 40.0, 39.0, 16.0),
            ("S03-0001", NAN, 20.0, NAN),
        ],
        columns=["usubjid", "death_day", "last_known_alive_day", "icu_discharge_day"],
    )
    biomarkers = pd.DataFrame(
        [
            ("S01-0001", 1, 6000.0, 3000.0),
            ("S01-0001", 2, 5000.0, 3500.0),
            ("S01-0001", 4, 4000.0, 3600.0),
            ("S01-0001", 7, 3000.0, 4000.0),
            ("S01-0002", 1, 900.0, 2000.0),
            ("S01-0002", 2, 950.0, 2500.0),
            ("S02-0001", 1, 700.0, 3000.0),
            ("S02-0001", 2, 650.0, 6000.0),
            ("S02-0001", 4, 600.0, 9000.0),
            ("S02-0001", 7, 500.0, 9500.0),
            ("S02-0001", 15, 450.0, 10000.0),
            ("S02-0002", 1, NAN, 4000.0),
            ("S02-0002", 2, 7000.0, 4100.0),
            ("S02-0002", 4, 6000.0, 4200.0),
            ("S03-0001", 1, 500.0, 4000.0),
            ("S03-0001", 2, 480.0, 7000.0),
            ("S03-0001", 4, 470.0, 9000.0),
        ],
        columns=["usubjid", "day", "ferritin_ng_ml", "hla_dr"],
    )
    infection = pd.DataFrame(
        [
            ("S01-0001", "resolution"),
            ("S02-0001", "intermediate"),
            ("S02-0002", "superinfection"),
            ("S03-0001", "failure"),
        ],
        columns=["usubjid", "infection_day15"],
    )
    adverse_events = pd.DataFrame(
        [
            (
                "S01-0001",
                5,
                "Blood and lymphatic system disorders",
                "Anaemia",
                True,
                "unrelated",
                True,
                False,
            ),
            (
                "S01-0002",
                2,
                "Blood and lymphatic system disorders",
                "Thrombocytopenia",
                True,
                "possibly related",
                False,
                True,
            ),
            (
                "S01-0001",
                3,
                "Cardiac disorders",
                "Atrial fibrillation",
                False,
                "probably not related",
                True,
                False,
            ),
        ],
        columns=[
            "usubjid",
            "onset_day",
            "soc_name",
            "pt_name",
            "serious",
            "relatedness",
            "expected",
            "susar",
        ],
    )
    withdrawals = pd.DataFrame([("S03-0002", "S03", "precision")], columns=["usubjid", "siteid", "arm"])
    screening = pd.DataFrame(
        [
            *((f"SCR{i:03d}", "S01", True, "", "", True) for i in range(6)),
            ("SCR100", "S01", False, "meningitis", "", False),
            ("SCR101", "S02", False, "meningitis;stage_iv_malignancy", "", False),
            ("SCR102", "S02", True, "", "unclassified", False),
        ],
        columns=["screen_id", "siteid", "eligible", "exclusion_reasons", "stratum", "randomized"],
    )
    return RawTrial(
        patients=patients,
        daily_sofa=daily_sofa,
        vital_status=vital_status,
        biomarkers=biomarkers,
        infection=infection,
        adverse_events=adverse_events,
        withdrawals=withdrawals,
        screening=screening,
    )
