"""The data manager downloads the CDISC ODM export; investigators and monitors get their own sites' patients."""

from __future__ import annotations

from pathlib import Path

import odmlib
from lxml import etree

XSD = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


def test_odm_download_is_valid_blinded_and_scoped(login, api_enroll) -> None:  # type: ignore[no-untyped-def]
    s01 = api_enroll()
    s02 = api_enroll(inv="inv2")
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    keys = {}
    for username in ("dm", "inv1", "inv2", "mon1"):
        r = login(username).get("/api/export/odm")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
        assert "attachment" in r.headers["content-disposition"]
        doc = etree.fromstring(r.content)
        schema.assertValid(doc)
        keys[username] = [sd.get("SubjectKey") for sd in doc.iterfind(".//odm:SubjectData", NS)]
        assert "IT.allocation" not in r.text
    assert keys == {"dm": [s01, s02], "inv1": [s01], "inv2": [s02], "mon1": [s01]}
    for username in ("lab", "admin", "dsmb", "pharm1"):
        assert login(username).get("/api/export/odm").status_code == 403


def test_the_lock_page_links_the_download(login) -> None:  # type: ignore[no-untyped-def]
    page = login("dm").get("/lock")
    assert page.status_code == 200 and 'href="/api/export/odm"' in page.text
