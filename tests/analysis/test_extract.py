"""From a real trial database (SQLite and PostgreSQL) to ADSL, results.json and the reports.

Patients are entered through the conduct services (the shared ``trial``/``enroll`` fixtures of
tests/conftest.py); the expected ADSL values are worked by hand from what was entered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from immunosep.analysis.extract import extract_raw_trial
from immunosep.cli import main
from immunosep.conduct import adverse_events, crf, lock, outcomes, withdrawal
from immunosep.errors import ImmunoSepError
from immunosep.pipeline import run_analysis
from immunosep.store.db import session_scope


def _build(trial, enroll) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Four MALS patients: an achiever discharged on day 3, a death on day 2, a withdrawal, one without data."""
    inv = trial.actors["inv1"]
    ids = {name: enroll() for name in ("achiever", "death", "withdrawn", "empty")}
    sick = crf.DailyInputs(platelets_1e3_ul=40.0, gcs=8)  # coagulation 3 + CNS 3 = SOFA 6 (Vincent 1996)
    well = crf.DailyInputs(platelets_1e3_ul=200.0, gcs=15)  # 0 points
    with session_scope(trial.engine) as s:
        crf.record_day(s, inv, ids["achiever"], 1, sick)
        crf.record_day(s, inv, ids["achiever"], 2, well)
        crf.record_day(s, inv, ids["achiever"], 3, well)
        crf.record_day(s, inv, ids["death"], 1, sick)
    with session_scope(trial.engine) as s:
        outcomes.record_outcome(
            s,
            inv,
            ids["achiever"],
            icu_discharge_day=3,
            last_known_alive_day=90,
            infection_day15="resolution",
        )
        outcomes.record_outcome(s, inv, ids["death"], death_day=2)
        adverse_events.record_adverse_event(
            s,
            inv,
            ids["achiever"],
            onset_day=2,
            term="Anaemia",
            serious=True,
            relatedness="unrelated",
            expected=True,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
    withdrawal.withdraw_and_erase(trial.engine, inv, ids["withdrawn"])
    return ids


def test_database_to_datasets_results_and_reports(trial, enroll, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ids = _build(trial, enroll)
    out = tmp_path / "out"
    with pytest.raises(ImmunoSepError, match="not locked"):
        run_analysis(trial.url, out)
    summary = run_analysis(trial.url, out, interim=True)
    # the written ADSL is the ADaM view (docs/analysis.md, "ADaM"): CDISC names, Y/N flags
    adsl = pd.read_csv(out / "datasets" / "adsl.csv", keep_default_na=False).set_index("SUBJID")
    assert sorted(adsl.index) == sorted(ids.values())
    assert (adsl.loc[ids["withdrawn"], "ITTFL"], adsl.loc[ids["withdrawn"], "PRIMFL"]) == ("N", "")
    assert adsl.loc[ids["withdrawn"], "USUBJID"] == f"IMMUNOSEP-{ids['withdrawn']}"
    a = adsl.loc[ids["achiever"]]
    # SOFA 6 on day 1, 0 on days 2-3, carried forward to day 9: decrease 6 >= 1.4.
    assert (float(a["SOFABL"]), float(a["MSOFAPW"]), a["PRIMFL"], a["SENSFL"]) == (6, 0, "Y", "N")
    d = adsl.loc[ids["death"]]
    assert (float(d["MSOFAPW"]), d["PRIMFL"], d["DTH28FL"], d["DTHFL"]) == (24, "N", "Y", "Y")
    assert adsl.loc[ids["empty"], "PRIMFL"] == "N"
    results = json.loads((out / "results.json").read_text())
    assert results["interim"] is True and results["locked"] is False
    assert results["consort"]["randomized"] == 4 and results["consort"]["analysed"] == 3
    html = (out / "report.html").read_text()
    assert "CONSORT" in html and "data:image/png;base64," in html
    blinded = (out / "report_blinded.html").read_text()
    for arm_label in ("Precision immunotherapy", "Placebo", "precision", "placebo"):
        assert arm_label not in blinded.replace("Precision immunotherapy in sepsis", "")
    for name in ("adsl", "adsofa", "adtte", "adae"):
        for suffix in (".csv", ".parquet", ".xpt", "_dictionary.csv"):
            assert (out / "datasets" / f"{name}{suffix}").is_file()
    assert summary["analysed"] == 3


def test_analyse_command_refuses_unlocked_trial_then_reads_locked(
    trial, enroll, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    ids = _build(trial, enroll)
    with pytest.raises(SystemExit) as exc:
        main(["analyse", "--db", trial.url, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "not locked" in capsys.readouterr().err
    with session_scope(trial.engine) as s:
        for name in ("achiever", "death", "empty"):
            lock.lock_patient(s, trial.actors["dm"], ids[name])
    with session_scope(trial.engine) as s:
        lock.lock_trial(s, trial.actors["dm"])
    raw, protocol = extract_raw_trial(trial.url)
    assert raw.locked and protocol.trial.code == "immunosep"
    assert set(raw.withdrawals["usubjid"]) == {ids["withdrawn"]}
