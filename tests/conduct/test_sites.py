"""Sites: each is created in the country the protocol places it; the administrator can set another."""

from __future__ import annotations

import pytest

from immunosep.conduct import sites
from immunosep.errors import AccessDenied, ImmunoSepError
from immunosep.protocol import default_protocol
from immunosep.store.db import session_scope


def test_new_sites_get_the_protocols_countries(trial):
    with session_scope(trial.engine) as s:
        listed = sites.list_sites(s, trial.actors["admin"])
    # the test trial has 3 sites; the bundled protocol puts its first 20 in Greece
    assert [(x.code, x.country) for x in listed] == [("S01", "GRC"), ("S02", "GRC"), ("S03", "GRC")]
    placed = default_protocol().trial.site_countries(33)
    assert placed[19:22] == ["GRC", "DEU", "DEU"] and placed[-1] == "ROU"
    assert {placed.count(c) for c in ("ITA", "NLD")} == {3}


def test_a_protocol_that_does_not_place_a_site_is_refused():
    trial_info = default_protocol().trial
    with pytest.raises(ImmunoSepError, match="places 33 sites"):
        trial_info.site_countries(34)
    several = trial_info.model_copy(update={"sites_per_country": []})
    with pytest.raises(ImmunoSepError, match="places 0 sites"):
        several.site_countries(1)
    one = trial_info.model_copy(update={"countries": ["Switzerland"], "sites_per_country": []})
    assert one.site_countries(2) == ["CHE", "CHE"]


def test_the_protocol_refuses_an_unknown_country_or_counts_that_do_not_add_up():
    from immunosep.protocol.schema import TrialInfo

    base = {"code": "t", "title": "t", "sites": 3}
    with pytest.raises(ValueError, match="not a country"):
        TrialInfo(**base, countries=["Atlantis"])
    with pytest.raises(ValueError, match="place at least"):
        TrialInfo(**base, countries=["Greece", "Italy"], sites_per_country=[1, 1])
    assert TrialInfo(**base, countries=["Greece", "Italy"], sites_per_country=[2, 2]).site_countries(3) == [
        "GRC",
        "GRC",
        "ITA",
    ]
    with pytest.raises(ValueError, match="entries for"):
        TrialInfo(**base, countries=["Greece"], sites_per_country=[2, 1])


def test_the_admin_sets_a_sites_country_as_an_iso_alpha3_code(trial):
    admin = trial.actors["admin"]
    with session_scope(trial.engine) as s:
        assert sites.set_site_country(s, admin, "S02", " ita ").country == "ITA"
    for bad in ("IT", "Italy", "XXX", ""):
        with pytest.raises(ImmunoSepError, match="alpha-3") as caught, session_scope(trial.engine) as s:
            sites.set_site_country(s, admin, "S02", bad)
        assert caught.value.field == "country"
    with pytest.raises(AccessDenied), session_scope(trial.engine) as s:
        sites.set_site_country(s, trial.actors["inv1"], "S01", "DEU")
    with session_scope(trial.engine) as s:
        countries = {x.code: x.country for x in sites.list_sites(s, admin)}
    assert countries == {"S01": "GRC", "S02": "ITA", "S03": "GRC"}
