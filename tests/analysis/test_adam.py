"""The ADaM submission view (analysis/adam.py) and its files (analysis/writers.py).

Expected values are worked by hand from the hand-built trial of ``handmade.py`` with the dates below; SAS
dates are computed here with ``datetime.date`` arithmetic (days since 1960-01-01), independently of the
pandas code under test. Every XPT file is read back by three readers the project did not write: pyreadstat
(ReadStat), the ``xport`` package (a pure-Python SAS transport v5 reader) and ``pandas.read_sas``.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import xport.v56
from handmade import handmade_raw

from define_checks import NS, check_define
from immunosep.analysis.adam import (
    DTYPE_DEATH_WORST,
    AdamDataset,
    Variable,
    adam_view,
    check_variables,
)
from immunosep.analysis.datasets import AnalysisDatasets, derive_datasets
from immunosep.analysis.writers import write_datasets, xpt_frame
from immunosep.conduct import adverse_events, crf, dosing, export, lock, outcomes, withdrawal
from immunosep.conduct.blinding import MASKED_TREATMENT
from immunosep.conduct.cdisc_ids import aeseq_order
from immunosep.errors import ImmunoSepError
from immunosep.pipeline import run_analysis
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol
from immunosep.store.db import session_scope

NAN = float("nan")
#: the xport package (3.6) builds pandas Series with a keyword pandas 2 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:The 'fastpath' keyword:DeprecationWarning")


def sas(y: int, m: int, d: int) -> float:
    """A SAS date: days since 1960-01-01."""
    return float((date(y, m, d) - date(1960, 1, 1)).days)


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return default_protocol()


@pytest.fixture(scope="module")
def ds(protocol: Protocol) -> AnalysisDatasets:
    """The hand-built trial with randomization and dosing dates; S03-0001 was randomized but never dosed,
    S01-0002 has a SOFA recorded on its day of death, S01-0001 reported two AEs out of onset order."""
    raw = handmade_raw()
    p = raw.patients.copy()
    p["randomized_at"] = pd.to_datetime(
        ["2024-03-01 10:00", "2024-03-05 09:00", "2024-03-10 23:30", "2024-03-12 08:00", "2024-04-10 12:00"]
    )
    p["first_dose_at"] = pd.to_datetime(
        ["2024-03-01 14:00", "2024-03-05 18:00", "2024-03-11 01:00", "2024-03-12 12:00", None]
    )
    p["last_dose_day"] = [15.0, 3.0, 6.0, 15.0, NAN]
    sofa = pd.concat(
        [raw.daily_sofa, pd.DataFrame([{"usubjid": "S01-0002", "day": 3, "sofa_total": 14.0}])],
        ignore_index=True,
    )
    raw = dataclasses.replace(
        raw,
        patients=p,
        daily_sofa=sofa,
        withdrawals=raw.withdrawals.assign(randomized_at=pd.to_datetime(["2024-04-02 10:00"])),
        adverse_events=raw.adverse_events.assign(ae_id=[7, 3, 9]),
    )
    return derive_datasets(raw, protocol)


@pytest.fixture(scope="module")
def view(ds: AnalysisDatasets, protocol: Protocol) -> dict[str, AdamDataset]:
    return adam_view(ds.as_dict(), protocol)


def _row(dataset: AdamDataset, subjid: str, **match: object) -> pd.Series:
    d = dataset.data
    mask = d["SUBJID"] == subjid
    for k, v in match.items():
        mask &= d[k] == v
    assert mask.sum() == 1, (subjid, match)
    return d.loc[mask].iloc[0]


# -- ADSL -------------------------------------------------------------------------------------------------
def test_adsl_identifiers_populations_and_dates(view: dict[str, AdamDataset]) -> None:
    adsl = view["adsl"]
    assert adsl.data["USUBJID"].tolist() == [f"IMMUNOSEP-{s}" for s in adsl.data["SUBJID"]]
    assert set(adsl.data["STUDYID"]) == {"IMMUNOSEP"}
    a = _row(adsl, "S01-0001")
    assert (a["RANDFL"], a["ITTFL"], a["FASFL"], a["SAFFL"]) == ("Y", "Y", "Y", "Y")
    assert (a["RANDDT"], a["TRTSDT"], a["TRTEDT"]) == (sas(2024, 3, 1), sas(2024, 3, 1), sas(2024, 3, 15))
    assert np.isnan(a["DTHDT"]) and a["DTHFL"] == ""
    assert a["LSTALVDT"] == sas(2024, 5, 29)  # last known alive on day 90
    assert (a["TRT01P"], a["TRT01A"], a["ARMCD"], a["AGEU"], a["SEX"]) == (
        "Precision immunotherapy",
        "Precision immunotherapy",
        "PRECISION",
        "YEARS",
        "M",
    )
    died = _row(adsl, "S01-0002")  # death on day 3, first dose 5 March
    assert (died["DTHDT"], died["DTHFL"], died["DTH28FL"]) == (sas(2024, 3, 7), "Y", "Y")
    assert died["LSTALVDT"] == sas(2024, 3, 7)  # the SOFA of the day of death: known alive that day
    late = _row(adsl, "S02-0001")  # randomized before midnight, dosed after it
    assert (late["RANDDT"], late["TRTSDT"]) == (sas(2024, 3, 10), sas(2024, 3, 11))
    never = _row(adsl, "S03-0001")  # randomized, never dosed: analysed, not in the safety population
    assert (never["ITTFL"], never["SAFFL"], np.isnan(never["TRTSDT"])) == ("Y", "N", True)
    assert (never["REFDT"], never["LSTALVDT"]) == (sas(2024, 4, 10), sas(2024, 4, 29))
    gone = _row(adsl, "S03-0002")  # consent withdrawn with removal of data
    assert (gone["RANDFL"], gone["ITTFL"], gone["FASFL"], gone["SAFFL"]) == ("Y", "N", "N", "N")
    assert (gone["RANDDT"], gone["PRIMFL"], gone["SEX"]) == (sas(2024, 4, 2), "", "")


def test_adsl_trial_variables_follow_the_internal_columns(
    view: dict[str, AdamDataset], ds: AnalysisDatasets
) -> None:
    adsl = view["adsl"].data.set_index("SUBJID")
    internal = ds.adsl.set_index("usubjid")
    pd.testing.assert_series_equal(
        adsl["MSOFAPW"], internal["mean_sofa_d2_9"].astype(float), check_names=False
    )
    assert (adsl["PRIMFL"] == internal["primary_endpoint"].map({1: "Y", 0: "N"}).fillna("")).all()
    assert (adsl["DTH90FL"] == internal["death_90d"].map({1: "Y", 0: "N"}).fillna("")).all()


# -- ADTTE ------------------------------------------------------------------------------------------------
def test_adtte_dates_and_descriptions(view: dict[str, AdamDataset]) -> None:
    tte, adsl = view["adtte"].data, view["adsl"].data.set_index("SUBJID")
    assert (tte["AVAL"] == tte["ADT"] - tte["STARTDT"] + 1).all()
    death = _row(view["adtte"], "S01-0002", PARAMCD="OS28")
    assert (death["CNSR"], death["AVAL"], death["EVNTDESC"], death["CNSDTDSC"]) == (0, 3, "DEATH", "")
    assert (death["ADT"], death["SRCDOM"], death["SRCVAR"]) == (
        adsl.loc["S01-0002", "DTHDT"],
        "ADSL",
        "DTHDT",
    )
    horizon = _row(view["adtte"], "S01-0001", PARAMCD="OS28")  # alive to day 90: censored at day 28
    assert (horizon["CNSR"], horizon["ADT"], horizon["EVNTDESC"]) == (
        1,
        sas(2024, 3, 28),
        "ALIVE AT END OF FOLLOW-UP",
    )
    last = _row(view["adtte"], "S01-0001", PARAMCD="OS90")  # last contact on day 90
    assert (last["CNSDTDSC"], last["SRCVAR"], last["ADT"]) == (
        "LAST CONTACT",
        "LSTALVDT",
        adsl.loc["S01-0001", "LSTALVDT"],
    )
    rev = _row(view["adtte"], "S02-0001", PARAMCD="SIDFREV")
    assert (rev["CNSR"], rev["AVAL"], rev["EVNTDESC"], rev["SRCVAR"]) == (0, 4, "SIDF REVERSAL", "SIDFRVDY")
    assert tte["SRCSEQ"].isna().all()


# -- ADAE -------------------------------------------------------------------------------------------------
def test_aeseq_order_is_onset_day_then_record_id() -> None:
    subject = ["B", "A", "A", "A", "A", "B"]
    onset = [1.0, 2.0, 2.0, 1.0, NAN, 1.0]
    record = [4, 5, 3, 9, 1, 2]
    assert aeseq_order(subject, onset, record) == [2, 3, 2, 1, 4, 1]
    with pytest.raises(ImmunoSepError, match="one subject"):
        aeseq_order(["A"], [1.0, 2.0], [1])


def test_adae_sequence_dates_and_flags(view: dict[str, AdamDataset]) -> None:
    ae = view["adae"]
    # S01-0001 reported anaemia (day 5, record 7) before atrial fibrillation (day 3, record 9)
    assert ae.data.loc[ae.data["SUBJID"] == "S01-0001", ["AESEQ", "AEDECOD"]].values.tolist() == [
        [1, "Atrial fibrillation"],
        [2, "Anaemia"],
    ]
    fib = _row(ae, "S01-0001", AESEQ=1)
    assert (fib["ASTDT"], fib["ASTDY"], fib["TRTEMFL"], fib["AESER"]) == (sas(2024, 3, 3), 3, "Y", "N")
    susar = _row(ae, "S01-0002", AESEQ=1)
    assert (susar["SUSARFL"], susar["ARELGR1"], susar["TRTA"]) == ("Y", "RELATED", "Placebo")


# -- ADSOFA -----------------------------------------------------------------------------------------------
def test_adsofa_bds_records(view: dict[str, AdamDataset], ds: AnalysisDatasets) -> None:
    sofa = view["adsofa"].data
    died = sofa.loc[(sofa["SUBJID"] == "S01-0002") & (sofa["AVISITN"] == 3)]
    # the day of death: the observed record (14) and the death-rule record (24) the endpoint uses
    assert died[["AVAL", "DTYPE", "ANL01FL", "CHG"]].values.tolist() == [
        [14.0, "", "", 2.0],
        [24.0, DTYPE_DEATH_WORST, "Y", 12.0],
    ]
    base = _row(view["adsofa"], "S01-0002", AVISITN=1)
    assert (base["ABLFL"], base["BASE"], base["AVISIT"], base["ADT"]) == ("Y", 12, "DAY 1", sas(2024, 3, 5))
    assert np.isnan(base["CHG"])
    locf = _row(view["adsofa"], "S02-0001", AVISITN=7)  # discharged on day 6 with SOFA 4
    assert (locf["AVAL"], locf["DTYPE"], locf["ANL01FL"]) == (4, "LOCF", "Y")
    no_base = sofa.loc[sofa["SUBJID"] == "S03-0001"]
    assert no_base["BASE"].isna().all() and (no_base["ABLFL"] == "").all()
    assert set(sofa["DTYPE"]) <= {"", "LOCF", DTYPE_DEATH_WORST}
    assert not sofa.duplicated(["USUBJID", "AVISITN", "DTYPE"]).any()
    # the analysis records reproduce the primary endpoint's mean of days 2-9 (internal ADSL)
    p = default_protocol().endpoints.primary
    window = sofa.loc[
        (sofa["ANL01FL"] == "Y") & sofa["AVISITN"].between(p.window_first_day, p.window_last_day)
    ]
    mean = window.groupby("SUBJID")["AVAL"].sum() / (p.window_last_day - p.window_first_day + 1)
    internal = ds.adsl.set_index("usubjid")["mean_sofa_d2_9"].dropna()
    pd.testing.assert_series_equal(mean.sort_index(), internal.sort_index(), check_names=False)


# -- names, labels and the files --------------------------------------------------------------------------
def test_every_name_and_label_fits_and_is_whole(view: dict[str, AdamDataset]) -> None:
    for dataset in view.values():
        assert len(dataset.name) <= 8 and len(dataset.label) <= 40
        for v in dataset.variables:
            assert len(v.name) <= 8 and v.name.isupper(), v
            assert 0 < len(v.label) <= 40 and v.label == v.label.strip(), v
            assert not v.label.endswith(("-", ",", "(", "/")), v  # a label cut mid-word or mid-phrase
            assert v.label.count("(") == v.label.count(")"), v
    with pytest.raises(ImmunoSepError, match="1-8"):
        check_variables((Variable("PRIMARYFL", "Primary", "Char", "Derived"),), "ADSL")
    with pytest.raises(ImmunoSepError, match="1-40"):
        check_variables((Variable("PRIMFL", "x" * 41, "Char", "Derived"),), "ADSL")


@pytest.fixture(scope="module")
def written(ds: AnalysisDatasets, protocol: Protocol, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("adam")
    write_datasets(ds.as_dict(), out, protocol)
    return out


@pytest.mark.requirement("EXP-03")
def test_every_xpt_reads_back_with_three_readers(written: Path, view: dict[str, AdamDataset]) -> None:
    for name, dataset in view.items():
        path = written / f"{name}.xpt"
        expected = xpt_frame(dataset)
        names = [v.name for v in dataset.variables]
        # ReadStat
        df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
        assert meta.table_name == dataset.name and meta.file_label == dataset.label
        assert meta.column_names == names
        assert meta.column_labels == [v.label for v in dataset.variables]
        for v in dataset.variables:
            if v.fmt:
                assert meta.original_variable_types[v.name].startswith("DATE9"), v
            assert meta.readstat_variable_types[v.name] == ("string" if v.kind == "Char" else "double"), v
        pd.testing.assert_frame_equal(df, expected, check_dtype=False)
        # xport (v5 reader): variable metadata from the member header it decodes (its Dataset copies the
        # dataset label onto every column with recent pandas, selik/xport#87), values from load()
        raw = path.read_bytes()
        first = next(xport.v56.MemberHeader.pattern.finditer(raw))
        header = xport.v56.MemberHeader.from_bytes(raw[: first.end(0)])
        assert (header.name, header.label) == (dataset.name, dataset.label)
        namestrs = list(header.values())
        assert [n.name for n in namestrs] == names
        for n, v in zip(namestrs, dataset.variables, strict=True):
            assert n.label == v.label, v
            assert (n.vtype == xport.VariableType.CHARACTER) == (v.kind == "Char"), v
            assert (n.format.name + "." if n.format.name else "") == (
                v.fmt.rstrip("0123456789.") + "." if v.fmt else ""
            ), v
        with path.open("rb") as f:
            (member,) = xport.v56.load(f).values()
        assert list(member.columns) == names
        pd.testing.assert_frame_equal(pd.DataFrame(member), expected, check_dtype=False)
        # pandas
        pdf = pd.read_sas(path, format="xport", encoding="utf-8")
        assert list(pdf.columns) == names
        pd.testing.assert_frame_equal(pdf, expected, check_dtype=False)


def test_csv_parquet_and_dictionary_agree_with_the_xpt(written: Path, view: dict[str, AdamDataset]) -> None:
    for name, dataset in view.items():
        expected = xpt_frame(dataset)
        csv = pd.read_csv(
            written / f"{name}.csv",
            keep_default_na=False,
            na_values={v.name: [""] for v in dataset.variables if v.kind == "Num"},
        )
        pd.testing.assert_frame_equal(csv, expected, check_dtype=False)
        pd.testing.assert_frame_equal(pd.read_parquet(written / f"{name}.parquet"), expected)
        dictionary = pd.read_csv(written / f"{name}_dictionary.csv", keep_default_na=False)
        assert dictionary["variable"].tolist() == [v.name for v in dataset.variables]
        assert dictionary["label"].tolist() == [v.label for v in dataset.variables]
        assert set(dictionary["origin"]) <= {"Predecessor", "Derived", "Assigned"}
        char = dictionary["type"] == "Char"
        lengths = [
            int(expected[v].astype(str).str.len().max() or 1) for v in dictionary.loc[char, "variable"]
        ]
        assert dictionary.loc[char, "length"].tolist() == [max(1, n) for n in lengths]


@pytest.mark.requirement("EXP-03", "BLIND-01")
def test_the_blinded_package_reveals_no_arm(ds: AnalysisDatasets, protocol: Protocol, tmp_path: Path) -> None:
    write_datasets(ds.as_dict(), tmp_path, protocol, blinded=True)
    revealing = [a.code for a in protocol.arms] + [a.label for a in protocol.arms]
    for path in sorted(tmp_path.iterdir()):
        if path.suffix == ".parquet":
            body = pd.read_parquet(path).to_csv()
        else:
            body = path.read_bytes().decode("latin-1")
        for word in revealing:
            assert word.lower() not in body.lower(), (path.name, word)
    adsl, _ = pyreadstat.read_xport(str(tmp_path / "adsl.xpt"))
    assert "ARMCD" not in adsl.columns and "ARM" not in adsl.columns
    assert set(adsl["TRT01P"]) == set(adsl["TRT01A"]) == {MASKED_TREATMENT}
    for name, column in (("adae", "TRTA"), ("adtte", "TRTP"), ("adsofa", "TRTA")):
        frame, _ = pyreadstat.read_xport(str(tmp_path / f"{name}.xpt"))
        assert set(frame[column]) <= {MASKED_TREATMENT}


# -- traceability to SDTM ---------------------------------------------------------------------------------
@pytest.mark.requirement("EXP-03")
def test_every_adam_subject_and_adverse_event_traces_to_sdtm(trial, enroll, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A locked trial exported as SDTM (conduct.export) and analysed: every ADaM USUBJID is an SDTM
    subject and every ADAE (USUBJID, AESEQ) is the SDTM AE record of the same event (term and onset day).

    The erased subject keeps an identifiers-only DM row. AEs are entered out of onset order (day 4 before
    day 2): both numberings follow :func:`aeseq_order` (onset day, then record id), not the order of entry.
    """
    inv, pharm = trial.actors["inv1"], trial.actors["pharm1"]
    ids = {name: enroll() for name in ("dosed", "never", "erased")}
    sick = crf.DailyInputs(platelets_1e3_ul=40.0, gcs=8, creatinine=1.0, weight_kg=80.0)
    with session_scope(trial.engine) as s:
        for p in ids.values():
            crf.record_day(s, inv, p, 1, sick)
        dosing.record_dose(s, pharm, ids["dosed"], 1, "iv", 0, given=True)
        for day, term, outcome, end in (
            (4, "Atrial fibrillation", "NOT RECOVERED/NOT RESOLVED", None),
            (2, "Anaemia", "RECOVERED/RESOLVED", 5),
        ):
            adverse_events.record_adverse_event(
                s,
                inv,
                ids["dosed"],
                onset_day=day,
                term=term,
                serious=False,
                relatedness="unrelated",
                expected=True,
                action="DOSE NOT CHANGED",
                outcome=outcome,
                end_day=end,
            )
        adverse_events.record_adverse_event(
            s,
            inv,
            ids["never"],
            onset_day=1,
            term="Anaemia",
            serious=True,
            relatedness="unrelated",
            expected=True,
            criteria=("hospitalization",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
        for p in ids.values():
            outcomes.record_outcome(s, inv, p, last_known_alive_day=28, infection_day15="resolution")
    withdrawal.withdraw_and_erase(trial.engine, inv, ids["erased"])
    with session_scope(trial.engine) as s:
        for p in ("dosed", "never"):
            lock.lock_patient(s, trial.actors["dm"], ids[p])
    with session_scope(trial.engine) as s:
        lock.lock_trial(s, trial.actors["dm"])
    with session_scope(trial.engine) as s:
        export.export_sdtm(s, None, tmp_path / "sdtm", unblinded=True)
    run_analysis(trial.url, tmp_path / "analysis")
    sdtm = {d: pd.read_csv(tmp_path / "sdtm" / f"{d}.csv", keep_default_na=False) for d in ("dm", "ds", "ae")}
    adam = {
        d: pyreadstat.read_xport(str(tmp_path / "analysis" / "datasets" / f"{d}.xpt"))[0]
        for d in ("adsl", "adsofa", "adtte", "adae")
    }
    in_dm = set(sdtm["dm"]["USUBJID"])
    assert set(sdtm["ds"]["USUBJID"]) <= in_dm
    for name, frame in adam.items():
        assert set(frame["USUBJID"]) <= in_dm, name
    adsl = adam["adsl"].set_index("SUBJID")
    assert (adsl.loc[ids["dosed"], "SAFFL"], adsl.loc[ids["never"], "SAFFL"]) == ("Y", "N")
    assert (adsl.loc[ids["never"], "ITTFL"], adsl.loc[ids["erased"], "ITTFL"]) == ("Y", "N")
    dm = sdtm["dm"].set_index("USUBJID")
    for subjid, row in adsl.loc[[ids["dosed"], ids["never"]]].iterrows():
        assert row["ARMCD"] == str(dm.loc[row["USUBJID"], "ARMCD"]).upper()
        assert row["SITEID"] == dm.loc[row["USUBJID"], "SITEID"]
        assert row["USUBJID"] == f"{dm.loc[row['USUBJID'], 'STUDYID']}-{subjid}"
    assert pd.isna(adsl.loc[ids["never"], "TRTSDT"]) and not pd.isna(adsl.loc[ids["dosed"], "TRTSDT"])
    ae = sdtm["ae"].set_index(["USUBJID", "AESEQ"])
    copied = ["AESER", "AESCONG", "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE", "AEACN", "AEOUT"]
    for _, row in adam["adae"].iterrows():
        source = ae.loc[(row["USUBJID"], int(row["AESEQ"]))]
        assert (source["AEDECOD"], int(source["AESTDY"])) == (row["AEDECOD"], int(row["ASTDY"]))
        # ADaMIG OCCDS: the SDTM AE qualifiers are carried as they are, the end as AENDT/AENDY
        assert [str(source[c]) for c in copied] == [row[c] for c in copied]
        if source["AEENDY"] == "":
            assert pd.isna(row["AENDY"]) and pd.isna(row["AENDT"])
        else:
            assert row["AENDY"] == float(source["AEENDY"])
            assert (row["AENDT"] - row["ASTDT"]).days == row["AENDY"] - row["ASTDY"]
    resolved = adam["adae"].set_index(["SUBJID", "AESEQ"]).loc[(ids["dosed"], 1)]
    assert (resolved["AEOUT"], resolved["AENDY"], resolved["AESER"]) == ("RECOVERED/RESOLVED", 5.0, "N")
    serious = adam["adae"].set_index("SUBJID").loc[ids["never"]]
    assert (serious["AESER"], serious["AESHOSP"], serious["AESDTH"]) == ("Y", "Y", "N")
    assert len(adam["adae"]) == 3
    treatment_emergent = adam["adae"].set_index(["SUBJID", "AESEQ"])["TRTEMFL"]
    assert treatment_emergent.to_dict() == {
        (ids["dosed"], 1): "Y",
        (ids["dosed"], 2): "Y",
        (ids["never"], 1): "",
    }
    # both packages carry a valid define.xml; the analysis's names the statistical report beside it
    check_define(tmp_path / "sdtm")
    define = check_define(tmp_path / "analysis" / "datasets")
    refs = define.findall("odm:Study/odm:MetaDataVersion/def:SupplementalDoc/def:DocumentRef", NS)
    assert [r.get("leafID") for r in refs] == ["LF.REPORT"]
