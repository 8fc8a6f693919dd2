"""define.xml of the ADaM package (analysis/define_xml.py), and the docs' list of ADaM variables.

The hand-built trial's package, unblinded and blinded, is checked by tests/define_checks.py (CDISC's
Define-XML 2.1 schema, odmlib, every XPT described with its labels, types and lengths, codelists holding
every value, the stylesheet rendering every dataset); the methods a reviewer asks about carry the
protocol's numbers.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd
import pytest
from handmade import handmade_raw
from lxml import etree

from define_checks import DEF, NS, check_define, render_html
from immunosep.analysis.adam import AdamDataset, adam_view
from immunosep.analysis.datasets import derive_datasets
from immunosep.analysis.dictionary import adam_dictionary
from immunosep.analysis.writers import write_datasets
from immunosep.protocol import default_protocol
from immunosep.protocol.schema import Protocol

NAN = float("nan")
DOCS = Path(__file__).parents[2] / "docs" / "analysis.md"


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    return default_protocol()


@pytest.fixture(scope="module")
def datasets(protocol: Protocol) -> dict[str, pd.DataFrame]:
    """The hand-built trial with randomization and dosing dates (one patient never dosed)."""
    raw = handmade_raw()
    p = raw.patients.copy()
    p["randomized_at"] = pd.to_datetime(
        ["2024-03-01 10:00", "2024-03-05 09:00", "2024-03-10 23:30", "2024-03-12 08:00", "2024-04-10 12:00"]
    )
    p["first_dose_at"] = pd.to_datetime(
        ["2024-03-01 14:00", "2024-03-05 18:00", "2024-03-11 01:00", "2024-03-12 12:00", None]
    )
    p["last_dose_day"] = [15.0, 3.0, 6.0, 15.0, NAN]
    raw = dataclasses.replace(
        raw,
        patients=p,
        withdrawals=raw.withdrawals.assign(randomized_at=pd.to_datetime(["2024-04-02 10:00"])),
    )
    return derive_datasets(raw, protocol).as_dict()


@pytest.fixture(scope="module")
def packages(
    datasets: dict[str, pd.DataFrame], protocol: Protocol, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    out = {}
    for blinded in (False, True):
        folder = tmp_path_factory.mktemp("blinded" if blinded else "unblinded")
        paths = write_datasets(datasets, folder, protocol, blinded=blinded)
        assert paths["define"]["xml"] == folder / "define.xml"
        out["blinded" if blinded else "unblinded"] = folder
    return out


@pytest.mark.parametrize("which", ["unblinded", "blinded"])
def test_the_package_has_a_valid_define_that_describes_every_xpt(
    packages: dict[str, Path], protocol: Protocol, which: str
) -> None:
    folder = packages[which]
    doc = check_define(folder)
    mdv = doc.find("odm:Study/odm:MetaDataVersion", NS)
    groups = {g.get("Name"): g for g in mdv.findall("odm:ItemGroupDef", NS)}
    assert set(groups) == {"ADSL", "ADSOFA", "ADTTE", "ADAE"}
    assert groups["ADTTE"].find("def:Class/def:SubClass", NS).get("Name") == "TIME-TO-EVENT"
    standards = {(s.get("Name"), s.get("Version")) for s in mdv.iterfind("def:Standards/def:Standard", NS)}
    assert ("ADaMIG", "1.3") in standards
    # dates are numbers shown as DATE9.
    assert mdv.find("odm:ItemDef[@OID='IT.ADSL.RANDDT']", NS).get(DEF + "DisplayFormat") == "DATE9."
    # AVAL by PARAMCD: one definition per ADTTE parameter, each with its own method
    codes = {f"OS{d}" for d in protocol.endpoints.mortality.days} | {"SIDFREV"}
    refs = mdv.findall("def:ValueListDef[@OID='VL.ADTTE.AVAL']/odm:ItemRef", NS)
    assert {r.get("ItemOID").rsplit(".", 1)[1] for r in refs} == codes
    assert len({r.get("MethodOID") for r in refs}) == len(codes)
    html = render_html(folder)
    for name in groups:
        assert f'id="IG.{name}"' in html
    if which == "blinded":
        body = (folder / "define.xml").read_text(encoding="utf-8").lower()
        assert "it.adsl.armcd" not in body
        for arm in protocol.arms:
            assert arm.label.lower() not in body and f'"{arm.code}"' not in body


def _method(folder: Path, dataset: str, variable: str) -> str:
    tree = etree.parse(str(folder / "define.xml"))
    mdv = tree.find("odm:Study/odm:MetaDataVersion", NS)
    ref = mdv.find(f"odm:ItemGroupDef[@Name='{dataset}']/odm:ItemRef[@ItemOID='IT.{dataset}.{variable}']", NS)
    method = mdv.find(f"odm:MethodDef[@OID='{ref.get('MethodOID')}']", NS)
    return method.findtext("odm:Description/odm:TranslatedText", namespaces=NS)


def test_the_methods_a_reviewer_asks_about_carry_the_protocols_rules(
    packages: dict[str, Path], protocol: Protocol
) -> None:
    folder = packages["unblinded"]
    p = protocol.endpoints.primary
    primary = _method(folder, "ADSL", "PRIMFL")
    assert f">= {p.min_decrease:g}" in primary and "DSOFAPW" in primary
    imputation = _method(folder, "ADSOFA", "AVAL")
    assert f"scores {p.death_score:g}" in imputation and f"to day {p.death_imputed_until_day}" in imputation
    assert "DTHWORST" in imputation and "LOCF" in imputation
    assert _method(folder, "ADSL", "MSOFAPW").startswith(
        f"Mean of ADSOFA.AVAL (ANL01FL = Y) over study days {p.window_first_day}-{p.window_last_day}"
    )
    assert "TRTSDT" in _method(folder, "ADAE", "TRTEMFL")
    assert "removal of data" in _method(folder, "ADSL", "ITTFL")
    assert "injection" in _method(folder, "ADSL", "SAFFL")
    assert f"{protocol.sidf.immunoparalysis_hla_dr_above:g}" in _method(folder, "ADSL", "SIDFRVFL")


# -- the docs' table of ADaM variables --------------------------------------------------------------------
def _docs_tables(view: dict[str, AdamDataset], protocol: Protocol) -> str:
    """The Markdown of docs/analysis.md "ADaM variables and their origins", from the view's metadata."""
    out = []
    for ds in view.values():
        out.append(f"#### {ds.name} ({ds.structure}): {ds.label}; key {', '.join(ds.keys)}\n")
        out.append("| variable | label | type | origin | source | derivation |")
        out.append("|---|---|---|---|---|---|")
        dictionary = adam_dictionary(ds, protocol)
        for v, row in zip(ds.variables, dictionary.itertuples(index=False), strict=True):
            kind = f"{v.kind} {v.fmt}" if v.fmt else v.kind
            source = f"`{v.source}`" if v.source else ""
            out.append(f"| `{v.name}` | {v.label} | {kind} | {v.origin} | {source} | {row.derivation} |")
        out.append("")
    return "\n".join(out)


def test_docs_list_every_adam_dataset_and_variable_with_its_origin(
    datasets: dict[str, pd.DataFrame], protocol: Protocol
) -> None:
    """docs/analysis.md's tables equal the metadata; ``IMMUNOSEP_UPDATE_SNAPSHOTS=1`` rewrites them."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("#### ADSL (ADSL)")
    end = text.index("## results.json")
    expected = _docs_tables(adam_view(datasets, protocol), protocol)
    if os.environ.get("IMMUNOSEP_UPDATE_SNAPSHOTS") == "1":
        DOCS.write_text(text[:start] + expected + "\n" + text[end:], encoding="utf-8")
        text = DOCS.read_text(encoding="utf-8")
        end = text.index("## results.json")
    assert text[start:end].rstrip() == expected.rstrip(), "rerun with IMMUNOSEP_UPDATE_SNAPSHOTS=1"
