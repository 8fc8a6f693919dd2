"""The SDTM export read back by readers this project did not write, and its SDTMIG rules on a small trial.

Every XPT file is read by pyreadstat, by the ``xport`` package's v5 reader and by ``pandas.read_sas``
(which reads transport v5 only): names, labels, types and values must equal what the export holds (its
Parquet file). The trial has a dosed patient who missed a dose, had an adverse event and died, a patient
never dosed, one withdrawn with data kept and one withdrawn with removal of data.
"""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import xport
import xport.v56

from immunosep.clinical.adverse_events import ACTIONS
from immunosep.conduct import adverse_events, crf, dosing, export, lock, outcomes, withdrawal
from immunosep.conduct.cdisc_ids import usubjid
from immunosep.conduct.sdtm import DATASETS
from immunosep.store.db import session_scope

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?$")
#: xport before 3.3 reads every variable label as the dataset label; later versions pin pandas < 1.4.
XPORT_READS_VARIABLE_LABELS = tuple(int(x) for x in str(xport.__version__).split(".")[:2]) >= (3, 3)


@pytest.fixture
def exported(trial, enroll, tmp_path):
    inv, pharm, dm = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["dm"]
    dosed = enroll()
    never_dosed = enroll(ferritin=1000.0, hla_dr=3000.0)
    kept = enroll()
    erased = enroll()
    with session_scope(trial.engine) as s:
        for p in (dosed, kept):
            crf.record_day(
                s, inv, p, 1, crf.DailyInputs(platelets_1e3_ul=80.0, gcs=14, creatinine=1.0, weight_kg=80.0)
            )
        for route in ("iv", "sc"):  # the patient withdrawn later gets the first injection at hour 8
            dosing.record_dose(s, pharm, dosed, 1, route, 0, given=True)
            dosing.record_dose(s, pharm, kept, 1, route, 0, given=False, missed_reason="no venous access")
        dosing.record_dose(s, pharm, kept, 1, "iv", 8, given=True)
        dosing.record_dose(s, pharm, dosed, 1, "iv", 8, given=False, missed_reason="line occluded")
        dosing.record_dose(s, pharm, dosed, 1, "iv", 16, given=True)
        outcomes.record_outcome(s, inv, dosed, death_day=3)
        adverse_events.record_adverse_event(
            s,
            inv,
            dosed,
            onset_day=2,
            term="Anaemia",
            verbatim="Anämie",
            serious=True,
            relatedness="unrelated",
            expected=True,
            criteria=("death", "hospitalization"),
            action="DRUG WITHDRAWN",
            outcome="FATAL",
            end_day=3,
        )
    with session_scope(trial.engine) as s:
        withdrawal.withdraw(s, inv, kept, erase_data=False)
    withdrawal.withdraw_and_erase(trial.engine, inv, erased)
    with session_scope(trial.engine) as s:
        for p in (dosed, never_dosed, kept):
            lock.lock_patient(s, dm, p)
        lock.lock_trial(s, dm)
    with session_scope(trial.engine) as s:
        export.export_sdtm(s, None, tmp_path / "unblinded", unblinded=True)
        export.export_sdtm(s, dm, tmp_path / "blinded")
    ids = {k: usubjid("IMMUNOSEP", p) for k, p in (("dosed", dosed), ("never", never_dosed), ("kept", kept))}
    ids["erased"] = usubjid("IMMUNOSEP", erased)
    return tmp_path, ids


def _frames(folder, *, ascii_text=False):
    frames = {name: pd.read_parquet(folder / f"{name.lower()}.parquet") for name in DATASETS}
    if ascii_text:  # what the XPT holds: character values in ASCII
        for df in frames.values():
            for column in df.select_dtypes(include="object").columns:
                df[column] = df[column].map(export.ascii_text)
    return frames


@pytest.mark.parametrize("which", ["unblinded", "blinded"])
@pytest.mark.requirement("EXP-01")
def test_every_xpt_is_read_back_exactly_by_pyreadstat_xport_and_pandas(exported, which):
    folder = exported[0] / which
    for name, expected in _frames(folder, ascii_text=True).items():
        path = folder / f"{name.lower()}.xpt"
        spec = DATASETS[name]
        labels = [spec.variable(c).label for c in expected.columns]
        assert all(len(c) <= 8 for c in expected.columns) and all(len(x) <= 40 for x in labels)

        df, meta = pyreadstat.read_xport(str(path))
        assert meta.table_name == name and meta.file_label == spec.label
        assert list(df.columns) == list(expected.columns)
        assert meta.column_labels == labels
        with path.open("rb") as fh:
            library = xport.v56.load(fh)
        assert list(library) == [name]
        member = library[name]
        assert list(member.columns) == list(expected.columns)
        by_pandas = pd.read_sas(path, format="xport", encoding="utf-8")
        assert list(by_pandas.columns) == list(expected.columns)

        for column in expected.columns:
            numeric = spec.variable(column).type == "Num"
            kind = member[column].vtype
            assert kind == (xport.VariableType.NUMERIC if numeric else xport.VariableType.CHARACTER)
            if XPORT_READS_VARIABLE_LABELS:
                assert member[column].label == spec.variable(column).label
            want = expected[column]
            for reader, got in (
                ("pyreadstat", df[column]),
                ("xport", member[column]),
                ("pandas", by_pandas[column]),
            ):
                if numeric:
                    # pandas reads an IBM zero as 5.4e-79, the smallest IBM float (pandas-dev/pandas#50670)
                    atol = 1e-78 if reader == "pandas" else 0.0
                    np.testing.assert_allclose(
                        got.to_numpy(dtype=float), want.to_numpy(dtype=float), rtol=0, atol=atol
                    )
                else:
                    assert got.fillna("").astype(str).str.rstrip().tolist() == want.tolist(), (name, column)
            if not numeric and len(expected):
                width = max(1, int(want.str.encode("utf-8").str.len().max()))
                assert member[column].width == width, (name, column)


def test_sdtm_rules_dates_days_epochs_and_the_erased_subject(exported):
    tmp_path, ids = exported
    d = _frames(tmp_path / "unblinded")
    dm = d["DM"].set_index("USUBJID")
    assert set(dm.index) == set(ids.values())
    # every subject-level row belongs to a DM subject; the erased one has DM and DS rows only
    for name, df in d.items():
        if "USUBJID" in df:
            assert set(df["USUBJID"]) <= set(dm.index), name
            if name not in ("DM", "DS"):
                assert ids["erased"] not in set(df["USUBJID"]), name
    gone = dm.loc[ids["erased"]]
    assert (gone["SEX"], gone["RFSTDTC"], gone["ARMCD"] != "") == ("U", "", True)
    ds = d["DS"]
    assert ds.loc[ds.USUBJID.eq(ids["erased"]), "DSDECOD"].tolist() == ["RANDOMIZED", "WITHDRAWAL BY SUBJECT"]
    kept_ds = ds.loc[ds.USUBJID.eq(ids["kept"])].set_index("DSDECOD")
    assert dm.loc[ids["kept"], "RFPENDTC"] == kept_ds.loc["WITHDRAWAL BY SUBJECT", "DSSTDTC"]
    assert ds.loc[ds.USUBJID.eq(ids["dosed"]), "DSDECOD"].tolist() == [
        "INFORMED CONSENT OBTAINED",
        "RANDOMIZED",
        "DEATH",
    ]
    # never dosed: assigned, not treated; dosed: actual arm = planned arm, death on study day 3
    never = dm.loc[ids["never"]]
    assert (never["ACTARMCD"], never["ARMNRS"], never["RFXSTDTC"]) == ("", "ASSIGNED, NOT TREATED", "")
    dosed = dm.loc[ids["dosed"]]
    assert dosed["ACTARMCD"] == dosed["ARMCD"] and dosed["DTHFL"] == "Y"
    start = date.fromisoformat(dosed["RFSTDTC"][:10])
    assert (date.fromisoformat(dosed["DTHDTC"]) - start).days == 2
    # ISO 8601 to the second (no microseconds) and --DY without a day 0 on every dated variable
    for name, df in d.items():
        for column in df.columns:
            if column.endswith("DTC"):
                values = [v for v in df[column] if v]
                assert all(ISO.match(v) for v in values), (name, column, values[:3])
            if column.endswith("DY") and column != "VISITDY":
                assert not (df[column] == 0).any(), (name, column)
        if "EPOCH" in df and name not in ("TA",):
            assert set(df["EPOCH"]) <= {"SCREENING", "TREATMENT", "FOLLOW-UP", ""}, name
    ex, ec = d["EX"], d["EC"]
    assert len(ex.loc[ex.USUBJID.eq(ids["dosed"])]) == 3 and set(ex["EPOCH"]) == {"TREATMENT"}
    assert ec.loc[ec.USUBJID.eq(ids["dosed"]), ["ECOCCUR", "ECREASOC"]].values.tolist() == [
        ["N", "line occluded"]
    ]
    # hour 8 of day 1 is 8 h after the first dose given at hour 0 ...
    first = pd.Timestamp(dosed["RFXSTDTC"])
    assert pd.Timestamp(ec.loc[ec.USUBJID.eq(ids["dosed"]), "ECSTDTC"].item()) - first == pd.Timedelta(
        hours=8
    )
    # ... and when the first injection given was the one of hour 8, the missed ones of hour 0 were 8 h before
    kept = dm.loc[ids["kept"]]
    assert ex.loc[ex.USUBJID.eq(ids["kept"]), "EXSTDTC"].tolist() == [kept["RFXSTDTC"]] == [kept["RFXENDTC"]]
    missed = ec.loc[ec.USUBJID.eq(ids["kept"]), "ECSTDTC"].map(pd.Timestamp)
    assert (pd.Timestamp(kept["RFXSTDTC"]) - missed).tolist() == [pd.Timedelta(hours=8)] * 2
    ae = d["AE"]
    # verbatim as entered in CSV/Parquet; ASCII in the XPT (transport v5 text), and define.json says so
    assert ae[["AETERM", "AEDECOD", "AESER", "AESTDY"]].values.tolist() == [["Anämie", "Anaemia", "Y", 2.0]]
    assert pyreadstat.read_xport(str(tmp_path / "unblinded" / "ae.xpt"))[0]["AETERM"].tolist() == ["Anamie"]
    # the fatal event: seriousness criteria as collected (CDISC NY), action and outcome as CDISC terms, and
    # the end on the day of death
    fatal = ae.iloc[0]
    criteria = ["AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE"]
    assert fatal[criteria].tolist() == ["N", "N", "Y", "Y", "N", "N"]
    assert (fatal["AEACN"], fatal["AEOUT"], fatal["AEENDY"]) == ("DRUG WITHDRAWN", "FATAL", 3.0)
    assert fatal["AEENDTC"] == dm.loc[ids["dosed"], "DTHDTC"]
    assert all(dm["COUNTRY"] == "GRC")  # the test trial's three sites, placed by the protocol
    define = json.loads((tmp_path / "unblinded" / "define.json").read_text(encoding="utf-8"))
    assert define["xpt_ascii_transliterated"] == ["AE.AETERM"]
    assert d["SUPPAE"].set_index("QNAM").loc["AEEXPECT", "QVAL"] == "Y"
    ts = d["TS"].set_index("TSPARMCD")
    assert ts.loc["SDTIGVER", "TSVAL"] == "3.4" and ts.loc["SSTDTC", "TSVAL"] and ts.loc["TITLE", "TSVAL"]
    assert ts.loc["TPHASE", "TSVALNF"] == "UNK" and ts.loc["ACTSUB", "TSVAL"] == "4"
    assert set(d["TA"]["ARMCD"]) == {"PRECISION", "PLACEBO"}
    assert set(d["TI"]["IECAT"]) == {"INCLUSION", "EXCLUSION"}
    # the baseline draw (before the first dose) is the last observation before exposure; later ones are not
    lb = d["LB"]
    flagged = lb.loc[lb.LBLOBXFL.eq("Y"), ["USUBJID", "LBTESTCD", "VISITNUM"]].values.tolist()
    assert flagged == [[ids["dosed"], "FERRITIN", 1.0], [ids["kept"], "FERRITIN", 1.0]]
    # SV has one row per subject-day with a visit-based finding
    sv = d["SV"]
    for name in ("LB", "RS", "PR"):
        pairs = set(map(tuple, d[name][["USUBJID", "VISITNUM"]].values.tolist()))
        assert pairs <= set(map(tuple, sv[["USUBJID", "VISITNUM"]].values.tolist())), name


@pytest.mark.requirement("EXP-01")
def test_docs_list_every_dataset_and_variable_with_its_type_and_origin():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "conduct.md").read_text(encoding="utf-8")
    for d in DATASETS.values():
        line = next((x for x in text.splitlines() if x.startswith(f"**{d.name}** ({d.label}): ")), None)
        assert line is not None, d.name
        for v in d.variables:
            assert f"`{v.name}` {v.type[0]}/{v.origin[0]}" in line, (d.name, v.name)


@pytest.mark.slow
def test_a_virtual_trial_exports_consistent_sdtm(tmp_path):
    """A small virtual trial (the simulator drives the real services) checked against its own database."""
    from sqlalchemy import func, select

    from immunosep.simulate.runner import run_virtual_trial
    from immunosep.store.db import make_engine
    from immunosep.store.models import DoseRecord, Outcome, Patient, Withdrawal

    url = f"sqlite:///{tmp_path / 'trial.db'}"
    run_virtual_trial(url, seed=11, n_screened=36)
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            result = export.export_sdtm(s, None, tmp_path / "out", unblinded=True)
            given = s.execute(select(func.count()).where(DoseRecord.given.is_(True))).scalar_one()
            missed = s.execute(select(func.count()).where(DoseRecord.given.is_(False))).scalar_one()
            deaths = s.execute(select(func.count()).where(Outcome.death_day.is_not(None))).scalar_one()
            randomized = s.execute(
                select(func.count()).where(Patient.status.in_(("randomized", "withdrawn")))
            ).scalar_one()
            erased = s.execute(select(func.count()).where(Withdrawal.data_erased.is_(True))).scalar_one()
    finally:
        engine.dispose()
    d = {
        name: pd.read_sas(tmp_path / "out" / f"{name.lower()}.xpt", format="xport", encoding="utf-8")
        for name in result.rows
    }
    assert len(d["DM"]) == randomized + erased and d["DM"]["USUBJID"].is_unique
    assert (len(d["EX"]), len(d["EC"])) == (given, missed)
    assert (d["DS"]["DSDECOD"] == "DEATH").sum() == deaths == (d["DM"]["DTHFL"] == "Y").sum()
    for name, df in d.items():
        if "USUBJID" in df:
            assert set(df["USUBJID"]) <= set(d["DM"]["USUBJID"]), name
        seq = f"{name}SEQ"
        if seq in df and "USUBJID" in df:
            assert not df.duplicated(["USUBJID", seq]).any(), name
        for column in df.columns:
            if column.endswith("DY") and column != "VISITDY":
                assert not (df[column].round() == 0).any(), (name, column)
    # the simulator's AEs: serious with a criterion, CDISC terms, and the death put down to one fatal event
    ae, dm = d["AE"], d["DM"].set_index("USUBJID")
    criteria = ae[["AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE"]]
    assert len(ae) and (ae["AESER"] == "Y").all() and (criteria == "Y").any(axis=1).all()
    assert set(ae["AEOUT"]) <= {
        "RECOVERED/RESOLVED",
        "RECOVERED/RESOLVED WITH SEQUELAE",
        "NOT RECOVERED/NOT RESOLVED",
        "FATAL",
    }
    assert ((ae["AEOUT"] == "FATAL") == (ae["AESDTH"] == "Y")).all() and set(ae["AEACN"]) <= set(ACTIONS)
    fatal = ae.loc[ae["AEOUT"] == "FATAL"]
    assert fatal["USUBJID"].is_unique
    assert (fatal["AEENDTC"].to_numpy() == dm.loc[fatal["USUBJID"], "DTHDTC"].to_numpy()).all()
    dead_with_events = set(ae["USUBJID"]) & set(dm.index[dm["DTHFL"] == "Y"])
    assert set(fatal["USUBJID"]) == dead_with_events
    ended = ae.loc[ae["AEENDTC"] != ""]
    assert (ended["AEENDY"] >= ended["AESTDY"]).all()
    # the SOFA total is the sum of the six organ scores (a component not done scores 0)
    rs = d["RS"].assign(points=lambda x: x["RSSTRESN"].where(x["RSSTRESN"] > 1e-70, 0.0).fillna(0.0))
    wide = rs.pivot_table(index=["USUBJID", "VISITNUM"], columns="RSTESTCD", values="points", aggfunc="first")
    components = [f"SOFA010{i}" for i in range(1, 7)]
    np.testing.assert_array_equal(wide[components].sum(axis=1), wide["SOFA0107"])
    # every injection given falls in the treatment epoch; elements of a subject are contiguous
    assert set(d["EX"]["EPOCH"]) == {"TREATMENT"}
    se = d["SE"]
    for _usubjid, rows in se.groupby("USUBJID"):
        assert rows["SESTDTC"].iloc[1:].tolist() == rows["SEENDTC"].iloc[:-1].tolist()


@pytest.mark.requirement("EXP-01")
def test_write_xpt_refuses_what_transport_v5_cannot_hold(tmp_path):
    from immunosep.errors import ImmunoSepError

    frame = pd.DataFrame({"STUDYID": ["IMMUNOSEP"], "DOMAIN": ["TI"], "IETESTCD": ["INCL01"]})
    export.write_xpt(frame, tmp_path / "ok.xpt", "TI")
    assert (
        pyreadstat.read_xport(str(tmp_path / "ok.xpt"))[1].file_label == "Trial Inclusion/Exclusion Criteria"
    )
    with pytest.raises(ImmunoSepError, match="over 200 bytes"):
        export.write_xpt(frame.assign(IETEST=["x" * 201]), tmp_path / "long.xpt", "TI")
    assert not (tmp_path / "long.xpt").exists()


def test_ae_and_dm_carry_what_was_collected_and_leave_empty_what_was_not(trial, enroll):
    """A non-serious resolved event, an event recorded before revision 0005 (its criteria, action, outcome
    NULL) and a site moved to another country by the administrator, in AE and DM as SDTMIG has them."""
    from sqlalchemy import update

    from immunosep.conduct import sdtm, sites
    from immunosep.store.models import AdverseEvent

    inv2 = trial.actors["inv2"]
    with session_scope(trial.engine) as s:
        sites.set_site_country(s, trial.actors["admin"], "S02", "deu")
    p = enroll(investigator="inv2")
    with session_scope(trial.engine) as s:
        adverse_events.record_adverse_event(
            s,
            inv2,
            p,
            onset_day=2,
            term="Hypoxia",
            serious=False,
            relatedness="unrelated",
            expected=True,
            action="DOSE NOT CHANGED",
            outcome="RECOVERED/RESOLVED",
            end_day=4,
        )
        legacy = adverse_events.record_adverse_event(
            s,
            inv2,
            p,
            onset_day=5,
            term="Sepsis",
            serious=True,
            criteria=("life_threatening",),
            relatedness="unrelated",
            expected=True,
            action="UNKNOWN",
            outcome="UNKNOWN",
        )
        blank = {f"crit_{c}": None for c in adverse_events.SERIOUSNESS_CRITERIA}
        s.execute(
            update(AdverseEvent)
            .where(AdverseEvent.id == legacy.id)
            .values(action=None, outcome=None, **blank)
        )
    with session_scope(trial.engine) as s:
        frames = sdtm.sdtm_frames(s, blinded=True)
    ae = frames["AE"].set_index("AEDECOD")
    criteria = ["AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE"]
    resolved = ae.loc["Hypoxia"]
    assert resolved[["AESER", *criteria]].tolist() == ["N"] * 7
    assert (resolved["AEACN"], resolved["AEOUT"], resolved["AESTDY"], resolved["AEENDY"]) == (
        "DOSE NOT CHANGED",
        "RECOVERED/RESOLVED",
        2,
        4,
    )
    assert (date.fromisoformat(resolved["AEENDTC"]) - date.fromisoformat(resolved["AESTDTC"])).days == 2
    old = ae.loc["Sepsis"]
    assert old["AESER"] == "Y" and old[["AEACN", "AEOUT", "AEENDTC", *criteria]].tolist() == [""] * 9
    assert frames["DM"].set_index("SUBJID").loc[p, "COUNTRY"] == "DEU"
    assert set(frames["SUPPAE"]["QNAM"]) == {"AEEXPECT", "AESUSAR"}  # the new variables are standard ones
