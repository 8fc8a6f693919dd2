"""CDISC ODM 1.3.2 export of the collected clinical data, and an ODM study's forms read back as a CRF definition.

The document (``FileType="Snapshot"``, ``ODMVersion="1.3.2"``, built with lxml) holds:

- **Study**: GlobalVariables, BasicDefinitions (units) and one MetaDataVersion with the Protocol (the
  schedule), a StudyEventDef per visit (screening, study days 1..:data:`~immunosep.conduct.crf.MAX_STUDY_DAY`
  of the daily CRF with the biomarker draws on the protocol's biospecimen days and the injections on the
  treatment days, day-15 infection state, follow-up to the last mortality day, adverse events, withdrawal),
  FormDefs, ItemGroupDefs, ItemDefs (DataType, Length of text, units, RangeChecks from
  :data:`immunosep.clinical.units.PLAUSIBLE` and the protocol) and CodeLists. The metadata is
  :func:`crf_definition` rendered as ODM; :func:`read_crf_definition` reads it back (any ODM 1.3 study).
- **AdminData**: the Users that made the changes in the file (``USR.SYSTEM`` for database access, the
  command line) and the Locations: the sites (``LOC.<site code>``), the central lab and the sponsor.
- **ClinicalData**: one SubjectData per patient in scope, keyed by pseudonym, with its SiteRef; every stored
  value as ItemData in the unit it was entered in. Each ItemData carries the AuditRecord of the audit-trail
  entry that gave it its current value (UserRef, LocationRef, DateTimeStamp, ReasonForChange for a
  correction, SourceID ``audit_log:<entry id>`` in the hash-chained trail of ``store.audit``); each
  ItemGroupData and SubjectData the entry that created its row.

A Snapshot holds current values: the old values of a correction stay in the audit trail
(``immunosep audit``, the patient's audit page). A blinded export (the default; the only one a blinded role
may ask for) carries no column :func:`immunosep.conduct.blinding.column_visible` hides (arm, kit, drug,
dose, dummy flag, emergency unblindings) and no audit record of an allocation table; a site-scoped role
exports the patients of its sites only (:func:`immunosep.conduct.access.scope_site_ids`).
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from lxml import etree
from sqlalchemy import Boolean, Float, Integer, String, Text, and_, or_, select
from sqlalchemy.orm import Session

from immunosep import __version__
from immunosep.clinical.sofa import COMPONENTS
from immunosep.clinical.units import PLAUSIBLE
from immunosep.conduct.access import Actor, scope_site_ids, trial
from immunosep.conduct.adverse_events import RELATEDNESS
from immunosep.conduct.blinding import audit_table_exported, column_visible
from immunosep.conduct.crf import CLINICAL_NAME, MAX_STUDY_DAY
from immunosep.conduct.permissions import can, require, role_can, site_scope
from immunosep.conduct.screening import CONSENT_GIVERS, SCORE_RANGES, SEXES, SOFA_MAX
from immunosep.conduct.trial import protocol_of
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.protocol.schema import (
    CrfCode,
    CrfCodeList,
    CrfDefinition,
    CrfEvent,
    CrfForm,
    CrfItem,
    CrfItemGroup,
    CrfRangeCheck,
    CrfUnit,
    Protocol,
)
from immunosep.store.models import AuditEntry, Base, Patient, Site, User, Withdrawal

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
ODM_VERSION = "1.3.2"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: The user of changes made with database access (the command line), which have no user id.
SYSTEM_USER = "USR.SYSTEM"
SPONSOR_LOCATION = "LOC.SPONSOR"
LAB_LOCATION = "LOC.LAB"

__all__ = [
    "ODM_NS",
    "ODM_VERSION",
    "OdmExport",
    "crf_definition",
    "export_odm",
    "odm_document",
    "read_crf_definition",
    "write_odm",
]

# -- the CRF definition ----------------------------------------------------------------------------------

#: Item group -> the table its rows come from (item names are the table's column names, except the
#: eligibility answers, one row per question).
GROUP_TABLE: Mapping[str, str] = {
    "patient": "patients",
    "screening_log": "screening_log",
    "eligibility": "eligibility_answers",
    "consent": "consents",
    "enrolment": "patients",
    "allocation": "randomization_slots",
    "daily": "daily_crf",
    "biomarkers": "biomarker_draws",
    "dose": "dose_log",
    "infection": "outcomes",
    "vital_status": "outcomes",
    "adverse_event": "adverse_events",
    "withdrawal": "withdrawals",
    "unblinding": "unblindings",
}
#: ``(table, item)`` -> the column holding the unit the value was entered in (ItemData MeasurementUnitRef).
UNIT_COLUMNS: Mapping[tuple[str, str], str] = {
    ("daily_crf", "bilirubin"): "bilirubin_unit",
    ("daily_crf", "creatinine"): "creatinine_unit",
    ("dose_log", "dose"): "unit",
}

# Questions of each group: (item, question, unit symbols or a PLAUSIBLE name, code list). The unit of an
# item named in PLAUSIBLE (directly or by ``crf.CLINICAL_NAME``) and its range come from there.
_Q = tuple[str, str] | tuple[str, str, str | None] | tuple[str, str, str | None, str | None]
_QUESTIONS: Mapping[str, Sequence[_Q]] = {
    "patient": (
        ("age_years", "Age (years)"),
        ("sex", "Sex", None, "sex"),
        ("weight_kg", "Body weight (kg)"),
        ("height_cm", "Height (cm)"),
        ("infection_type", "Type of infection", None, "infection_type"),
        ("sepsis_onset_at", "Sepsis onset (UTC)"),
    ),
    "screening_log": (
        ("screened_at", "Screened at (UTC)"),
        ("eligible", "Eligible"),
        ("exclusion_reasons", "Reasons for exclusion"),
    ),
    "consent": (
        ("given_by", "Consent given by", None, "consent_giver"),
        ("consented_at", "Consent given at (UTC)"),
    ),
    "enrolment": (
        ("stratum", "Immune stratum", None, "stratum"),
        ("status", "Status in the trial"),
        ("first_dose_at", "First study dose (UTC)"),
        ("sidf_reversed", "Immune dysfunction reversed (SIDF)"),
        ("sidf_day", "Study day of SIDF reversal"),
    ),
    "allocation": (
        ("allocated_at", "Randomized at (UTC)"),
        ("arm", "Allocated treatment", None, "arm"),
        ("kit_number", "Kit number"),
    ),
    "daily": (
        ("weight_kg", "Body weight (kg)"),
        ("pao2_fio2_mmhg", "Worst PaO2/FiO2 (mmHg)"),
        ("ventilated", "Ventilated at the worst PaO2/FiO2"),
        ("platelets_1e3_ul", "Lowest platelets (x10^3/uL)"),
        ("bilirubin", "Highest bilirubin"),
        ("map_mmhg", "Lowest mean arterial pressure (mmHg)"),
        ("dopamine_ug_kg_min", "Highest dopamine (ug/kg/min)"),
        ("dobutamine_ug_kg_min", "Highest dobutamine (ug/kg/min)"),
        ("epinephrine_ug_kg_min", "Highest epinephrine (ug/kg/min)"),
        ("norepinephrine_ug_kg_min", "Highest norepinephrine (ug/kg/min)"),
        ("gcs", "Lowest Glasgow coma scale"),
        ("creatinine", "Highest serum creatinine"),
        ("urine_ml_day", "Urine output (mL/day)"),
        ("mechanical_ventilation", "Mechanical ventilation"),
        ("vasopressors", "Vasopressors"),
        ("ckrt", "Continuous kidney replacement therapy"),
        *((f"sofa_{c}", f"SOFA {c} score (computed)", "points") for c in COMPONENTS),
        ("sofa_total", "SOFA total score (computed)", "points"),
        ("sofa_missing", "SOFA components not measured"),
    ),
    "biomarkers": (
        ("drawn_at", "Sample drawn at (UTC)"),
        ("ferritin_ng_ml", "Ferritin"),
        ("hla_dr_per_monocyte", "Monocyte HLA-DR"),
    ),
    "dose": (
        ("hour", "Scheduled hour of the study day"),
        ("route", "Route", None, "route"),
        ("given", "Given"),
        ("missed_reason", "Reason not given"),
        ("drug", "Drug"),
        ("dose", "Dose"),
        ("volume_ml", "Volume (mL)", "mL"),
        ("dummy", "Dummy injection"),
        ("renal_adjusted", "Dose adjusted for renal function"),
        ("crcl_ml_min", "Creatinine clearance used (mL/min)", "mL/min"),
        ("crcl_study_day", "Study day of that clearance"),
        ("recorded_at", "Recorded at (UTC)"),
    ),
    "infection": (("infection_day15", "State of the infection", None, "infection_state"),),
    "vital_status": (
        ("death_day", "Study day of death"),
        ("last_known_alive_day", "Last study day known alive"),
        ("icu_discharge_day", "Study day of ICU discharge"),
    ),
    "adverse_event": (
        ("onset_day", "Study day of onset"),
        ("verbatim", "Adverse event as reported"),
        ("pt_code", "MedDRA preferred term code"),
        ("pt_name", "MedDRA preferred term"),
        ("soc_code", "MedDRA system organ class code"),
        ("soc_name", "MedDRA system organ class"),
        ("serious", "Serious"),
        ("relatedness", "Relation to study treatment", None, "relatedness"),
        ("expected", "Expected"),
        ("susar", "SUSAR (serious, related, unexpected)"),
        ("susar_reported_at", "SUSAR reported at (UTC)"),
    ),
    "withdrawal": (
        ("withdrawn_at", "Consent withdrawn at (UTC)"),
        ("data_erased", "Data removed at the patient's request"),
    ),
    "unblinding": (
        ("unblinded_at", "Unblinded at (UTC)"),
        ("reason", "Reason for the emergency unblinding"),
    ),
}
#: The screening answers stored one row per question (``eligibility_answers``): question, type, unit.
_ELIGIBILITY: Sequence[tuple[str, str, str, str | None]] = (
    ("suspected_infection", "Suspected infection", "boolean", None),
    ("sofa_now", "SOFA at screening", "integer", "points"),
    ("sofa_baseline", "SOFA before the infection (baseline)", "integer", "points"),
    ("neutrophils_per_mm3", "Neutrophils (/mm3)", "float", "/mm3"),
    ("exclusions", "Exclusion criteria met (codes, comma-separated)", "text", None),
    ("cci", "Charlson comorbidity index", "integer", "points"),
    ("apache2", "APACHE II score", "integer", "points"),
)
_PATIENT_STATUSES = ("eligible", "excluded", "not_enrolled", "classified", "randomized", "withdrawn")
_ROUTE_LABELS = {"iv": "intravenous", "sc": "subcutaneous"}


def _decimal(value: float) -> str:
    """A number as a plain decimal (``1.71``, ``200000``), no exponent: ODM's float is xs:decimal."""
    text = f"{round(value, 9):.9f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _between(low: float, high: float, unit: str | None, message: str) -> list[CrfRangeCheck]:
    return [
        CrfRangeCheck(comparator="GE", check_values=[_decimal(low)], unit=unit, message=message),
        CrfRangeCheck(comparator="LE", check_values=[_decimal(high)], unit=unit, message=message),
    ]


def _plausible_checks(name: str) -> tuple[list[str], list[CrfRangeCheck]]:
    """Units and range checks of a measurement from ``clinical.units.PLAUSIBLE`` (every unit it may be in)."""
    p = PLAUSIBLE[name]
    units = [p.unit]
    checks = _between(p.low, p.high, p.unit, p.hint)
    for other, factor in p.other_units:
        if name in CLINICAL_NAME.values():  # stored in either unit (bilirubin, creatinine)
            units.append(other)
            checks += _between(p.low * factor, p.high * factor, other, p.hint)
    return units, checks


def _column_type(table: str, column: str) -> tuple[str, int | None]:
    """ODM DataType and Length of a stored column."""
    col = Base.metadata.tables[table].columns[column]
    kind = col.type
    if isinstance(kind, Boolean):
        return "boolean", None
    if isinstance(kind, Integer):
        return "integer", None
    if isinstance(kind, Float):
        return "float", None
    if isinstance(kind, String) and not isinstance(kind, Text):
        return "text", kind.length
    if isinstance(kind, Text):
        return "text", None
    return "datetime", None


def _item(protocol: Protocol, table: str, spec: _Q) -> CrfItem:
    name, label = spec[0], spec[1]
    unit = spec[2] if len(spec) > 2 else None
    codelist = spec[3] if len(spec) > 3 else None
    data_type, length = _column_type(table, name)
    units: list[str] = []
    checks: list[CrfRangeCheck] = []
    plausible = CLINICAL_NAME.get(name, name)
    c = protocol.classification
    if plausible in PLAUSIBLE and table != "dose_log":
        units, checks = _plausible_checks(plausible)
    elif name == "ferritin_ng_ml":
        units, checks = (
            [c.ferritin_unit],
            _between(0, c.ferritin_max_plausible, c.ferritin_unit, "check the unit"),
        )
    elif name == "hla_dr_per_monocyte":
        units, checks = [c.hla_dr_unit], _between(0, c.hla_dr_max_plausible, c.hla_dr_unit, "check the unit")
    elif name.startswith("sofa_") and data_type == "integer":
        high = SOFA_MAX if name == "sofa_total" else SOFA_MAX // len(COMPONENTS)
        units, checks = ["points"], _between(0, high, "points", f"a SOFA score is 0-{high} points")
    elif (table, name) in UNIT_COLUMNS:  # the dose, in the units of the regimen
        units = sorted({r.unit for r in protocol.regimen})
    elif unit is not None:
        units = [unit]
    return CrfItem(
        name=name,
        label=label,
        data_type=data_type,  # type: ignore[arg-type]
        length=length,
        units=units,
        range_checks=checks,
        codelist=codelist,
    )


def _eligibility_items() -> list[CrfItem]:
    items = []
    for name, label, data_type, unit in _ELIGIBILITY:
        checks: list[CrfRangeCheck] = []
        if name in SCORE_RANGES:
            what, low, high = SCORE_RANGES[name]
            checks = _between(low, high, unit, f"{what} is between {low} and {high}")
        elif data_type == "float":
            checks = [
                CrfRangeCheck(comparator="GE", check_values=["0"], unit=unit, message="cannot be negative")
            ]
        items.append(
            CrfItem(
                name=name,
                label=label,
                data_type=data_type,  # type: ignore[arg-type]
                units=[unit] if unit else [],
                range_checks=checks,
            )
        )
    return items


def _codelists(protocol: Protocol) -> list[CrfCodeList]:
    e = protocol.eligibility

    def codes(pairs: Iterable[tuple[str, str]]) -> list[CrfCode]:
        return [CrfCode(code=c, decode=d) for c, d in pairs]

    routes = sorted({r.route for r in protocol.regimen})
    return [
        CrfCodeList(name="sex", codes=codes((s, s) for s in SEXES)),
        CrfCodeList(name="infection_type", codes=codes((t, e.infection_label(t)) for t in e.infection_types)),
        CrfCodeList(name="consent_giver", codes=codes((g, g) for g in CONSENT_GIVERS)),
        CrfCodeList(name="stratum", codes=codes((s.code, s.label) for s in protocol.strata)),
        CrfCodeList(name="arm", codes=codes((a.code, a.label) for a in protocol.arms)),
        CrfCodeList(name="route", codes=codes((r, _ROUTE_LABELS.get(r, r)) for r in routes)),
        CrfCodeList(name="relatedness", codes=codes((r, r) for r in RELATEDNESS)),
        CrfCodeList(
            name="infection_state", codes=codes((v, v) for v in protocol.endpoints.infection_day15.levels)
        ),
    ]


def _forms(protocol: Protocol) -> list[CrfForm]:
    def group(name: str, label: str, *, repeating: bool = False) -> CrfItemGroup:
        table = GROUP_TABLE[name]
        items = [_item(protocol, table, q) for q in _QUESTIONS[name]]
        return CrfItemGroup(name=name, label=label, repeating=repeating, items=items)

    day15 = protocol.endpoints.infection_day15.day
    return [
        CrfForm(
            name="screening",
            label="Screening",
            groups=[
                group("patient", "Patient"),
                group("screening_log", "Screening log"),
                CrfItemGroup(name="eligibility", label="Eligibility answers", items=_eligibility_items()),
            ],
        ),
        CrfForm(name="consent", label="Informed consent", groups=[group("consent", "Consent")]),
        CrfForm(
            name="randomization",
            label="Immune classification and randomization",
            groups=[group("enrolment", "Enrolment"), group("allocation", "Allocation")],
        ),
        CrfForm(name="daily", label="Daily CRF", groups=[group("daily", "Worst values of the day and SOFA")]),
        CrfForm(
            name="biomarkers", label="Biomarkers (central lab)", groups=[group("biomarkers", "Blood draw")]
        ),
        CrfForm(name="dosing", label="Study treatment", groups=[group("dose", "Injection", repeating=True)]),
        CrfForm(
            name="infection", label=f"Infection on day {day15}", groups=[group("infection", "Infection")]
        ),
        CrfForm(name="vital_status", label="Vital status", groups=[group("vital_status", "Vital status")]),
        CrfForm(
            name="adverse_events",
            label="Adverse events",
            groups=[group("adverse_event", "Adverse event", repeating=True)],
        ),
        CrfForm(name="withdrawal", label="Withdrawal of consent", groups=[group("withdrawal", "Withdrawal")]),
        CrfForm(
            name="unblinding",
            label="Emergency unblinding",
            groups=[group("unblinding", "Emergency unblinding", repeating=True)],
        ),
    ]


def _events(protocol: Protocol) -> list[CrfEvent]:
    biospecimen_days = set(protocol.biospecimens.days)
    days = [
        CrfEvent(
            name=f"day_{d}",
            label=f"Study day {d}",
            forms=[
                "daily",
                *(["biomarkers"] if d in biospecimen_days else []),
                *(["dosing"] if d <= protocol.treatment.days else []),
            ],
        )
        for d in range(1, MAX_STUDY_DAY + 1)
    ]
    last = max(protocol.endpoints.mortality.days)
    return [
        CrfEvent(
            name="screening",
            label="Screening and randomization",
            forms=["screening", "consent", "randomization"],
        ),
        *days,
        CrfEvent(
            name="infection_day15",
            label=f"Day {protocol.endpoints.infection_day15.day}: state of the infection",
            forms=["infection"],
        ),
        CrfEvent(name="follow_up", label=f"Follow-up to day {last}", forms=["vital_status"]),
        CrfEvent(name="adverse_events", label="Adverse events", type="Common", forms=["adverse_events"]),
        CrfEvent(name="withdrawal", label="Withdrawal of consent", type="Unscheduled", forms=["withdrawal"]),
        CrfEvent(name="unblinding", label="Emergency unblinding", type="Unscheduled", forms=["unblinding"]),
    ]


def crf_definition(protocol: Protocol, *, blinded: bool) -> CrfDefinition:
    """The trial's case report forms (schedule, forms, items, checks, code lists, units) as the export shows them.

    Blinded: without the items :func:`~immunosep.conduct.blinding.column_visible` hides, and without the
    groups, forms, events, code lists and units left empty by that.
    """
    forms = []
    for form in _forms(protocol):
        groups = []
        for g in form.groups:
            table = GROUP_TABLE[g.name]
            column = (lambda _i: "answer") if table == "eligibility_answers" else (lambda i: i.name)
            items = [i for i in g.items if column_visible(table, column(i), blinded=blinded)]
            if items:
                groups.append(g.model_copy(update={"items": items}))
        if groups:
            forms.append(form.model_copy(update={"groups": groups}))
    names = {f.name for f in forms}
    events = []
    for event in _events(protocol):
        kept = [f for f in event.forms if f in names]
        if kept:
            events.append(event.model_copy(update={"forms": kept}))
    items = [i for f in forms for g in f.groups for i in g.items]
    used_lists = {i.codelist for i in items}
    units = [CrfUnit(symbol=u) for u in dict.fromkeys(u for i in items for u in i.units)]
    return CrfDefinition(
        units=units,
        codelists=[c for c in _codelists(protocol) if c.name in used_lists],
        events=events,
        forms=forms,
    )


# -- OIDs --------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "X"


def _unit_oids(units: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for u in units:
        oid, n = f"MU.{_slug(u)}", 2
        while oid in out.values():
            oid, n = f"MU.{_slug(u)}_{n}", n + 1
        out[u] = oid
    return out


def _item_oid(group: str, item: str) -> str:
    return f"IT.{group}.{item}"


# -- the XML -----------------------------------------------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{ODM_NS}}}{tag}"


def _el(parent: Any, tag: str, text: str | None = None, **attrs: str | None) -> Any:
    e = etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        e.text = _xml_text(text)
    return e


def _translated(parent: Any, tag: str, text: str) -> Any:
    e = _el(parent, tag)
    t = _el(e, "TranslatedText", text)
    t.set(_XML_LANG, "en")
    return e


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold (control characters other than tab and newlines become U+FFFD)."""
    return _NOT_XML.sub("\ufffd", text)


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _metadata_version(study: Any, crf: CrfDefinition, oid: str, name: str, description: str) -> None:
    units = _unit_oids(u.symbol for u in crf.units)
    basic = _el(study, "BasicDefinitions")
    for u in crf.units:
        mu = _el(basic, "MeasurementUnit", OID=units[u.symbol], Name=u.symbol)
        _translated(mu, "Symbol", u.symbol)
    mdv = _el(study, "MetaDataVersion", OID=oid, Name=name, Description=description)
    protocol = _el(mdv, "Protocol")
    for n, event in enumerate(crf.events, 1):
        _el(protocol, "StudyEventRef", StudyEventOID=f"SE.{event.name}", OrderNumber=str(n), Mandatory="No")
    for event in crf.events:
        se = _el(
            mdv,
            "StudyEventDef",
            OID=f"SE.{event.name}",
            Name=event.name,
            Repeating=_yes(event.repeating),
            Type=event.type,
        )
        _translated(se, "Description", event.label)
        for n, form_name in enumerate(event.forms, 1):
            _el(se, "FormRef", FormOID=f"F.{form_name}", OrderNumber=str(n), Mandatory="No")
    for form in crf.forms:
        f = _el(mdv, "FormDef", OID=f"F.{form.name}", Name=form.name, Repeating=_yes(form.repeating))
        _translated(f, "Description", form.label)
        for n, g in enumerate(form.groups, 1):
            _el(f, "ItemGroupRef", ItemGroupOID=f"IG.{g.name}", OrderNumber=str(n), Mandatory="No")
    for form in crf.forms:
        for g in form.groups:
            ig = _el(mdv, "ItemGroupDef", OID=f"IG.{g.name}", Name=g.name, Repeating=_yes(g.repeating))
            _translated(ig, "Description", g.label)
            for n, item in enumerate(g.items, 1):
                _el(
                    ig,
                    "ItemRef",
                    ItemOID=_item_oid(g.name, item.name),
                    OrderNumber=str(n),
                    Mandatory=_yes(item.mandatory),
                )
    for form in crf.forms:
        for g in form.groups:
            for item in g.items:
                it = _el(
                    mdv,
                    "ItemDef",
                    OID=_item_oid(g.name, item.name),
                    Name=item.name,
                    DataType=item.data_type,
                    Length=None if item.length is None else str(item.length),
                )
                _translated(it, "Question", item.label)
                for symbol in item.units:
                    _el(it, "MeasurementUnitRef", MeasurementUnitOID=units[symbol])
                for check in item.range_checks:
                    rc = _el(
                        it,
                        "RangeCheck",
                        Comparator=check.comparator,
                        SoftHard="Hard" if check.hard else "Soft",
                    )
                    for v in check.check_values:
                        _el(rc, "CheckValue", v)
                    if check.unit is not None:
                        _el(rc, "MeasurementUnitRef", MeasurementUnitOID=units[check.unit])
                    if check.message:
                        _translated(rc, "ErrorMessage", check.message)
                if item.codelist is not None:
                    _el(it, "CodeListRef", CodeListOID=f"CL.{item.codelist}")
    for cl in crf.codelists:
        c = _el(mdv, "CodeList", OID=f"CL.{cl.name}", Name=cl.name, DataType=cl.data_type)
        for code in cl.codes:
            _translated(_el(c, "CodeListItem", CodedValue=code.code), "Decode", code.decode)


# -- clinical data -----------------------------------------------------------------------------------------


@dataclass
class _Value:
    """One ItemData: the value as text, its unit, and the stored row and columns it comes from."""

    value: str
    unit: str | None
    table: str
    row_id: str
    columns: tuple[str, ...]


@dataclass
class _GroupData:
    group: str
    table: str
    row_id: str | None  # None: several rows (the eligibility answers)
    values: dict[str, _Value] = field(default_factory=dict)


@dataclass
class _Subject:
    pseudonym: str
    site_code: str
    patient_id: int | None
    #: event name -> list of group data (their forms follow from the metadata)
    events: dict[str, list[_GroupData]] = field(default_factory=lambda: defaultdict(list))


def _text(value: Any) -> str | None:
    """A stored value as ODM text: ``true``/``false``, integers, shortest round-trip decimals, ISO 8601."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(np.format_float_positional(value, trim="0"))
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _group_data(group: CrfItemGroup, table: str, row: Any) -> _GroupData:
    row_id = str(row.id)
    data = _GroupData(group.name, table, row_id)
    for item in group.items:
        text = _text(getattr(row, item.name))
        if not text:  # not recorded (an empty text says nothing either)
            continue
        unit_column = UNIT_COLUMNS.get((table, item.name))
        unit = getattr(row, unit_column) if unit_column else (item.units[0] if item.units else None)
        columns = (item.name, unit_column) if unit_column else (item.name,)
        data.values[item.name] = _Value(text, unit, table, row_id, columns)
    return data


def _eligibility_data(group: CrfItemGroup, rows: Iterable[Any]) -> _GroupData:
    data = _GroupData(group.name, "eligibility_answers", None)
    items = {i.name: i for i in group.items}
    for row in rows:
        item = items.get(row.question)
        if item is None:
            raise ImmunoSepError(
                f"the screening answer {row.question!r} has no ODM item: add it to conduct.odm._ELIGIBILITY"
            )
        answer = json.loads(row.answer)
        if isinstance(answer, list):
            answer = ",".join(str(a) for a in answer)
        text = _text(answer)
        if text:
            unit = item.units[0] if item.units else None
            data.values[item.name] = _Value(text, unit, "eligibility_answers", str(row.id), ("answer",))
    return data


def _rows(session: Session, table: str, patient_ids: Sequence[int]) -> dict[int, list[Any]]:
    t = Base.metadata.tables[table]
    out: dict[int, list[Any]] = defaultdict(list)
    if not patient_ids:
        return out
    for chunk in _chunks(patient_ids):
        for row in session.execute(select(t).where(t.c.patient_id.in_(chunk)).order_by(t.c.id)):
            out[row.patient_id].append(row)
    return out


def _chunks(ids: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _subjects(session: Session, crf: CrfDefinition, sites: frozenset[int] | None) -> list[_Subject]:
    """Every patient in scope (and every patient erased at withdrawal), with its data by event."""
    groups = {g.name: g for f in crf.forms for g in f.groups}
    site_code = dict(session.execute(select(Site.id, Site.code)).all())
    stmt = select(Patient).order_by(Patient.pseudonym)
    if sites is not None:
        stmt = stmt.where(Patient.site_id.in_(sorted(sites)))
    patients = list(session.execute(stmt).scalars())
    wstmt = select(Withdrawal).order_by(Withdrawal.pseudonym)
    if sites is not None:
        wstmt = wstmt.where(Withdrawal.site_id.in_(sorted(sites)))
    withdrawals = {w.pseudonym: w for w in session.execute(wstmt).scalars()}
    subjects = {p.pseudonym: _Subject(p.pseudonym, site_code[p.site_id], p.id) for p in patients}
    for w in withdrawals.values():
        subjects.setdefault(w.pseudonym, _Subject(w.pseudonym, site_code[w.site_id], None))
    ids = [p.id for p in patients]
    by_id = {p.id: subjects[p.pseudonym] for p in patients}

    def day(row: Any) -> str:
        return f"day_{row.study_day}"

    placed: dict[str, Any] = {
        "screening_log": lambda r: "screening",
        "consent": lambda r: "screening",
        "allocation": lambda r: "screening",
        "daily": day,
        "biomarkers": day,
        "dose": day,
        "infection": lambda r: "infection_day15",
        "vital_status": lambda r: "follow_up",
        "adverse_event": lambda r: "adverse_events",
        "unblinding": lambda r: "unblinding",
    }
    for p in patients:
        s = subjects[p.pseudonym]
        for name in ("patient", "enrolment"):
            if name in groups:
                s.events["screening"].append(_group_data(groups[name], "patients", p))
    if "eligibility" in groups:
        for pid, rows in _rows(session, "eligibility_answers", ids).items():
            by_id[pid].events["screening"].append(_eligibility_data(groups["eligibility"], rows))
    for name, where in placed.items():
        if name not in groups:
            continue
        table = GROUP_TABLE[name]
        for pid, rows in _rows(session, table, ids).items():
            for row in rows:
                data = _group_data(groups[name], table, row)
                if data.values:
                    by_id[pid].events[where(row)].append(data)
    if "withdrawal" in groups:
        for w in withdrawals.values():
            subjects[w.pseudonym].events["withdrawal"].append(
                _group_data(groups["withdrawal"], "withdrawals", w)
            )
    return [subjects[k] for k in sorted(subjects)]


@dataclass(frozen=True)
class _Entry:
    id: int
    at: str
    user_id: int | None
    reason: str
    update: bool


class _Audit:
    """The audit trail's latest entry per row and per field, for the rows of the export."""

    def __init__(
        self,
        session: Session,
        tables: set[str],
        patient_ids: Sequence[int] | None,
        withdrawal_ids: Sequence[str],
        *,
        blinded: bool,
    ):
        self.inserts: dict[tuple[str, str], _Entry] = {}
        self.updates: dict[tuple[str, str, str], _Entry] = {}
        tables = {t for t in tables if audit_table_exported(t, blinded=blinded)}
        a = AuditEntry
        stmt = (
            select(a.id, a.at, a.user_id, a.table_name, a.row_id, a.action, a.field, a.reason)
            .where(a.table_name.in_(sorted(tables)), a.action.in_(("insert", "update")), a.erased.is_(False))
            .order_by(a.id)
        )
        chunks: Iterable[Sequence[int] | None] = (
            [None] if patient_ids is None else (list(_chunks(patient_ids)) or [[]])
        )
        for chunk in chunks:
            scoped = stmt
            if chunk is not None:  # the data of the patients in scope, and their withdrawals
                withdrawn = and_(a.table_name == "withdrawals", a.row_id.in_(sorted(withdrawal_ids)))
                scoped = stmt.where(or_(a.subject_id.in_(chunk), withdrawn))
            for e in session.execute(scoped):
                entry = _Entry(e.id, e.at, e.user_id, e.reason or "", e.action == "update")
                if e.action == "insert":
                    self.inserts[(e.table_name, e.row_id)] = entry
                else:
                    self.updates[(e.table_name, e.row_id, e.field)] = entry

    def users_of(self, subjects: Iterable[_Subject]) -> set[int | None]:
        """The users the audit records of these subjects' data will name (AdminData precedes them)."""
        users: set[int | None] = set()
        for s in subjects:
            found = [self.of_row("patients", str(s.patient_id))] if s.patient_id is not None else []
            for groups in s.events.values():
                for g in groups:
                    found += [self.of_row(g.table, g.row_id)] if g.row_id is not None else []
                    found += [self.of_value(v) for v in g.values.values()]
            users.update(e.user_id for e in found if e is not None)
        return users

    def of_row(self, table: str, row_id: str) -> _Entry | None:
        return self.inserts.get((table, row_id))

    def of_value(self, v: _Value) -> _Entry | None:
        """The entry that gave the value its current state: the row's insert or a later update of its columns."""
        found = [self.inserts.get((v.table, v.row_id))]
        found += [self.updates.get((v.table, v.row_id, c)) for c in v.columns]
        entries = [e for e in found if e is not None]
        return max(entries, key=lambda e: e.id) if entries else None


@dataclass(frozen=True)
class OdmExport:
    """What :func:`odm_document` wrote: counts, the users and locations it references, blinded or not."""

    blinded: bool
    subjects: int
    item_data: int
    audit_records: int
    users: tuple[str, ...]
    locations: tuple[str, ...]
    size_bytes: int = 0
    path: Path | None = None


class _Refs:
    """Users and locations referenced by the audit records, for AdminData."""

    def __init__(self, users: Mapping[int, Any], site_code: Mapping[int, str]):
        self.users = users
        self.site_code = site_code
        self.admin_users: set[str] = set()
        self.admin_locations: set[str] = set()
        self.records = 0

    def location_of(self, user_id: int | None) -> str:
        user = self.users.get(user_id) if user_id is not None else None
        if user is None:
            loc = SPONSOR_LOCATION
        elif user.site_id is not None and site_scope(user.role) == "home":
            loc = f"LOC.{self.site_code[user.site_id]}"
        elif role_can(user.role, "enter_biomarkers"):  # the central laboratory's staff
            loc = LAB_LOCATION
        else:
            loc = SPONSOR_LOCATION
        return loc

    def audit_record(self, parent: Any, entry: _Entry | None) -> None:
        if entry is None:
            return
        self.records += 1
        rec = _el(parent, "AuditRecord")
        _el(rec, "UserRef", UserOID=SYSTEM_USER if entry.user_id is None else f"USR.{entry.user_id}")
        _el(rec, "LocationRef", LocationOID=self.location_of(entry.user_id))
        _el(rec, "DateTimeStamp", entry.at)
        if entry.update and entry.reason.strip():
            _el(rec, "ReasonForChange", entry.reason)
        _el(rec, "SourceID", f"audit_log:{entry.id}")


def _user_type(role: str) -> str:
    """ODM UserType: the central lab's staff, site staff (investigators, pharmacists), or the sponsor's."""
    if role_can(role, "enter_biomarkers"):
        return "Lab"
    return "Investigator" if site_scope(role) == "home" else "Sponsor"


def _admin_data(
    session: Session,
    refs: _Refs,
    user_ids: Iterable[int | None],
    site_codes: Iterable[str],
    *,
    study: str,
    mdv: str,
) -> Any:
    """AdminData: the users of the audit entries the file draws on (before ClinicalData, as ODM orders
    them) and the locations of those users and of the subjects' sites."""
    admin = etree.Element(_q("AdminData"), {"StudyOID": study}, nsmap={None: ODM_NS})
    locations = {f"LOC.{code}" for code in site_codes}
    for user_id in sorted(set(user_ids), key=lambda u: (u is not None, u or 0)):
        oid = SYSTEM_USER if user_id is None else f"USR.{user_id}"
        user = refs.users.get(user_id) if user_id is not None else None
        u = _el(admin, "User", OID=oid, UserType="Other" if user is None else _user_type(user.role))
        refs.admin_users.add(oid)
        if user is None:
            _el(u, "LoginName", "database access (command line)" if user_id is None else f"user {user_id}")
            locations.add(SPONSOR_LOCATION)
            continue
        _el(u, "LoginName", user.username)
        _el(u, "DisplayName", f"{user.username} ({user.role})")
        location = refs.location_of(user_id)
        _el(u, "LocationRef", LocationOID=location)
        locations.add(location)
    effective = trial(session).created_at.date().isoformat()
    site_names = dict(session.execute(select(Site.code, Site.name)).all())
    for loc in sorted(locations):
        if loc == SPONSOR_LOCATION:
            name, kind = "Trial sponsor (coordination and data management)", "Sponsor"
        elif loc == LAB_LOCATION:
            name, kind = "Central laboratory", "Lab"
        else:
            code = loc.removeprefix("LOC.")
            name, kind = f"{code} {site_names.get(code, '')}".strip(), "Site"
        location_el = _el(admin, "Location", OID=loc, Name=name, LocationType=kind)
        _el(
            location_el, "MetaDataVersionRef", StudyOID=study, MetaDataVersionOID=mdv, EffectiveDate=effective
        )
    refs.admin_locations = locations
    return admin


class _Writer:
    """Writes one SubjectData element per subject, in the metadata's order of events, forms and items."""

    def __init__(self, crf: CrfDefinition, audit: _Audit, refs: _Refs):
        self.audit, self.refs = audit, refs
        groups = [g for f in crf.forms for g in f.groups]
        self.form_of = {g.name: f.name for f in crf.forms for g in f.groups}
        self.group_order = {g.name: n for n, g in enumerate(groups)}
        self.repeating = {g.name for g in groups if g.repeating}
        self.event_order = {e.name: n for n, e in enumerate(crf.events)}
        self.item_order = {(g.name, i.name): n for g in groups for n, i in enumerate(g.items)}
        self.units = _unit_oids(u.symbol for u in crf.units)
        self.item_data = 0

    def subject(self, s: _Subject) -> Any:
        audit, refs = self.audit, self.refs
        sd = etree.Element(_q("SubjectData"), {"SubjectKey": s.pseudonym}, nsmap={None: ODM_NS})
        if s.patient_id is not None:
            refs.audit_record(sd, audit.of_row("patients", str(s.patient_id)))
        _el(sd, "SiteRef", LocationOID=f"LOC.{s.site_code}")
        for event in sorted(s.events, key=lambda e: self.event_order[e]):
            se = _el(sd, "StudyEventData", StudyEventOID=f"SE.{event}")
            by_form: dict[str, list[_GroupData]] = defaultdict(list)
            for g in s.events[event]:
                by_form[self.form_of[g.group]].append(g)
            for form in sorted(by_form, key=lambda f: min(self.group_order[g.group] for g in by_form[f])):
                fd = _el(se, "FormData", FormOID=f"F.{form}")
                counters: dict[str, int] = defaultdict(int)
                for g in sorted(by_form[form], key=lambda g: self.group_order[g.group]):
                    counters[g.group] += 1
                    key = str(counters[g.group]) if g.group in self.repeating else None
                    igd = _el(fd, "ItemGroupData", ItemGroupOID=f"IG.{g.group}", ItemGroupRepeatKey=key)
                    if g.row_id is not None:
                        refs.audit_record(igd, audit.of_row(g.table, g.row_id))
                    for name in sorted(g.values, key=lambda i: self.item_order[(g.group, i)]):
                        v = g.values[name]
                        idd = _el(igd, "ItemData", ItemOID=_item_oid(g.group, name), Value=_xml_text(v.value))
                        refs.audit_record(idd, audit.of_value(v))
                        if v.unit is not None and v.unit in self.units:
                            _el(idd, "MeasurementUnitRef", MeasurementUnitOID=self.units[v.unit])
                        self.item_data += 1
        return sd


def write_odm(
    out: BinaryIO,
    session: Session,
    actor: Actor | None,
    *,
    unblinded: bool = False,
    now: datetime | None = None,
) -> OdmExport:
    """Write the ODM 1.3.2 Snapshot of the trial's clinical data in the actor's scope to ``out`` (UTF-8 XML).

    ``actor=None`` is the command line (database access, every site). Any clinical reader may export its
    sites (blinded); only the command line may export unblinded (``export_unblinded`` is no role's). The
    file is written one subject at a time (``lxml.etree.xmlfile``), so a whole trial never sits in memory
    as one XML tree.
    """
    if actor is not None:
        require(actor, "export_odm")
        if unblinded and not can(actor, "export_unblinded"):
            raise AccessDenied(f"the {actor.role} role may export blinded data only")
    blinded = not unblinded
    t = trial(session)
    protocol = protocol_of(session)
    crf = crf_definition(protocol, blinded=blinded)
    sites = None if actor is None else scope_site_ids(actor)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    stamp = now.isoformat()
    study_oid = f"ST.{_slug(t.code)}"
    mdv_oid = f"MDV.{_slug(protocol.trial.version)}.{'BLINDED' if blinded else 'UNBLINDED'}"
    attributes = {
        "FileType": "Snapshot",
        "Granularity": "All",
        "FileOID": f"ODM.{_slug(t.code)}.{now:%Y%m%dT%H%M%SZ}.{secrets.token_hex(4)}",
        "CreationDateTime": stamp,
        "AsOfDateTime": stamp,
        "ODMVersion": ODM_VERSION,
        "Originator": "ImmunoSep platform",
        "SourceSystem": "immunosep",
        "SourceSystemVersion": __version__,
        "Description": f"{protocol.trial.title}: clinical data, {'blinded' if blinded else 'UNBLINDED'}",
    }
    study = etree.Element(_q("Study"), {"OID": study_oid}, nsmap={None: ODM_NS})
    gv = _el(study, "GlobalVariables")
    _el(gv, "StudyName", protocol.trial.title)
    _el(
        gv,
        "StudyDescription",
        f"{protocol.trial.title} ({protocol.trial.registration}), protocol {protocol.trial.version}",
    )
    _el(gv, "ProtocolName", protocol.trial.registration or protocol.trial.code)
    _metadata_version(
        study,
        crf,
        mdv_oid,
        f"{protocol.trial.code} protocol {protocol.trial.version}",
        "blinded: allocation, kits and treatment content left out" if blinded else "unblinded",
    )

    subjects = _subjects(session, crf, sites)
    tables = {GROUP_TABLE[g.name] for f in crf.forms for g in f.groups}
    patient_ids = None if sites is None else [s.patient_id for s in subjects if s.patient_id is not None]
    withdrawal_ids = [g.row_id for s in subjects for g in s.events.get("withdrawal", []) if g.row_id]
    audit = _Audit(session, tables, patient_ids, withdrawal_ids, blinded=blinded)
    site_code = dict(session.execute(select(Site.id, Site.code)).all())
    refs = _Refs({u.id: u for u in session.execute(select(User)).scalars()}, site_code)
    admin = _admin_data(
        session, refs, audit.users_of(subjects), {s.site_code for s in subjects}, study=study_oid, mdv=mdv_oid
    )
    writer = _Writer(crf, audit, refs)
    start = out.tell()
    with etree.xmlfile(out, encoding="UTF-8") as xf:
        xf.write_declaration()
        with xf.element(_q("ODM"), attributes, nsmap={None: ODM_NS}):
            xf.write("\n")
            xf.write(study, pretty_print=True)
            if len(admin):
                xf.write(admin, pretty_print=True)
            with xf.element(_q("ClinicalData"), {"StudyOID": study_oid, "MetaDataVersionOID": mdv_oid}):
                xf.write("\n")
                for s in subjects:
                    xf.write(writer.subject(s), pretty_print=True)
            xf.write("\n")
    return OdmExport(
        blinded=blinded,
        subjects=len(subjects),
        item_data=writer.item_data,
        audit_records=refs.records,
        users=tuple(sorted(refs.admin_users)),
        locations=tuple(sorted(refs.admin_locations)),
        size_bytes=out.tell() - start,
    )


def odm_document(
    session: Session, actor: Actor | None, *, unblinded: bool = False, now: datetime | None = None
) -> tuple[bytes, OdmExport]:
    """:func:`write_odm` into memory: the document's bytes and what it holds (the web download)."""
    buffer = io.BytesIO()
    result = write_odm(buffer, session, actor, unblinded=unblinded, now=now)
    return buffer.getvalue(), result


def export_odm(
    session: Session, actor: Actor | None, path: str | Path, *, unblinded: bool = False
) -> OdmExport:
    """Write :func:`write_odm` to the file ``path`` (an ODM 1.3.2 XML file)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        result = write_odm(fh, session, actor, unblinded=unblinded)
    return replace(result, path=out)


# -- import: an ODM study's forms as a CRF definition ------------------------------------------------------


def _label(el: Any, *tags: str) -> str | None:
    for tag in tags:
        text = el.findtext(f"{_q(tag)}/{_q('TranslatedText')}", namespaces=None)
        if text:
            return str(text)
    return None


def read_crf_definition(source: str | Path | bytes, *, metadata_version: str | None = None) -> CrfDefinition:
    """The CRF definition (schedule, forms, item groups, items, checks, code lists, units) of an ODM 1.3 study.

    Reads the first MetaDataVersion (or the one with OID ``metadata_version``). Labels come from each
    definition's Description (items: Question), names from the Name attributes; ODM data types the CRF
    definition does not know (partial dates, URIs, ...) are read as text. A file that is not ODM 1.3 raises
    ImmunoSepError.
    """
    try:
        if isinstance(source, bytes):
            root = etree.fromstring(source, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        else:
            root = etree.parse(
                str(source), parser=etree.XMLParser(resolve_entities=False, no_network=True)
            ).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise ImmunoSepError(f"cannot read the ODM file: {exc}") from None
    if root.tag != _q("ODM"):
        raise ImmunoSepError(f"not a CDISC ODM 1.3 document (root element {root.tag!r}, namespace {ODM_NS})")
    versions = root.findall(f"{_q('Study')}/{_q('MetaDataVersion')}")
    if metadata_version is not None:
        versions = [v for v in versions if v.get("OID") == metadata_version]
    if not versions:
        raise ImmunoSepError(
            "the ODM file has no MetaDataVersion" + (f" {metadata_version!r}" if metadata_version else "")
        )
    mdv = versions[0]
    study = mdv.getparent()
    unit_symbol = {
        mu.get("OID"): _label(mu, "Symbol") or mu.get("Name")
        for mu in study.iterfind(f"{_q('BasicDefinitions')}/{_q('MeasurementUnit')}")
    }

    def named(tag: str) -> dict[str, Any]:
        return {e.get("OID"): e for e in mdv.iterfind(_q(tag))}

    def ordered(el: Any, tag: str) -> list[Any]:
        refs = list(el.iterfind(_q(tag)))
        return (
            sorted(refs, key=lambda r: int(r.get("OrderNumber") or 0))
            if all(r.get("OrderNumber") for r in refs)
            else refs
        )

    events, forms, groups, items, lists = (
        named(t) for t in ("StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef", "CodeList")
    )
    known = {"integer", "float", "text", "boolean", "datetime", "date"}

    def item(ref: Any) -> CrfItem:
        it = items[ref.get("ItemOID")]
        checks = []
        for rc in it.iterfind(_q("RangeCheck")):
            mu = rc.find(_q("MeasurementUnitRef"))
            checks.append(
                CrfRangeCheck(
                    comparator=rc.get("Comparator"),
                    check_values=[str(v.text or "") for v in rc.iterfind(_q("CheckValue"))],
                    unit=None if mu is None else unit_symbol[mu.get("MeasurementUnitOID")],
                    hard=rc.get("SoftHard") == "Hard",
                    message=_label(rc, "ErrorMessage") or "",
                )
            )
        cl = it.find(_q("CodeListRef"))
        data_type = it.get("DataType")
        return CrfItem(
            name=it.get("Name"),
            label=_label(it, "Question", "Description") or it.get("Name"),
            data_type=data_type if data_type in known else ("float" if data_type == "double" else "text"),
            length=int(it.get("Length")) if it.get("Length") else None,
            units=[unit_symbol[m.get("MeasurementUnitOID")] for m in it.iterfind(_q("MeasurementUnitRef"))],
            range_checks=checks,
            codelist=None if cl is None else lists[cl.get("CodeListOID")].get("Name"),
            mandatory=ref.get("Mandatory") == "Yes",
        )

    def group(ref: Any) -> CrfItemGroup:
        g = groups[ref.get("ItemGroupOID")]
        return CrfItemGroup(
            name=g.get("Name"),
            label=_label(g, "Description") or g.get("Name"),
            repeating=g.get("Repeating") == "Yes",
            items=[item(r) for r in ordered(g, "ItemRef")],
        )

    form_defs = list(forms.values())
    protocol = mdv.find(_q("Protocol"))
    event_refs = ordered(protocol, "StudyEventRef") if protocol is not None else []
    event_defs = [events[r.get("StudyEventOID")] for r in event_refs] or list(events.values())
    try:
        return CrfDefinition(
            units=[CrfUnit(symbol=s) for s in dict.fromkeys(unit_symbol.values())],
            codelists=[
                CrfCodeList(
                    name=c.get("Name"),
                    data_type=c.get("DataType")
                    if c.get("DataType") in ("integer", "float", "text", "string")
                    else "text",
                    codes=[
                        CrfCode(code=i.get("CodedValue"), decode=_label(i, "Decode") or i.get("CodedValue"))
                        for i in (*c.iterfind(_q("CodeListItem")), *c.iterfind(_q("EnumeratedItem")))
                    ],
                )
                for c in lists.values()
            ],
            events=[
                CrfEvent(
                    name=e.get("Name"),
                    label=_label(e, "Description") or e.get("Name"),
                    repeating=e.get("Repeating") == "Yes",
                    type=e.get("Type"),
                    forms=[forms[r.get("FormOID")].get("Name") for r in ordered(e, "FormRef")],
                )
                for e in event_defs
            ],
            forms=[
                CrfForm(
                    name=f.get("Name"),
                    label=_label(f, "Description") or f.get("Name"),
                    repeating=f.get("Repeating") == "Yes",
                    groups=[group(r) for r in ordered(f, "ItemGroupRef")],
                )
                for f in form_defs
            ],
        )
    except (KeyError, ValueError) as exc:
        raise ImmunoSepError(f"the ODM metadata cannot be read as a CRF definition: {exc}") from None
