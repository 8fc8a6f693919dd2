"""Blinding and site scope of a trial run under the response-adaptive example protocol, over every route.

Each adaptive draw stores its allocation probability, uniform, data cut and the cut's digest (sealed
columns). A sweep of every GET route of the application (pages, API, audit views, exports), as the blinded
roles that read patient data and as the other site's investigator and pharmacist, finds none of those values and no arm
or drug; the DSMB page shows the adaptive design's predictability beside the permuted blocks'.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fixtures.by_path import load_module
from immunosep.store.db import session_scope
from immunosep.store.models import RandomizationSlot


def _sweep_module() -> Any:
    """tests/web/test_access_sweep.py (its route list and request helper), loaded by path."""
    return load_module("_access_sweep", Path(__file__).with_name("test_access_sweep.py"))


@pytest.fixture
def db_url(_templates, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite("adaptive"), path)
    return f"sqlite:///{path}"


def _known(client: Any, pseudonym: str) -> None:
    """Baseline SOFA 8, then 0 on days 2-9: the primary endpoint is known (achieved)."""
    r = client.post(f"/api/patients/{pseudonym}/crf/1", json={"gcs": 5, "platelets_1e3_ul": 15.0})
    assert r.status_code == 200, r.text
    for day in range(2, 10):
        assert client.post(f"/api/patients/{pseudonym}/crf/{day}", json={"gcs": 15}).status_code == 200


@pytest.mark.requirement("RND-ADP-07", "BLIND-01", "ACC-01")
def test_no_route_shows_a_blinded_or_other_site_user_the_draw_of_an_adaptive_allocation(
    app, login, web
) -> None:  # type: ignore[no-untyped-def]
    sweep = _sweep_module()
    arms: dict[str, str] = {}
    while len(arms) < 2:
        p = web.enroll_patient(login)
        arms.setdefault(web.arm_of(app.state.engine, p), p)
    inv = login("inv1")
    _known(inv, arms["precision"])
    assert inv.post(f"/api/patients/{arms['placebo']}/outcome", json={"death_day": 3}).status_code == 200
    web.enroll_patient(login), web.enroll_patient(login)
    with session_scope(app.state.engine) as s:
        used = s.execute(select(RandomizationSlot).where(RandomizationSlot.used.is_(True))).scalars().all()
        sealed = [x for slot in used for x in (repr(slot.uniform), slot.data_cut, slot.data_cut_sha256)]
        sealed += [repr(slot.probability) for slot in used if slot.probability != 0.5]
    assert any(slot.probability != 0.5 for slot in used)
    patient = arms["precision"]
    # the blinded roles that read patient data (the lab's and the administrator's pages are swept on the
    # block trial by test_access_sweep.py) and the other site's investigator and pharmacist
    for username in ("inv1", "mon1", "dm", "inv2", "pharm2"):
        c = login(username)
        for ep in sweep.endpoints(app):
            if ep.method != "GET" or (ep.method, ep.path) in sweep.PUBLIC:
                continue
            r = sweep.call(c.http, ep, patient, 1, c.csrf)
            assert r.status_code < 500, (username, ep, r.text[:300])
            found = [x for x in sealed if x and x in r.text]
            assert not found, (username, ep, found)
            if username != "pharm2":
                leak = sweep.FORBIDDEN.search(r.text.lower()) if ep.path != "/openapi.json" else None
                assert leak is None, (username, ep, leak.group(0) if leak else "")
    dsmb = login("dsmb").get("/dsmb")
    assert dsmb.status_code == 200 and "adaptive" in dsmb.text and "Permuted blocks would give" in dsmb.text
    api = login("dsmb").get("/api/dsmb/predictability").json()
    assert api["design"] == "adaptive" and api["pooled"]["allocations"] == len(used)
