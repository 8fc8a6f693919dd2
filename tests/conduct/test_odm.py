"""The CDISC ODM 1.3.2 export, validated against the ODM schema odmlib ships, and its content checked.

The trial: a dosed patient (daily CRF entered and corrected with a reason, doses, an adverse event, death),
a patient never dosed at another site, one withdrawn with data kept and one withdrawn with removal of data.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import odmlib
import pytest
from lxml import etree
from sqlalchemy import select

from immunosep.conduct import adverse_events, crf, dosing, odm, outcomes, withdrawal
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied
from immunosep.store.db import session_scope
from immunosep.store.models import Base, Patient, RandomizationSlot, User

SCHEMA = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
NS = {"odm": odm.ODM_NS}
#: Words that name an arm or a treatment (as tests/web/test_access_sweep.py), lower case.
ARM_WORDS = (
    "anakinra",
    "interferon",
    "saline",
    "placebo",
    "precision immunotherapy",
    "dummy",
    " arm ",
    '"arm"',
)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


@pytest.fixture
def world(trial, enroll):
    inv, inv2, pharm = (trial.actors[k] for k in ("inv1", "inv2", "pharm1"))
    dosed = enroll()
    other_site = enroll(investigator="inv2", ferritin=1000.0, hla_dr=3000.0)
    kept = enroll()
    erased = enroll()
    with session_scope(trial.engine) as s:
        crf.record_day(
            s, inv, dosed, 1, crf.DailyInputs(platelets_1e3_ul=80.0, gcs=14, creatinine=1.0, weight_kg=80.0)
        )
        crf.record_day(
            s, inv, dosed, 1,
            crf.DailyInputs(platelets_1e3_ul=80.0, gcs=13, creatinine=120.0, creatinine_unit="umol/L", weight_kg=80.0),
            reason="GCS and creatinine re-read from the chart",
        )  # fmt: skip
        crf.record_day(s, inv2, other_site, 1, crf.DailyInputs(gcs=15, bilirubin=0.8))
        crf.record_day(s, inv, kept, 1, crf.DailyInputs(gcs=12, creatinine=1.1, weight_kg=70.0))
        for route in ("iv", "sc"):
            dosing.record_dose(s, pharm, dosed, 1, route, 0, given=True)
        dosing.record_dose(s, pharm, dosed, 1, "iv", 8, given=False, missed_reason="line occluded")
        adverse_events.record_adverse_event(
            s, inv, dosed, onset_day=2, term="Anaemia", verbatim="Anämie", serious=True,
            relatedness="unrelated", expected=True, criteria=("life_threatening",),
            action="DOSE NOT CHANGED", outcome="NOT RECOVERED/NOT RESOLVED",
        )  # fmt: skip
        outcomes.record_outcome(s, inv, dosed, death_day=3)
    with session_scope(trial.engine) as s:
        withdrawal.withdraw(s, inv, kept, erase_data=False)
    withdrawal.withdraw_and_erase(trial.engine, inv, erased)
    return {"dosed": dosed, "other_site": other_site, "kept": kept, "erased": erased}


def _export(trial, who, **kw):
    actor = None if who is None else trial.actors[who]
    with session_scope(trial.engine) as s:
        return odm.odm_document(s, actor, **kw)


def _q(tag: str) -> str:
    return f"{{{odm.ODM_NS}}}{tag}"


def _subject_keys(doc) -> list[str]:
    return [sd.get("SubjectKey") for sd in doc.iterfind(".//odm:SubjectData", NS)]


@pytest.mark.requirement("ODM-1", "ODM-2")
def test_every_export_is_valid_odm_1_3_2_and_its_references_resolve(trial, world, schema) -> None:
    for who, kw in ((None, {"unblinded": True}), (None, {}), ("dm", {}), ("inv1", {}), ("mon1", {})):
        data, result = _export(trial, who, **kw)
        doc = etree.fromstring(data)
        schema.assertValid(doc)
        assert doc.get("FileType") == "Snapshot" and doc.get("ODMVersion") == "1.3.2"
        assert doc.get("FileOID") and datetime.fromisoformat(doc.get("CreationDateTime")).tzinfo is not None
        assert result.size_bytes == len(data) and result.blinded == (not kw)
        # the references the schema cannot check (OIDs are plain strings to it)
        mdv = doc.find("odm:Study/odm:MetaDataVersion", NS)
        defs = {tag: {e.get("OID"): e for e in mdv.iterfind(f"odm:{tag}", NS)} for tag in
                ("StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList")}  # fmt: skip
        units = {m.get("OID") for m in doc.iterfind(".//odm:BasicDefinitions/odm:MeasurementUnit", NS)}
        for ref, tag, attr in (
            ("StudyEventRef", "StudyEventDef", "StudyEventOID"),
            ("FormRef", "FormDef", "FormOID"),
            ("ItemGroupRef", "ItemGroupDef", "ItemGroupOID"),
            ("ItemRef", "ItemDef", "ItemOID"),
            ("CodeListRef", "CodeList", "CodeListOID"),
        ):
            assert {e.get(attr) for e in mdv.iter(_q(ref))} == set(defs[tag]), ref
        assert {e.get("MeasurementUnitOID") for e in doc.iter(_q("MeasurementUnitRef"))} <= units
        for sed in doc.iterfind(".//odm:StudyEventData", NS):
            forms = {
                r.get("FormOID")
                for r in defs["StudyEventDef"][sed.get("StudyEventOID")].iterfind("odm:FormRef", NS)
            }
            for fd in sed.iterfind("odm:FormData", NS):
                assert fd.get("FormOID") in forms, (sed.get("StudyEventOID"), fd.get("FormOID"))
                groups = {
                    r.get("ItemGroupOID")
                    for r in defs["FormDef"][fd.get("FormOID")].iterfind("odm:ItemGroupRef", NS)
                }
                for igd in fd.iterfind("odm:ItemGroupData", NS):
                    assert igd.get("ItemGroupOID") in groups
                    items = {
                        r.get("ItemOID")
                        for r in defs["ItemGroupDef"][igd.get("ItemGroupOID")].iterfind("odm:ItemRef", NS)
                    }
                    assert {i.get("ItemOID") for i in igd.iterfind("odm:ItemData", NS)} <= items
        # the daily CRF has one event per study day and the biomarker draws on the protocol's days only
        with session_scope(trial.engine) as s:
            p = protocol_of(s)
        days = [e for e in defs["StudyEventDef"] if e.startswith("SE.day_")]
        assert days == [f"SE.day_{d}" for d in range(1, crf.MAX_STUDY_DAY + 1)]
        with_draws = [d for d in range(1, crf.MAX_STUDY_DAY + 1) if "F.biomarkers" in
                      {r.get("FormOID") for r in defs["StudyEventDef"][f"SE.day_{d}"].iterfind("odm:FormRef", NS)}]  # fmt: skip
        assert with_draws == p.biospecimens.days


def _parse(data_type: str, text: str):
    return {
        "integer": int,
        "float": float,
        "boolean": {"true": True, "false": False}.__getitem__,
        "datetime": datetime.fromisoformat,
    }.get(data_type, str)(text)


def _same(stored, exported) -> bool:
    if isinstance(stored, bool) or isinstance(exported, bool):
        return stored is exported
    return stored == exported


@pytest.mark.requirement("ODM-3", "ODM-4")
def test_values_and_audit_records_equal_the_stores(trial, world) -> None:
    """Every ItemData is found through its audit record's entry in the trail, and equals the stored value."""
    from immunosep.store.models import AuditEntry

    data, result = _export(trial, None, unblinded=True)
    doc = etree.fromstring(data)
    item_type = {i.get("OID"): i.get("DataType") for i in doc.iter(_q("ItemDef"))}
    symbol = {
        m.get("OID"): m.findtext("odm:Symbol/odm:TranslatedText", namespaces=NS)
        for m in doc.iter(_q("MeasurementUnit"))
    }
    users = {u.get("OID"): u for u in doc.iterfind("odm:AdminData/odm:User", NS)}
    locations = {loc.get("OID") for loc in doc.iterfind("odm:AdminData/odm:Location", NS)}
    named = {r.get("UserOID") for r in doc.iter(_q("UserRef"))}
    assert named == set(users) and result.users == tuple(sorted(users))  # AdminData: exactly the users named
    checked = 0
    with session_scope(trial.engine) as s:
        entries = {e.id: e for e in s.execute(select(AuditEntry)).scalars()}
        names = {u.id: u.username for u in s.execute(select(User)).scalars()}
        for rec in doc.iter(_q("AuditRecord")):
            user = rec.find("odm:UserRef", NS).get("UserOID")
            assert user in users, user  # every audit record's user is in AdminData
            assert rec.find("odm:LocationRef", NS).get("LocationOID") in locations
            entry = entries[int(rec.findtext("odm:SourceID", namespaces=NS).removeprefix("audit_log:"))]
            assert rec.findtext("odm:DateTimeStamp", namespaces=NS) == entry.at
            assert user == ("USR.SYSTEM" if entry.user_id is None else f"USR.{entry.user_id}")
            if entry.user_id is not None:
                assert users[user].findtext("odm:LoginName", namespaces=NS) == names[entry.user_id]
        for sd in doc.iterfind(".//odm:SubjectData", NS):
            patient = s.execute(
                select(Patient).where(Patient.pseudonym == sd.get("SubjectKey"))
            ).scalar_one_or_none()
            for igd in sd.iter(_q("ItemGroupData")):
                group = igd.get("ItemGroupOID").removeprefix("IG.")
                table = Base.metadata.tables[odm.GROUP_TABLE[group]]
                for idd in igd.iterfind("odm:ItemData", NS):
                    item = idd.get("ItemOID").removeprefix(f"IT.{group}.")
                    entry = entries[
                        int(
                            idd.findtext("odm:AuditRecord/odm:SourceID", namespaces=NS).removeprefix(
                                "audit_log:"
                            )
                        )
                    ]
                    assert entry.table_name == table.name and entry.action in ("insert", "update")
                    if table.name not in ("withdrawals", "randomization_slots"):  # no patient at insert
                        assert entry.subject_id == patient.id
                    row = s.execute(select(table).where(table.c.id == int(entry.row_id))).one()
                    if table.name == "eligibility_answers":
                        assert row.question == item
                        stored = json.loads(row.answer)
                        stored = ",".join(stored) if isinstance(stored, list) else stored
                    else:
                        stored = getattr(row, item)
                        assert entry.action == "insert" or entry.field in (
                            item,
                            odm.UNIT_COLUMNS.get((table.name, item)),
                        )
                    assert _same(stored, _parse(item_type[idd.get("ItemOID")], idd.get("Value"))), (
                        group,
                        item,
                    )
                    unit = idd.find("odm:MeasurementUnitRef", NS)
                    if (table.name, item) in odm.UNIT_COLUMNS:
                        assert symbol[unit.get("MeasurementUnitOID")] == getattr(
                            row, odm.UNIT_COLUMNS[(table.name, item)]
                        )
                    checked += 1
    assert checked == result.item_data > 50
    # the correction of day 1: the new values, in the unit entered, with the reason given
    day1 = doc.find(
        f".//odm:SubjectData[@SubjectKey='{world['dosed']}']/odm:StudyEventData[@StudyEventOID='SE.day_1']//odm:ItemGroupData[@ItemGroupOID='IG.daily']",
        NS,
    )
    values = {i.get("ItemOID"): i for i in day1.iterfind("odm:ItemData", NS)}
    creatinine = values["IT.daily.creatinine"]
    assert creatinine.get("Value") == "120.0"
    assert symbol[creatinine.find("odm:MeasurementUnitRef", NS).get("MeasurementUnitOID")] == "umol/L"
    for oid in ("IT.daily.creatinine", "IT.daily.gcs"):
        reason = values[oid].findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=NS)
        assert reason == "GCS and creatinine re-read from the chart"
    assert values["IT.daily.platelets_1e3_ul"].find("odm:AuditRecord/odm:ReasonForChange", NS) is None


@pytest.mark.requirement("ODM-5")
def test_every_patient_in_scope_appears_once(trial, world) -> None:
    with session_scope(trial.engine) as s:
        everyone = sorted(s.execute(select(Patient.pseudonym)).scalars())
    everyone = sorted([*everyone, world["erased"]])
    for who in (None, "dm"):
        keys = _subject_keys(etree.fromstring(_export(trial, who)[0]))
        assert keys == everyone
    erased = etree.fromstring(_export(trial, "dm")[0]).find(
        f".//odm:SubjectData[@SubjectKey='{world['erased']}']", NS
    )
    assert [e.get("StudyEventOID") for e in erased.iterfind("odm:StudyEventData", NS)] == ["SE.withdrawal"]
    values = {i.get("ItemOID"): i.get("Value") for i in erased.iter(_q("ItemData"))}
    assert values["IT.withdrawal.data_erased"] == "true"


@pytest.mark.requirement("ODM-6")
def test_an_investigators_export_holds_only_its_site(trial, world) -> None:
    for who, site in (("inv1", "S01"), ("inv2", "S02"), ("mon1", "S01")):
        data, _ = _export(trial, who)
        doc = etree.fromstring(data)
        keys = _subject_keys(doc)
        assert keys and all(k.startswith(f"{site}-") for k in keys), (who, keys)
        assert {r.get("LocationOID") for r in doc.iter(_q("SiteRef"))} == {f"LOC.{site}"}
        admin_sites = {
            loc.get("OID") for loc in doc.iterfind("odm:AdminData/odm:Location[@LocationType='Site']", NS)
        }
        assert admin_sites == {f"LOC.{site}"}, who  # nor another site's staff
        others = [p for p in world.values() if not p.startswith(f"{site}-")]
        assert not any(p.encode() in data for p in others), who
    assert _subject_keys(etree.fromstring(_export(trial, "inv2")[0])) == [world["other_site"]]


@pytest.mark.requirement("ODM-7")
def test_a_blinded_export_holds_no_arm_kit_or_treatment(trial, world) -> None:
    import re

    forbidden = re.compile(
        r"anakinra|interferon|saline|placebo|precision immunotherapy|dummy|\barms?\b|\"arm\""
    )
    with session_scope(trial.engine) as s:
        slots = (
            s.execute(select(RandomizationSlot).where(RandomizationSlot.patient_id.is_not(None)))
            .scalars()
            .all()
        )
        kits = [slot.kit_number for slot in slots]
        p = protocol_of(s)
    for who in (None, "dm", "inv1", "mon1"):
        data, result = _export(trial, who)
        text = data.decode().lower()
        assert result.blinded
        leak = forbidden.search(text)
        assert leak is None, (who, text[max(0, leak.start() - 200) : leak.end() + 100] if leak else "")
        assert not any(k.lower() in text for k in kits)
        for oid in (
            "IT.allocation.",
            "IT.dose.drug",
            "IT.dose.dose",
            "IT.dose.dummy",
            "F.unblinding",
            "CL.arm",
        ):
            assert oid.lower() not in text, (who, oid)
        assert all(r.label.lower() not in text for r in p.arms)
    unblinded = _export(trial, None, unblinded=True)[0].decode()
    arm = next(slot.arm for slot in slots if slot.patient_id is not None)
    assert 'ItemOID="IT.allocation.arm"' in unblinded and f'Value="{arm}"' in unblinded
    assert all(f'Value="{k}"' in unblinded for k in kits)


def test_who_may_export(trial, world) -> None:
    for who in ("lab", "admin", "dsmb", "pharm1"):
        with pytest.raises(AccessDenied):
            _export(trial, who)
    for who in ("dm", "inv1", "mon1"):
        with pytest.raises(AccessDenied, match="blinded data only"):
            _export(trial, who, unblinded=True)


@pytest.mark.requirement("ODM-8")
@pytest.mark.parametrize("blinded", [True, False])
def test_the_metadata_reads_back_as_the_same_crf_definition(trial, world, blinded, tmp_path) -> None:
    with session_scope(trial.engine) as s:
        p = protocol_of(s)
        result = odm.export_odm(s, None, tmp_path / "study.xml", unblinded=not blinded)
    assert result.path is not None and result.path.stat().st_size == result.size_bytes
    assert odm.read_crf_definition(result.path) == odm.crf_definition(p, blinded=blinded)


def test_range_checks_and_units_come_from_the_plausible_ranges_and_the_protocol(trial) -> None:
    with session_scope(trial.engine) as s:
        p = protocol_of(s)
    definition = odm.crf_definition(p, blinded=True)
    items = {(g.name, i.name): i for f in definition.forms for g in f.groups for i in g.items}
    creatinine = items[("daily", "creatinine")]
    assert creatinine.units == ["mg/dL", "umol/L"]
    bounds = {(c.unit, c.comparator): float(c.check_values[0]) for c in creatinine.range_checks}
    # clinical.units: creatinine 0.1-40 mg/dL; 1 mg/dL = 88.4 umol/L
    assert bounds == {
        ("mg/dL", "GE"): 0.1,
        ("mg/dL", "LE"): 40.0,
        ("umol/L", "GE"): 8.84,
        ("umol/L", "LE"): 3536.0,
    }
    ferritin = items[("biomarkers", "ferritin_ng_ml")]
    assert ferritin.units == ["ng/mL"]
    assert (
        max(float(c.check_values[0]) for c in ferritin.range_checks)
        == p.classification.ferritin_max_plausible
    )
    gcs = items[("daily", "gcs")]
    assert (gcs.data_type, [c.check_values[0] for c in gcs.range_checks]) == ("integer", ["3", "15"])
    assert items[("patient", "sex")].codelist == "sex" and items[("patient", "sex")].length == 8
    infection = {c.name: c for c in definition.codelists}["infection_state"]
    assert [c.code for c in infection.codes] == p.endpoints.infection_day15.levels


@pytest.mark.requirement("ODM-8")
def test_import_odm_writes_the_crf_section_a_protocol_file_takes(trial, tmp_path, capsys) -> None:
    """export metadata -> `immunosep protocol import-odm` -> [crf] in a protocol file -> the same definition."""
    import tomllib

    from immunosep.cli import main
    from immunosep.protocol import load_protocol
    from immunosep.protocol.loader import bundled_protocol_path

    with session_scope(trial.engine) as s:
        p = protocol_of(s)
        odm.export_odm(s, None, tmp_path / "study.xml")
    with pytest.raises(SystemExit) as exc:
        main(["protocol", "import-odm", str(tmp_path / "study.xml"), "--out", str(tmp_path / "crf.toml")])
    assert exc.value.code in (0, None), capsys.readouterr()
    section = (tmp_path / "crf.toml").read_text(encoding="utf-8")
    protocol_file = tmp_path / "protocol.toml"
    protocol_file.write_text(
        bundled_protocol_path().read_text(encoding="utf-8") + "\n" + section, encoding="utf-8"
    )
    loaded = load_protocol(protocol_file)
    assert loaded.crf == odm.crf_definition(p, blinded=True)
    assert loaded.model_copy(update={"crf": None}) == p
    assert tomllib.loads(section)["crf"]["events"][0]["name"] == "screening"
    with pytest.raises(SystemExit) as exc:
        main(["protocol", "import-odm", str(protocol_file)])
    assert exc.value.code == 2 and "cannot read the ODM file" in capsys.readouterr().err


def test_read_crf_definition_of_another_systems_study() -> None:
    """A study written elsewhere: no Protocol element, EnumeratedItem code lists, types the CRF model lacks."""
    xml = b"""<?xml version="1.0" encoding="UTF-8"?>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" FileType="Snapshot" FileOID="X" CreationDateTime="2024-01-01T00:00:00">
 <Study OID="S"><GlobalVariables><StudyName>s</StudyName><StudyDescription>d</StudyDescription>
  <ProtocolName>p</ProtocolName></GlobalVariables>
  <MetaDataVersion OID="V1" Name="v1">
   <StudyEventDef OID="SE.BASE" Name="Baseline" Repeating="No" Type="Scheduled"><FormRef FormOID="F.VS" Mandatory="Yes"/></StudyEventDef>
   <FormDef OID="F.VS" Name="Vital signs" Repeating="No"><ItemGroupRef ItemGroupOID="IG.VS" Mandatory="Yes"/></FormDef>
   <ItemGroupDef OID="IG.VS" Name="VS" Repeating="Yes">
    <ItemRef ItemOID="IT.DATE" Mandatory="Yes"/><ItemRef ItemOID="IT.POS" Mandatory="No"/><ItemRef ItemOID="IT.HR" Mandatory="No"/>
   </ItemGroupDef>
   <ItemDef OID="IT.DATE" Name="VSDAT" DataType="partialDate"/>
   <ItemDef OID="IT.POS" Name="VSPOS" DataType="text" Length="8"><CodeListRef CodeListOID="CL.POS"/></ItemDef>
   <ItemDef OID="IT.HR" Name="HR" DataType="double"><Description><TranslatedText>Heart rate</TranslatedText></Description>
    <RangeCheck Comparator="LT" SoftHard="Soft"><CheckValue>300</CheckValue></RangeCheck></ItemDef>
   <CodeList OID="CL.POS" Name="Position" DataType="text"><EnumeratedItem CodedValue="SUPINE"/><EnumeratedItem CodedValue="SITTING"/></CodeList>
  </MetaDataVersion></Study></ODM>"""
    crf_def = odm.read_crf_definition(xml)
    (group,) = crf_def.forms[0].groups
    assert [(e.name, e.forms) for e in crf_def.events] == [("Baseline", ["Vital signs"])]
    assert group.repeating and [i.name for i in group.items] == ["VSDAT", "VSPOS", "HR"]
    date, position, rate = group.items
    assert (date.data_type, date.mandatory, position.length, position.codelist) == (
        "text",
        True,
        8,
        "Position",
    )
    assert (rate.data_type, rate.label, rate.range_checks[0].hard) == ("float", "Heart rate", False)
    assert [c.code for c in crf_def.codelists[0].codes] == ["SUPINE", "SITTING"]
