"""``immunosep demo``: the bedside examples of the README, run on the clinical engine.

Until the full virtual trial exists, the demo classifies a patient, scores a SOFA day and computes a
regimen exactly as the README shows, then scores a small table of virtual patient-days (drawn with
``--seed``) with the vectorized kernel; the results are printed and written to ``--out``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from immunosep.clinical.sofa import SOFA_INPUT_COLUMNS, score_sofa_frame, sofa
from immunosep.commands._output import _jsonable, console, print_json
from immunosep.commands.bedside import classify_result, print_sofa, regimen_result
from immunosep.protocol import default_protocol

DEMO_PATIENT_DAYS = 1000


def virtual_patient_days(n: int, seed: int) -> pd.DataFrame:
    """``n`` plausible ICU patient-days with ~10 % of each measurement missing (for showing the kernel)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "patient": rng.integers(1, n // 10 + 2, n),
            "pao2_fio2_mmhg": rng.uniform(60, 480, n).round(0),
            "ventilated": rng.random(n) < 0.6,
            "platelets_1e3_ul": rng.lognormal(5.0, 0.6, n).clip(5, 900).round(0),
            "bilirubin_mg_dl": rng.lognormal(0.2, 0.8, n).clip(0.1, 40).round(1),
            "map_mmhg": rng.normal(72, 10, n).clip(35, 140).round(0),
            "dopamine_ug_kg_min": np.where(rng.random(n) < 0.1, rng.uniform(1, 20, n).round(1), 0.0),
            "dobutamine_ug_kg_min": np.where(rng.random(n) < 0.05, rng.uniform(1, 10, n).round(1), 0.0),
            "epinephrine_ug_kg_min": np.where(rng.random(n) < 0.05, rng.uniform(0.01, 0.3, n).round(2), 0.0),
            "norepinephrine_ug_kg_min": np.where(
                rng.random(n) < 0.4, rng.uniform(0.01, 0.6, n).round(2), 0.0
            ),
            "gcs": rng.integers(3, 16, n).astype(float),
            "creatinine_mg_dl": rng.lognormal(0.3, 0.6, n).clip(0.2, 15).round(2),
            "urine_ml_day": rng.uniform(50, 3500, n).round(0),
        }
    )
    for col in SOFA_INPUT_COLUMNS:
        if col != "ventilated":
            df.loc[rng.random(n) < 0.1, col] = np.nan
    return df


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Directory for the demo's outputs."),
    seed: int = typer.Option(20251208, "--seed", help="Seed of the virtual patient-days."),
) -> None:
    """Run the bedside examples (classify, SOFA, regimen) and score a table of virtual patient-days."""
    p = default_protocol()
    out.mkdir(parents=True, exist_ok=True)

    console.rule("immunosep classify --ferritin 5200 --hla-dr 3000 --json")
    classified = classify_result(5200.0, 3000.0, p)
    print_json(classified)

    console.rule(
        "immunosep sofa --pao2-fio2 280 --platelets 120 --bilirubin 2.6 --map 68 --gcs 13 --creatinine 1.9"
    )
    score = sofa(pao2_fio2_mmhg=280, platelets_1e3_ul=120, bilirubin=2.6, map_mmhg=68, gcs=13, creatinine=1.9)
    print_sofa(score)

    console.rule(
        "immunosep regimen --stratum mals --arm precision --age 70 --weight-kg 80 --sex male --creatinine 3.1"
    )
    regimen = regimen_result(
        stratum="mals",
        arm="precision",
        age=70,
        weight_kg=80,
        sex="male",
        creatinine=3.1,
        creatinine_unit="mg/dL",
        height_cm=None,
        weight_policy=None,
        protocol=p,
    )
    console.print(f"creatinine clearance {regimen['creatinine_clearance_ml_min']:.1f} mL/min")
    for item in regimen["items"]:
        console.print(
            f"  {item['route'].upper()}: {'dummy ' if item['dummy'] else ''}{item['drug']} {item['dose']:g} "
            f"{item['unit']} every {item['interval_hours']} h{' (renal adjusted)' if item['renal_adjusted'] else ''}"
        )

    console.rule(f"immunosep sofa --input <{DEMO_PATIENT_DAYS} virtual patient-days> (seed {seed})")
    days = virtual_patient_days(DEMO_PATIENT_DAYS, seed)
    scored = score_sofa_frame(days)
    scored.to_csv(out / "sofa_scored.csv", index=False)
    console.print(
        f"scored {len(scored)} patient-days: mean SOFA {scored['sofa_total'].mean():.2f}, "
        f"{(scored['sofa_missing'] != '').mean():.1%} with a missing component -> {out / 'sofa_scored.csv'}"
    )

    summary = {
        "classify": classified,
        "sofa": {**asdict(score), "missing": list(score.missing)},
        "regimen": regimen,
        "virtual_patient_days": {
            "rows": len(scored),
            "seed": seed,
            "mean_sofa_total": float(scored["sofa_total"].mean()),
        },
    }
    (out / "bedside.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n", encoding="utf-8")
    console.print(f"[green]demo written to {out}[/green]")


def register(app: typer.Typer) -> None:
    """Register ``immunosep demo``."""
    app.command("demo")(demo)
