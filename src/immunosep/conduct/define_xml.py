"""Define-XML 2.1 (on CDISC ODM 1.3.2): the metadata of a submission package, written with lxml.

One writer serves both packages: the SDTM export (:mod:`immunosep.conduct.sdtm.define_xml`) and the ADaM
datasets (:mod:`immunosep.analysis.define_xml`) each describe their datasets as a :class:`DefineSpec` and
call :func:`write_define`. The spec is plain data (datasets, variables with their origin, codelists,
methods, comments, value-level metadata, standards and documents); everything a reader of the data can
check is measured from the data itself by :func:`measure` (DataType, Length of text as the longest value in
bytes, SignificantDigits of floats, the ISO 8601 type of ``--DTC`` variables), so the document cannot
promise a length the file does not hold.

The document is rendered in a browser by the stylesheet ``define2-1.xsl`` this package ships (CDISC's own
stylesheet cannot be redistributed here; ours is a small XSLT 1.0 sheet with the same purpose), referenced
by an ``xml-stylesheet`` processing instruction and copied next to ``define.xml``.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

import immunosep

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
NSMAP = {None: ODM_NS, "def": DEF_NS, "xlink": XLINK_NS}
DEFINE_VERSION = "2.1.0"
STYLESHEET = "define2-1.xsl"
#: Define-XML origin types (def:Origin/@Type) and the data types an ItemDef may have.
ORIGIN_TYPES = ("Collected", "Derived", "Assigned", "Protocol", "Predecessor", "Not Available", "Other")
ISO_TYPES = ("date", "datetime", "partialDatetime", "durationDatetime")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_DURATION = re.compile(r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?$")


@dataclass(frozen=True)
class Term:
    """One controlled term: its value, the decode (for a CodeListItem) and its NCI C-code when known."""

    value: str
    decode: str = ""
    nci: str = ""
    extended: bool = False


@dataclass(frozen=True)
class CodeListSpec:
    """A codelist: ``terms`` (enumerated or coded with decodes), or an external ``dictionary``."""

    oid: str
    name: str
    data_type: str = "text"
    terms: tuple[Term, ...] = ()
    nci: str = ""
    dictionary: str = ""
    version: str = ""
    standard_oid: str = ""


@dataclass(frozen=True)
class MethodSpec:
    oid: str
    name: str
    description: str
    kind: str = "Computation"  # or "Imputation"


@dataclass(frozen=True)
class Origin:
    """def:Origin: ``type`` (one of :data:`ORIGIN_TYPES`), ``source`` (Investigator, Sponsor, Subject,
    Vendor) and a description (the predecessor variable, for ``Predecessor``)."""

    type: str
    source: str = ""
    description: str = ""


@dataclass(frozen=True)
class ItemSpec:
    """One variable (or one value-level definition of it) as measured and described.

    ``data_type`` is a Define-XML DataType (text, integer, float, date, datetime, partialDatetime,
    durationDatetime); ``length`` is given for text, integer and float only."""

    oid: str
    name: str
    label: str
    data_type: str
    length: int | None
    significant_digits: int | None
    origin: Origin
    codelist: str = ""
    method: str = ""
    comment: str = ""
    display_format: str = ""
    mandatory: bool = False
    key_sequence: int | None = None
    has_no_data: bool = False
    value_list: str = ""


@dataclass(frozen=True)
class WhereClause:
    """``variable`` (ItemDef OID of the same dataset) EQ ``value``."""

    oid: str
    item_oid: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class ValueListSpec:
    oid: str
    entries: tuple[tuple[WhereClause, ItemSpec], ...]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: ``name`` (upper case, also the XPT member), ``structure`` (one record per ...),
    ``class_name`` (def:Class), ``purpose`` (Tabulation or Analysis), ``href`` (the XPT file)."""

    name: str
    label: str
    structure: str
    class_name: str
    purpose: str
    href: str
    items: tuple[ItemSpec, ...]
    subclass: str = ""
    domain: str = ""
    repeating: bool = True
    reference_data: bool = False
    comment: str = ""
    standard_oid: str = ""


@dataclass(frozen=True)
class Standard:
    oid: str
    name: str
    type: str
    version: str
    publishing_set: str = ""
    status: str = "Final"


@dataclass(frozen=True)
class Document:
    """A document the define refers to: an annotated CRF (``kind="acrf"``) or a supplemental document."""

    leaf_id: str
    href: str
    title: str
    kind: str = "supplemental"


@dataclass(frozen=True)
class DefineSpec:
    """Everything one define.xml says."""

    study_oid: str
    study_name: str
    study_description: str
    protocol_name: str
    mdv_name: str
    mdv_description: str
    standards: tuple[Standard, ...]
    datasets: tuple[DatasetSpec, ...]
    codelists: tuple[CodeListSpec, ...]
    methods: tuple[MethodSpec, ...]
    comments: dict[str, str] = field(default_factory=dict)
    value_lists: tuple[ValueListSpec, ...] = ()
    documents: tuple[Document, ...] = ()
    context: str = "Submission"


# -- measuring the data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    data_type: str
    length: int | None
    significant_digits: int | None
    has_no_data: bool


def _decimal_text(value: float) -> str:
    """The shortest text that reads back as ``value``, positional (no exponent)."""
    return np.format_float_positional(value, unique=True, trim="-")


def measure(values: pd.Series, kind: str, name: str) -> Measure:
    """DataType, Length and SignificantDigits of one variable from its values (``kind`` Char or Num).

    Char: ``--DTC`` variables are date (all ``YYYY-MM-DD``), datetime (all to the second) or
    partialDatetime (both), ``--DUR`` durationDatetime, with no Length (Define-XML gives none for ISO 8601
    types); any other text has Length = its longest value in UTF-8 bytes (at least 1). Num: integer when
    every value is whole (Length = most digits, sign included), else float with SignificantDigits = most
    digits after the point and Length = most digits in all.
    """
    if kind == "Num":
        numbers = [float(x) for x in pd.to_numeric(values, errors="coerce").dropna() if math.isfinite(x)]
        if not numbers:
            return Measure("integer", 1, None, True)
        if all(x.is_integer() for x in numbers):
            return Measure("integer", max(len(str(int(x))) for x in numbers), None, False)
        texts = [_decimal_text(x) for x in numbers]
        decimals = max(len(t.partition(".")[2]) for t in texts)
        digits = max(len(t.replace(".", "")) for t in texts)
        return Measure("float", digits, decimals, False)
    text = [str(x) for x in values if isinstance(x, str) and x != ""]
    if name.endswith("DTC"):
        dates = any(_DATE.match(x) for x in text)
        times = any(_DATETIME.match(x) for x in text)
        if text and all(_DATE.match(x) or _DATETIME.match(x) for x in text):
            kind_ = "partialDatetime" if dates and times else ("date" if dates else "datetime")
            return Measure(kind_, None, None, False)
        if not text:
            return Measure("datetime", None, None, True)
    if name.endswith("DUR") and text and all(_DURATION.match(x) for x in text):
        return Measure("durationDatetime", None, None, False)
    return Measure("text", max([1, *(len(x.encode("utf-8")) for x in text)]), None, not text)


def distinct_text(values: Iterable[object]) -> list[str]:
    """The distinct non-empty values, in sorted order (numbers as their shortest text)."""
    out = set()
    for x in values:
        if x is None or (isinstance(x, float) and math.isnan(x)) or x == "":
            continue
        if isinstance(x, float):
            out.add(str(int(x)) if x.is_integer() else _decimal_text(x))
        else:
            out.add(str(x))
    return sorted(out)


# -- writing ------------------------------------------------------------------------------------------------
def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _odm(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, _q(ODM_NS, tag), {k: v for k, v in attrs.items() if v != ""})


def _def(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, _q(DEF_NS, tag), {k: v for k, v in attrs.items() if v != ""})


def _description(parent: etree._Element, text: str, tag: str = "Description") -> None:
    d = _odm(parent, tag)
    t = _odm(d, "TranslatedText")
    t.set(_q(XML_NS, "lang"), "en")
    t.text = text


def _nci(parent: etree._Element, code: str) -> None:
    if code:
        _odm(parent, "Alias", Context="nci:ExtCodeID", Name=code)


def _item_ref(parent: etree._Element, item: ItemSpec, order: int, where: WhereClause | None = None) -> None:
    attrs = {
        "ItemOID": item.oid,
        "OrderNumber": str(order),
        "Mandatory": "Yes" if item.mandatory else "No",
        "KeySequence": str(item.key_sequence) if item.key_sequence else "",
        "MethodOID": item.method,
    }
    ref = _odm(parent, "ItemRef", **attrs)
    if item.has_no_data:
        ref.set(_q(DEF_NS, "HasNoData"), "Yes")
    if where is not None:
        _def(ref, "WhereClauseRef", WhereClauseOID=where.oid)


def _item_def(parent: etree._Element, item: ItemSpec) -> None:
    attrs = {
        "OID": item.oid,
        "Name": item.name,
        "DataType": item.data_type,
        "Length": str(item.length) if item.length is not None else "",
        "SignificantDigits": str(item.significant_digits) if item.significant_digits is not None else "",
        "SASFieldName": item.name,
    }
    el = _odm(parent, "ItemDef", **attrs)
    if item.display_format:
        el.set(_q(DEF_NS, "DisplayFormat"), item.display_format)
    if item.comment:
        el.set(_q(DEF_NS, "CommentOID"), item.comment)
    _description(el, item.label)
    if item.codelist:
        _odm(el, "CodeListRef", CodeListOID=item.codelist)
    origin = _def(el, "Origin", Type=item.origin.type, Source=item.origin.source)
    if item.origin.description:
        _description(origin, item.origin.description)
    if item.value_list:
        _def(el, "ValueListRef", ValueListOID=item.value_list)


def build_define(spec: DefineSpec, *, created: datetime | None = None) -> etree._ElementTree:
    """The Define-XML 2.1 document of ``spec`` (elements in the order the schema requires)."""
    created = created or datetime.now(UTC)
    stamp = created.replace(microsecond=0).isoformat()
    root = etree.Element(_q(ODM_NS, "ODM"), nsmap=NSMAP)  # type: ignore[arg-type]
    for k, v in {
        "FileType": "Snapshot",
        "FileOID": f"DEF.{spec.study_oid}.{spec.mdv_name}",
        "ODMVersion": "1.3.2",
        "CreationDateTime": stamp,
        "Originator": "ImmunoSep",
        "SourceSystem": "immunosep",
        "SourceSystemVersion": immunosep.__version__,
    }.items():
        root.set(k, v)
    root.set(_q(DEF_NS, "Context"), spec.context)
    study = _odm(root, "Study", OID=spec.study_oid)
    gv = _odm(study, "GlobalVariables")
    for tag, text in (
        ("StudyName", spec.study_name),
        ("StudyDescription", spec.study_description),
        ("ProtocolName", spec.protocol_name),
    ):
        _odm(gv, tag).text = text
    mdv = _odm(
        study,
        "MetaDataVersion",
        OID=f"MDV.{spec.mdv_name}",
        Name=spec.mdv_name,
        Description=spec.mdv_description,
    )
    mdv.set(_q(DEF_NS, "DefineVersion"), DEFINE_VERSION)
    standards = _def(mdv, "Standards")
    for s in spec.standards:
        _def(
            standards,
            "Standard",
            OID=s.oid,
            Name=s.name,
            Type=s.type,
            PublishingSet=s.publishing_set,
            Version=s.version,
            Status=s.status,
        )
    for kind, tag in (("acrf", "AnnotatedCRF"), ("supplemental", "SupplementalDoc")):
        docs = [d for d in spec.documents if d.kind == kind]
        if docs:
            holder = _def(mdv, tag)
            for d in docs:
                _def(holder, "DocumentRef", leafID=d.leaf_id)
    for vl in spec.value_lists:
        el = _def(mdv, "ValueListDef", OID=vl.oid)
        for i, (where, item) in enumerate(vl.entries, 1):
            _item_ref(el, item, i, where)
    wheres = {where.oid: where for vl in spec.value_lists for where, _ in vl.entries}  # shared by value lists
    for where in wheres.values():
        wc = _def(mdv, "WhereClauseDef", OID=where.oid)
        rc = _odm(wc, "RangeCheck", Comparator="EQ" if len(where.values) == 1 else "IN", SoftHard="Soft")
        rc.set(_q(DEF_NS, "ItemOID"), where.item_oid)
        for value in where.values:
            _odm(rc, "CheckValue").text = value
    for ds in spec.datasets:
        attrs = {
            "OID": f"IG.{ds.name}",
            "Name": ds.name,
            "Repeating": "Yes" if ds.repeating else "No",
            "IsReferenceData": "Yes" if ds.reference_data else "No",
            "SASDatasetName": ds.name,
            "Domain": ds.domain,
            "Purpose": ds.purpose,
        }
        group = _odm(mdv, "ItemGroupDef", **attrs)
        group.set(_q(DEF_NS, "Structure"), ds.structure)
        group.set(_q(DEF_NS, "ArchiveLocationID"), f"LF.{ds.name}")
        if ds.standard_oid:
            group.set(_q(DEF_NS, "StandardOID"), ds.standard_oid)
        if ds.comment:
            group.set(_q(DEF_NS, "CommentOID"), ds.comment)
        _description(group, ds.label)
        for i, item in enumerate(ds.items, 1):
            _item_ref(group, item, i)
        cls = _def(group, "Class", Name=ds.class_name)
        if ds.subclass:
            _def(cls, "SubClass", Name=ds.subclass)
        leaf = _def(group, "leaf", ID=f"LF.{ds.name}")
        leaf.set(_q(XLINK_NS, "href"), ds.href)
        _def(leaf, "title").text = ds.href
    for ds in spec.datasets:
        for item in ds.items:
            _item_def(mdv, item)
    for vl in spec.value_lists:
        for _, item in vl.entries:
            _item_def(mdv, item)
    for cl in spec.codelists:
        attrs = {"OID": cl.oid, "Name": cl.name, "DataType": cl.data_type}
        el = _odm(mdv, "CodeList", **attrs)
        if cl.standard_oid:
            el.set(_q(DEF_NS, "StandardOID"), cl.standard_oid)
        if cl.dictionary:
            _odm(el, "ExternalCodeList", Dictionary=cl.dictionary, Version=cl.version)
        elif any(t.decode for t in cl.terms):
            for i, t in enumerate(cl.terms, 1):
                item = _odm(el, "CodeListItem", CodedValue=t.value, OrderNumber=str(i))
                if t.extended:
                    item.set(_q(DEF_NS, "ExtendedValue"), "Yes")
                _description(item, t.decode or t.value, "Decode")
                _nci(item, t.nci)
        else:
            for i, t in enumerate(cl.terms, 1):
                item = _odm(el, "EnumeratedItem", CodedValue=t.value, OrderNumber=str(i))
                if t.extended:
                    item.set(_q(DEF_NS, "ExtendedValue"), "Yes")
                _nci(item, t.nci)
        _nci(el, cl.nci)
    for m in spec.methods:
        el = _odm(mdv, "MethodDef", OID=m.oid, Name=m.name, Type=m.kind)
        _description(el, m.description)
    for oid, text in spec.comments.items():
        el = _def(mdv, "CommentDef", OID=oid)
        _description(el, text)
    for d in spec.documents:
        leaf = _def(mdv, "leaf", ID=d.leaf_id)
        leaf.set(_q(XLINK_NS, "href"), d.href)
        _def(leaf, "title").text = d.title
    doc = etree.ElementTree(root)
    pi = etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{STYLESHEET}"')
    root.addprevious(pi)
    return doc


def stylesheet_text() -> bytes:
    """The XSLT 1.0 stylesheet shipped with the package (``immunosep/data/define2-1.xsl``)."""
    return resources.files("immunosep").joinpath(f"data/{STYLESHEET}").read_bytes()


def write_define(spec: DefineSpec, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``define.xml`` and its stylesheet into ``out_dir``; returns both paths.

    A document whose file is not in ``out_dir`` (relative to it) is left out, so no link points nowhere.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    present = tuple(d for d in spec.documents if (out / d.href).is_file())
    if present != spec.documents:
        spec = DefineSpec(**{**spec.__dict__, "documents": present})
    tree = build_define(spec)
    path = out / "define.xml"
    tree.write(str(path), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    xsl = out / STYLESHEET
    with resources.as_file(resources.files("immunosep").joinpath(f"data/{STYLESHEET}")) as src:
        shutil.copyfile(src, xsl)
    return path, xsl


# -- helpers the two packages share -------------------------------------------------------------------------
#: CDISC Controlled Terminology package the codelists of both packages name (SDTM and ADaM publishing sets).
CT_VERSION = "2025-03-28"


def ig_standard(name: str, version: str) -> Standard:
    """The implementation guide a package follows (``STD.SDTMIG``, ``STD.ADAMIG``)."""
    return Standard(f"STD.{name.upper()}", name, "IG", version)


def ct_standard(publishing_set: str) -> Standard:
    """CDISC/NCI Controlled Terminology of one publishing set (``STD.CT.SDTM``, ``STD.CT.ADAM``) at
    :data:`CT_VERSION`."""
    return Standard(f"STD.CT.{publishing_set.upper()}", "CDISC/NCI", "CT", CT_VERSION, publishing_set)


def lookup(table: Mapping[str, object], dataset: str, name: str) -> str:
    """The key of ``table`` that applies to ``dataset.name``: ``DS.NAME``, ``NAME``, else the longest
    ``--SUFFIX`` the name ends with (``--DY`` for AESTDY); "" when none does."""
    for key in (f"{dataset}.{name}", name):
        if key in table:
            return key
    suffixes = [k for k in table if k.startswith("--") and name.endswith(k[2:]) and len(name) > len(k) - 2]
    return max(suffixes, key=len, default="")


class Methods:
    """The MethodDefs of one define.xml, each added once by OID (the first description of an OID stays)."""

    def __init__(self) -> None:
        self._by_oid: dict[str, MethodSpec] = {}

    def add(self, oid: str, title: str, text: str, kind: str = "Computation") -> str:
        """Register method ``oid`` ("Algorithm: ``title``", described by ``text``); returns the OID."""
        self._by_oid.setdefault(oid, MethodSpec(oid, f"Algorithm: {title}", text, kind))
        return oid

    def specs(self) -> tuple[MethodSpec, ...]:
        """The methods in OID order (as the document lists them)."""
        return tuple(sorted(self._by_oid.values(), key=lambda m: m.oid))


def oid_part(text: str) -> str:
    """``text`` reduced to the characters an OID part may hold (letters, digits, ``_``, ``-``, ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def codelist_terms(
    values: Sequence[str], known: Sequence[Term], decodes: dict[str, str] | None = None
) -> tuple[Term, ...]:
    """The terms a codelist lists: the values the data use, in the order of ``known`` (which carries NCI
    codes and decodes) and then sorted, each with its decode from ``decodes`` when given."""
    by_value = {t.value: t for t in known}
    order = {t.value: i for i, t in enumerate(known)}
    used = sorted(set(values), key=lambda v: (order.get(v, len(order)), v))
    out = []
    for v in used:
        t = by_value.get(v, Term(v))
        decode = (decodes or {}).get(v, t.decode)
        out.append(Term(v, decode, t.nci, t.extended))
    return tuple(out)
