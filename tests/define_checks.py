"""Checks of a written define.xml against the Define-XML 2.1 schema, odmlib and the XPT files it describes.

Shared by tests/conduct/test_define_xml.py (SDTM) and tests/analysis/test_define_xml.py (ADaM). Nothing here
uses the code under test: the schema is CDISC's (shipped by odmlib), the files are read back by pyreadstat,
and lengths and decimals are counted with :mod:`decimal` from Python's shortest ``repr`` of each float.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from pathlib import Path

import odmlib.define_loader as define_loader
import odmlib.loader as odm_loader
import odmlib.schema_manager as schema_manager
import pyreadstat
from lxml import etree
from odmlib.oid_generator import create_oid_checker

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
DEF = "{http://www.cdisc.org/ns/def/v2.1}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ISO = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "datetime": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"),
    "partialDatetime": re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?$"),
    "durationDatetime": re.compile(r"^P[0-9YMWDTHS]+$"),
}


@cache
def define_schema() -> etree.XMLSchema:
    """CDISC's Define-XML 2.1 schema as odmlib ships it (define2-1-0.xsd with ODM 1.3.2 under it)."""
    return etree.XMLSchema(etree.parse(schema_manager.get_schema_path("define", "2.1")))


def _digits(value: float) -> tuple[int, int]:
    """(all digits, digits after the point) of a number's shortest decimal text."""
    _sign, digits, exponent = Decimal(repr(float(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    decimals = max(0, -exponent)
    whole = max(1, len(digits) + exponent) if len(digits) + exponent > 0 else 1
    return whole + decimals, decimals


def check_define(folder: Path) -> etree._ElementTree:
    """Every check of the define.xml in ``folder``; returns the parsed document."""
    path = folder / "define.xml"
    doc = etree.parse(str(path))
    schema = define_schema()
    assert schema.validate(doc), [str(e) for e in schema.error_log][:20]
    assert b'<?xml-stylesheet type="text/xsl" href="define2-1.xsl"?>' in path.read_bytes()[:200]

    # odmlib's own loader reads it, and its OID checker finds every reference defined
    loader = odm_loader.ODMLoader(define_loader.XMLDefineLoader(model_package="define_2_1", ns_uri=NS["def"]))
    loader.open_odm_document(str(path))
    loader.root().verify_oids(create_oid_checker("define_2_1"))
    mdv_obj = loader.MetaDataVersion()

    mdv = doc.find("odm:Study/odm:MetaDataVersion", NS)
    assert mdv is not None
    items = {e.get("OID"): e for e in mdv.findall("odm:ItemDef", NS)}
    codelists = {e.get("OID"): e for e in mdv.findall("odm:CodeList", NS)}
    methods = {e.get("OID") for e in mdv.findall("odm:MethodDef", NS)}
    comments = {e.get("OID") for e in mdv.findall("def:CommentDef", NS)}
    value_lists = {e.get("OID"): e for e in mdv.findall("def:ValueListDef", NS)}
    wheres = {e.get("OID") for e in mdv.findall("def:WhereClauseDef", NS)}
    groups = {g.get("Name"): g for g in mdv.findall("odm:ItemGroupDef", NS)}
    assert len(mdv_obj.ItemGroupDef) == len(groups) and len(mdv_obj.ItemDef) == len(items)

    refs = mdv.findall(".//odm:ItemRef", NS)
    assert {r.get("ItemOID") for r in refs} <= items.keys()
    assert {r.get("ItemOID") for r in refs} == items.keys(), "an ItemDef no ItemRef uses"
    assert {r.get("MethodOID") for r in refs if r.get("MethodOID")} <= methods
    assert {e.get("CodeListOID") for e in mdv.findall(".//odm:CodeListRef", NS)} <= codelists.keys()
    assert {e.get("ValueListOID") for e in mdv.findall(".//def:ValueListRef", NS)} <= value_lists.keys()
    assert {e.get("WhereClauseOID") for e in mdv.findall(".//def:WhereClauseRef", NS)} <= wheres
    used_comments = {e.get(DEF + "CommentOID") for e in mdv.iter() if e.get(DEF + "CommentOID")}
    assert used_comments <= comments
    for r in refs:  # Define-XML 2.1: a derived variable has a method; a predecessor names its source
        origin = items[r.get("ItemOID")].find("def:Origin", NS)
        assert origin is not None, r.get("ItemOID")
        if origin.get("Type") == "Derived":
            assert r.get("MethodOID"), r.get("ItemOID")
        if origin.get("Type") == "Predecessor":
            assert origin.findtext("odm:Description/odm:TranslatedText", namespaces=NS), r.get("ItemOID")

    for leaf in mdv.findall("def:leaf", NS):  # documents: each file is where the link says
        assert (folder / leaf.get(XLINK_HREF)).is_file(), leaf.get(XLINK_HREF)

    xpts = sorted(folder.glob("*.xpt"))
    assert {p.stem.upper() for p in xpts} == set(groups), "one ItemGroupDef per XPT file"
    for xpt in xpts:
        group = groups[xpt.stem.upper()]
        leaf = group.find("def:leaf", NS)
        assert leaf is not None and leaf.get(XLINK_HREF) == xpt.name
        df, meta = pyreadstat.read_xport(str(xpt), disable_datetime_conversion=True)
        assert group.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == meta.file_label
        group_refs = group.findall("odm:ItemRef", NS)
        assert [items[r.get("ItemOID")].get("Name") for r in group_refs] == list(df.columns), xpt.name
        for ref in group_refs:
            item = items[ref.get("ItemOID")]
            name = item.get("Name")
            _check_item(item, df[name], meta.column_names_to_labels[name], f"{xpt.name}:{name}")
            if ref.get(DEF + "HasNoData") == "Yes":
                assert _present(df[name]).empty, name
            cl_ref = item.find("odm:CodeListRef", NS)
            if cl_ref is not None:  # every value used is a term of the codelist (or an external dictionary)
                cl = codelists[cl_ref.get("CodeListOID")]
                if cl.find("odm:ExternalCodeList", NS) is None:
                    terms = {t.get("CodedValue") for t in cl if t.get("CodedValue") is not None}
                    assert set(_texts(df[name])) <= terms, (xpt.name, name, set(_texts(df[name])) - terms)
            vl_ref = item.find("def:ValueListRef", NS)
            if vl_ref is not None:  # each value-level definition holds the values of its rows
                for vref in value_lists[vl_ref.get("ValueListOID")].findall("odm:ItemRef", NS):
                    where = mdv.find(
                        f"def:WhereClauseDef[@OID='{vref.find('def:WhereClauseRef', NS).get('WhereClauseOID')}']",
                        NS,
                    )
                    check = where.find("odm:RangeCheck", NS)
                    by = items[check.get(DEF + "ItemOID")].get("Name")
                    values = [c.text for c in check.findall("odm:CheckValue", NS)]
                    rows = df.loc[df[by].astype(str).isin(values), name]
                    assert not rows.empty, (xpt.name, name, values)
                    _check_item(items[vref.get("ItemOID")], rows, None, f"{xpt.name}:{name}[{values}]")
    return doc


def _present(values):  # type: ignore[no-untyped-def]
    return values[values.notna() & (values.astype(str) != "")]


def _texts(values) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for v in _present(values):
        out.append(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
    return out


def _check_item(item: etree._Element, values, label: str | None, where: str) -> None:  # type: ignore[no-untyped-def]
    """Name, label, type and a Length that holds every value."""
    if label is not None:
        assert item.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == label, where
    data_type = item.get("DataType")
    present = _present(values)
    if values.dtype.kind == "f":
        assert data_type in ("integer", "float"), where
        if present.empty:
            return
        digits = [_digits(v) for v in present]
        assert int(item.get("Length")) >= max(d for d, _ in digits), where
        if data_type == "integer":
            assert all(float(v).is_integer() for v in present), where
        else:
            assert int(item.get("SignificantDigits")) >= max(s for _, s in digits), where
        return
    if data_type in ISO:
        assert item.get("Length") is None, where
        assert all(ISO[data_type].match(str(v)) for v in present), where
        return
    assert data_type == "text", where
    longest = max([0, *(len(str(v).encode("utf-8")) for v in present)])
    assert int(item.get("Length")) >= max(1, longest), where


def render_html(folder: Path) -> str:
    """The document as our stylesheet renders it (lxml's XSLT 1.0 processor)."""
    transform = etree.XSLT(etree.parse(str(folder / "define2-1.xsl")))
    return str(transform(etree.parse(str(folder / "define.xml"))))
