"""Synthetic raw trial frames for benchmarks, report previews and tests of scale.

A fast, vectorized generator of a :class:`~immunosep.analysis.raw.RawTrial` whose margins look like the
published trial (about 17% MALS, 28-day mortality near 45%, primary endpoint near 35% vs 18%), with every
feature the derivations must handle: deaths, ICU discharges, missing days, biomarker draws, infection states,
adverse events, withdrawals and a screening log. It is not the calibrated virtual-patient model of
``immunosep.simulate``; its rates are round numbers chosen to exercise the code, stated below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunosep.analysis.raw import RELATEDNESS_LEVELS, RawTrial
from immunosep.protocol.schema import Protocol

#: (system organ class, preferred term, weight) of the synthetic serious adverse events (MedDRA names as in
#: Table 3 of the published trial).
AE_TERMS = (
    ("Blood and lymphatic system disorders", "Anaemia", 8.0),
    ("Blood and lymphatic system disorders", "Thrombocytopenia", 3.0),
    ("Cardiac disorders", "Atrial fibrillation", 3.0),
    ("Cardiac disorders", "Cardiac arrest", 2.0),
    ("General disorders and administration site conditions", "Multiple organ dysfunction syndrome", 9.0),
    ("Infections and infestations", "Bacteraemia", 6.0),
    ("Infections and infestations", "Pneumonia", 6.0),
    ("Infections and infestations", "Septic shock", 4.0),
    ("Renal and urinary disorders", "Acute kidney injury", 3.0),
    ("Respiratory, thoracic and mediastinal disorders", "Pneumothorax", 1.5),
)
EXCLUSION_WEIGHTS = {
    "unclassified": 0.45,
    "meningitis": 0.1,
    "abdominal_infection": 0.2,
    "do_not_resuscitate": 0.25,
}


def synthetic_raw_trial(n_patients: int, protocol: Protocol, *, seed: int = 0) -> RawTrial:
    """A synthetic trial of ``n_patients`` randomized patients (about 2% of them withdraw with erasure)."""
    rng = np.random.default_rng(seed)
    n = int(n_patients)
    arms = np.array(protocol.arm_codes)
    strata = np.array(protocol.enrolled_strata)
    precision = rng.random(n) < 0.5
    arm = np.where(precision, arms[0], arms[1])
    mals = rng.random(n) < 0.17
    stratum = np.where(mals, strata[0], strata[-1])
    sites = np.array([f"S{i + 1:02d}" for i in range(protocol.trial.sites)])
    siteid = sites[rng.integers(0, len(sites), n)]
    usubjid = np.char.add(np.char.add(siteid, "-"), np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    age = np.clip(rng.normal(70, 13, n), 18, 99).round()
    apache2 = np.clip(rng.normal(20, 6, n), 3, 45).round()
    cci = np.clip(rng.poisson(4.6, n), 0, 15)
    sofa0 = np.clip(rng.normal(9.5, 3.0, n), 2, 20).round()

    # Death within 90 days: logistic in APACHE II, CCI and SOFA so that Youden cut-offs mean something.
    lin = -0.2 + 0.06 * (apache2 - 20) + 0.12 * (cci - 4.6) + 0.08 * (sofa0 - 9.5) - 0.2 * precision
    dies = rng.random(n) < 1 / (1 + np.exp(-(lin + 0.6)))
    death_day = np.where(dies, np.clip(np.ceil(rng.exponential(22, n)), 1, 90), np.nan)

    # Daily SOFA: a per-patient slope; precision improves more often.
    days = np.arange(1, 16)
    slope = rng.normal(np.where(precision, -0.32, -0.16), 0.35, n)
    sofa = np.clip(
        np.round(sofa0[:, None] + slope[:, None] * (days - 1) + rng.normal(0, 0.8, (n, 15))), 0, 24
    )
    sofa[:, 0] = sofa0
    discharge = np.where(~dies & (rng.random(n) < 0.15), rng.integers(4, 20, n), np.nan)
    end = np.fmin(np.nan_to_num(death_day, nan=99), np.nan_to_num(discharge, nan=99))
    recorded = (days[None, :] <= end[:, None]) & (
        days[None, :] < np.nan_to_num(death_day, nan=99)[:, None] + 1
    )
    recorded &= rng.random((n, 15)) > 0.02
    recorded[:, 0] = rng.random(n) > 0.003
    rows, cols = np.nonzero(recorded)
    daily_sofa = pd.DataFrame(
        {
            "usubjid": usubjid[rows],
            "day": days[cols],
            "sofa_total": sofa[rows, cols],
            "mechanical_ventilation": (rng.random(len(rows)) < 0.88),
            "ckrt": (rng.random(len(rows)) < 0.17),
        }
    )
    last_alive = np.where(dies, death_day - 1, np.where(rng.random(n) < 0.03, rng.integers(20, 90, n), 90))
    vital_status = pd.DataFrame(
        {
            "usubjid": usubjid,
            "death_day": death_day,
            "last_known_alive_day": np.maximum(last_alive, 1).astype(float),
            "icu_discharge_day": discharge,
        }
    )

    # Biomarkers at the protocol draw days while alive: MALS ferritin falls, immunoparalysis HLA-DR rises.
    draw_days = np.array(protocol.biospecimens.days)
    mals_cut = protocol.classification.mals_ferritin_above
    hla_cut = protocol.classification.immunoparalysis_hla_dr_below
    ferritin0 = np.where(mals, mals_cut * np.exp(np.abs(rng.normal(0.3, 0.3, n))), rng.lognormal(6.5, 0.8, n))
    hla0 = np.where(mals, rng.lognormal(8.3, 0.5, n), np.minimum(rng.lognormal(7.9, 0.4, n), hla_cut - 1))
    responds = rng.random(n) < np.where(precision, 0.7, 0.5)
    t = (draw_days - 1)[None, :]
    ferritin = ferritin0[:, None] * np.exp(-np.where(responds, 0.05, -0.005)[:, None] * t)
    hla = hla0[:, None] * np.exp(np.where(responds, 0.06, 0.005)[:, None] * t)
    alive = draw_days[None, :] < np.nan_to_num(death_day, nan=999)[:, None]
    alive &= rng.random(alive.shape) > 0.1
    alive[:, 0] = True
    brow, bcol = np.nonzero(alive)
    biomarkers = pd.DataFrame(
        {
            "usubjid": usubjid[brow],
            "day": draw_days[bcol],
            "ferritin_ng_ml": ferritin[brow, bcol].round(),
            "hla_dr": hla[brow, bcol].round(),
        }
    )

    levels = np.array(protocol.endpoints.infection_day15.levels)
    probs = np.where(precision[:, None], [[0.44, 0.08, 0.25, 0.23]], [[0.32, 0.06, 0.30, 0.32]])
    state_idx = (rng.random(n)[:, None] > probs.cumsum(axis=1)).sum(axis=1).clip(0, len(levels) - 1)
    infection = pd.DataFrame({"usubjid": usubjid, "infection_day15": levels[state_idx]})

    n_ae = rng.poisson(3.5, n)
    ae_patient = np.repeat(np.arange(n), n_ae)
    weights = np.array([w for _, _, w in AE_TERMS])
    term = rng.choice(len(AE_TERMS), len(ae_patient), p=weights / weights.sum())
    rel_p = np.where(precision[ae_patient, None], [[0.01, 0.02, 0.27, 0.70]], [[0.005, 0.01, 0.285, 0.70]])
    rel_idx = (rng.random(len(ae_patient))[:, None] > rel_p.cumsum(axis=1)).sum(axis=1).clip(0, 3)
    relatedness = np.array(RELATEDNESS_LEVELS)[rel_idx]
    serious = rng.random(len(ae_patient)) < 0.85
    expected = rng.random(len(ae_patient)) < 0.9
    adverse_events = pd.DataFrame(
        {
            "usubjid": usubjid[ae_patient],
            "onset_day": rng.integers(1, 29, len(ae_patient)),
            "soc_name": np.array([s for s, _, _ in AE_TERMS])[term],
            "pt_name": np.array([p for _, p, _ in AE_TERMS])[term],
            "serious": serious,
            "relatedness": relatedness,
            "expected": expected,
            "susar": serious & (rel_idx < 2) & ~expected,
        }
    )

    withdrawn = rng.random(n) < 0.018
    patients = pd.DataFrame(
        {
            "usubjid": usubjid,
            "siteid": siteid,
            "stratum": stratum,
            "arm": arm,
            "age": age,
            "sex": np.where(rng.random(n) < 0.66, "male", "female"),
            "cci": cci,
            "apache2": apache2,
            "infection_type": rng.choice(
                np.array(protocol.eligibility.infection_types), n, p=[0.27, 0.24, 0.37, 0.105, 0.015]
            ),
            "weight_kg": np.clip(rng.normal(78, 15, n), 40, 180).round(1),
            "hours_onset_to_dose": np.clip(
                rng.normal(40, 15, n), 2, protocol.treatment.first_dose_max_hours_after_onset
            ).round(),
        }
    )
    gone = set(usubjid[withdrawn])
    n_excluded = round(n * 1.4)
    reasons = np.array(list(EXCLUSION_WEIGHTS))
    w = np.array(list(EXCLUSION_WEIGHTS.values()))
    reason = rng.choice(reasons, n_excluded, p=w / w.sum())
    screening = pd.DataFrame(
        {
            "screen_id": [f"SCR{i:07d}" for i in range(n + n_excluded)],
            "siteid": np.concatenate([siteid, sites[rng.integers(0, len(sites), n_excluded)]]),
            "eligible": np.concatenate([np.ones(n, bool), reason == "unclassified"]),
            "exclusion_reasons": np.concatenate(
                [np.full(n, ""), np.where(reason == "unclassified", "", reason)]
            ),
            "stratum": np.concatenate([stratum, np.where(reason == "unclassified", "unclassified", "")]),
            "randomized": np.concatenate([np.ones(n, bool), np.zeros(n_excluded, bool)]),
        }
    )

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[~frame["usubjid"].isin(gone)].reset_index(drop=True)

    return RawTrial(
        patients=keep(patients),
        daily_sofa=keep(daily_sofa),
        vital_status=keep(vital_status),
        biomarkers=keep(biomarkers),
        infection=keep(infection),
        adverse_events=keep(adverse_events),
        withdrawals=pd.DataFrame(
            {"usubjid": usubjid[withdrawn], "siteid": siteid[withdrawn], "arm": arm[withdrawn]}
        ),
        screening=screening,
        locked=True,
    )
