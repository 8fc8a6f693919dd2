"""define.xml of the SDTM export (conduct/sdtm/define_xml.py) and the shared writer (conduct/define_xml.py).

The export of a small locked trial, blinded and unblinded, is checked by tests/define_checks.py: valid
against CDISC's Define-XML 2.1 schema (odmlib's copy), read by odmlib with every OID reference defined, one
ItemGroupDef per XPT with the same variables, labels and types and lengths that hold every value, every
value of a coded variable in its codelist, and the stylesheet renders every dataset.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from define_checks import NS, check_define, define_schema, render_html
from immunosep.conduct import adverse_events, crf, dosing, export, lock, outcomes, withdrawal
from immunosep.conduct.define_xml import (
    DatasetSpec,
    DefineSpec,
    Document,
    ItemSpec,
    Origin,
    Standard,
    lookup,
    measure,
    write_define,
)
from immunosep.conduct.sdtm import DATASETS
from immunosep.conduct.sdtm.define_xml import METHODS, VALUE_LEVEL
from immunosep.protocol import default_protocol
from immunosep.store.db import session_scope


@pytest.fixture
def db_url(_templates, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """SQLite only: the export is tested on both backends by test_sdtm_export.py; define.xml is written
    from the frames it builds, so a second backend would add run time and nothing else."""
    path = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite(), path)
    return f"sqlite:///{path}"


@pytest.fixture
def exported(trial, enroll, tmp_path):  # type: ignore[no-untyped-def]
    inv, pharm, dm = trial.actors["inv1"], trial.actors["pharm1"], trial.actors["dm"]
    dosed, never, erased = enroll(), enroll(ferritin=1000.0, hla_dr=3000.0), enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(
            s, inv, dosed, 1, crf.DailyInputs(platelets_1e3_ul=80.0, gcs=14, creatinine=1.0, weight_kg=80.0)
        )
        crf.record_day(s, inv, dosed, 2, crf.DailyInputs(platelets_1e3_ul=120.0, gcs=15, weight_kg=80.0))
        for route in ("iv", "sc"):
            dosing.record_dose(s, pharm, dosed, 1, route, 0, given=True)
        dosing.record_dose(s, pharm, dosed, 1, "iv", 8, given=False, missed_reason="line occluded")
        adverse_events.record_adverse_event(
            s,
            inv,
            dosed,
            onset_day=2,
            term="Anaemia",
            verbatim="Anämie",
            serious=True,
            relatedness="unrelated",
            expected=False,
            criteria=("life_threatening",),
            action="DOSE NOT CHANGED",
            outcome="NOT RECOVERED/NOT RESOLVED",
        )
        outcomes.record_outcome(s, inv, dosed, death_day=3)
    withdrawal.withdraw_and_erase(trial.engine, inv, erased)
    with session_scope(trial.engine) as s:
        for p in (dosed, never):
            lock.lock_patient(s, dm, p)
        lock.lock_trial(s, dm)
    with session_scope(trial.engine) as s:
        export.export_sdtm(s, None, tmp_path / "unblinded", unblinded=True)
        export.export_sdtm(s, dm, tmp_path / "blinded")
    return tmp_path


def test_both_exports_have_a_valid_define_that_describes_every_xpt(exported: Path) -> None:
    p = default_protocol()
    for which in ("unblinded", "blinded"):
        folder = exported / which
        doc = check_define(folder)
        mdv = doc.find("odm:Study/odm:MetaDataVersion", NS)
        names = [g.get("Name") for g in mdv.findall("odm:ItemGroupDef", NS)]
        assert sorted(names) == sorted(DATASETS)
        # SDTMIG 3.4 and CDISC CT are named; the XPT files are the leaves
        assert {
            (s.get("Name"), s.get("Version")) for s in mdv.iterfind("def:Standards/def:Standard", NS)
        } >= {("SDTMIG", "3.4")}
        # value-level metadata: LB by LBTESTCD, RS by RSTESTCD, SUPP-- QVAL by QNAM
        vl = {v.get("OID") for v in mdv.findall("def:ValueListDef", NS)}
        assert {"VL.LB.LBORRES", "VL.RS.RSORRES", "VL.SUPPDM.QVAL", "VL.SUPPAE.QVAL"} <= vl
        # MedDRA is an external dictionary, the SEX codelist carries its NCI codes
        assert (
            mdv.find("odm:CodeList[@OID='CL.MEDDRA']/odm:ExternalCodeList", NS).get("Dictionary") == "MedDRA"
        )
        sex = mdv.find("odm:CodeList[@OID='CL.SEX']", NS)
        assert sex.find("odm:Alias", NS).get("Name") == "C66731"
        # no derived variable falls back on the generic method
        generic = [
            m.get("OID")
            for m in mdv.findall("odm:MethodDef", NS)
            if "Derived by the export" in "".join(m.itertext())
        ]
        assert generic == []
        html = render_html(folder)
        for name in names:
            assert f'id="IG.{name}"' in html and f"{name.lower()}.xpt" in html
        assert "Algorithm: Study day" in html
        if which == "blinded":
            body = (folder / "define.xml").read_text(encoding="utf-8")
            assert "IT.DM.ARMCD" not in body and "IT.EX.EXDOSE" not in body
            for word in [a.label for a in p.arms] + [r.drug for r in p.regimen if not r.dummy]:
                assert word.lower() not in body.lower(), word
    # the unblinded export describes the arm variables
    unblinded = (exported / "unblinded" / "define.xml").read_text(encoding="utf-8")
    assert 'ItemOID="IT.DM.ARMCD"' in unblinded and 'ItemOID="IT.EX.EXDOSE"' in unblinded


def test_every_derived_sdtm_variable_has_its_own_method() -> None:
    missing = [
        f"{d.name}.{v.name}"
        for d in DATASETS.values()
        for v in d.variables
        if v.origin == "Derived" and not lookup(METHODS, d.name, v.name)
    ]
    assert missing == []
    assert lookup(METHODS, "AE", "AESTDY") == "--DY" and lookup(METHODS, "AE", "AESEQ") == "AESEQ"
    assert lookup(METHODS, "DM", "RFSTDTC") == "DM.RFSTDTC"
    for name, (by, results) in VALUE_LEVEL.items():
        assert {by, *results} <= set(DATASETS[name].names()), name


@pytest.mark.parametrize(
    ("values", "kind", "name", "expected"),
    [
        # integers: digits of the widest value, sign included
        ([1.0, 12.0, -305.0, math.nan], "Num", "AVAL", ("integer", 4, None, False)),
        # floats: 12.125 has 5 digits, 3 after the point; 0.5 has 2 and 1
        ([12.125, 0.5], "Num", "AVAL", ("float", 5, 3, False)),
        ([math.nan], "Num", "AVAL", ("integer", 1, None, True)),
        # text: bytes of UTF-8, so an accent counts twice
        (["Anämie", "ab", ""], "Char", "AETERM", ("text", 7, None, False)),
        (["", ""], "Char", "AEACN", ("text", 1, None, True)),
        (["2026-01-31", ""], "Char", "AESTDTC", ("date", None, None, False)),
        (["2026-01-31T08:00:00"], "Char", "EXSTDTC", ("datetime", None, None, False)),
        (["2026-01-31", "2026-01-31T08:00:00"], "Char", "DSSTDTC", ("partialDatetime", None, None, False)),
        (["P15D", ""], "Char", "TEDUR", ("durationDatetime", None, None, False)),
        (["not a date"], "Char", "XXDTC", ("text", 10, None, False)),
    ],
)
def test_measure_takes_type_and_length_from_the_values(values, kind, name, expected) -> None:  # type: ignore[no-untyped-def]
    m = measure(pd.Series(values, dtype="float64" if kind == "Num" else object), kind, name)
    assert (m.data_type, m.length, m.significant_digits, m.has_no_data) == expected


def _tiny_spec(documents: tuple[Document, ...]) -> DefineSpec:
    item = ItemSpec(
        "IT.XX.STUDYID", "STUDYID", "Study Identifier", "text", 9, None, Origin("Assigned", "Sponsor")
    )
    dataset = DatasetSpec(
        "XX", "Example", "One record per study", "TRIAL DESIGN", "Tabulation", "xx.xpt", (item,)
    )
    return DefineSpec(
        "S", "S", "Study", "P", "V1", "test", (Standard("STD.1", "SDTMIG", "IG", "3.4"),), (dataset,), (), (),
        documents=documents,
    )  # fmt: skip


def test_documents_are_linked_only_when_their_file_exists(tmp_path: Path) -> None:
    (tmp_path / "acrf.pdf").write_bytes(b"%PDF-1.4\n")
    docs = (
        Document("LF.ACRF", "acrf.pdf", "Annotated CRF", "acrf"),
        Document("LF.GUIDE", "guide.pdf", "Reviewer's guide"),
    )
    path, xsl = write_define(_tiny_spec(docs), tmp_path)
    doc = etree.parse(str(path))
    assert define_schema().validate(doc), define_schema().error_log
    mdv = doc.find("odm:Study/odm:MetaDataVersion", NS)
    assert [d.get("leafID") for d in mdv.iterfind("def:AnnotatedCRF/def:DocumentRef", NS)] == ["LF.ACRF"]
    assert mdv.find("def:SupplementalDoc", NS) is None
    assert xsl.read_bytes().startswith(b"<?xml")
    html = str(etree.XSLT(etree.parse(str(xsl)))(doc))
    assert 'href="acrf.pdf"' in html and "guide.pdf" not in html
