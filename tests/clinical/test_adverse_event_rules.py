"""The AE consistency rule: seriousness and its criteria, outcome and death, end day (ICH E2A, CDISC CT)."""

from __future__ import annotations

import pytest

from immunosep.clinical.adverse_events import (
    ACTIONS,
    ENDED,
    OUTCOMES,
    SERIOUSNESS_CRITERIA,
    check_adverse_event,
)
from immunosep.errors import ImmunoSepError

GOOD = {
    "serious": True,
    "criteria": ("hospitalization",),
    "action": "DOSE NOT CHANGED",
    "outcome": "RECOVERED/RESOLVED",
    "onset_day": 3,
    "end_day": 5,
    "death_day": None,
}


def test_the_terms_are_the_cdisc_codelists_and_ich_criteria():
    # CDISC CT: OUT (C66768) has exactly these six terms; ACN (C66767) terms offered here are all in it
    assert set(OUTCOMES) == {
        "FATAL",
        "NOT RECOVERED/NOT RESOLVED",
        "RECOVERED/RESOLVED",
        "RECOVERED/RESOLVED WITH SEQUELAE",
        "RECOVERING/RESOLVING",
        "UNKNOWN",
    }
    acn = {
        "DOSE INCREASED",
        "DOSE NOT CHANGED",
        "DOSE RATE REDUCED",
        "DOSE REDUCED",
        "DRUG INTERRUPTED",
        "DRUG WITHDRAWN",
        "NOT APPLICABLE",
        "UNKNOWN",
    }
    assert set(ACTIONS) <= acn and len(set(ACTIONS)) == len(ACTIONS)
    assert sorted(v for v, _ in SERIOUSNESS_CRITERIA.values()) == [
        "AESCONG",
        "AESDISAB",
        "AESDTH",
        "AESHOSP",
        "AESLIFE",
        "AESMIE",
    ]
    assert set(OUTCOMES) >= ENDED


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"serious": False, "criteria": ()},
        {"outcome": "NOT RECOVERED/NOT RESOLVED", "end_day": None},
        {"outcome": "RECOVERING/RESOLVING", "end_day": None},
        {"outcome": "UNKNOWN", "end_day": None, "action": "UNKNOWN"},
        {"end_day": 3},  # ends on its onset day
        {"criteria": ("death", "life_threatening"), "outcome": "FATAL", "end_day": 7, "death_day": 7},
        {"outcome": "RECOVERED/RESOLVED WITH SEQUELAE", "death_day": 9},  # ended before the death
    ],
)
def test_consistent_events_pass(changes):
    check_adverse_event(**{**GOOD, **changes})


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"criteria": ()}, "criteria", "needs at least one seriousness criterion"),
        ({"serious": False}, "serious", "marked not serious"),
        ({"criteria": ("bad_luck",)}, "criteria", "unknown seriousness criteria"),
        ({"action": "DOSE INCREASED"}, "action", "action taken is one of"),
        ({"outcome": "recovered"}, "outcome", "outcome is one of"),
        ({"outcome": "FATAL", "end_day": 7, "death_day": 7}, "outcome", "go together"),
        ({"criteria": ("death",), "end_day": 7, "death_day": 7}, "outcome", "go together"),
        ({"criteria": ("death",), "outcome": "FATAL", "end_day": 7}, "outcome", "death is not recorded"),
        (
            {"criteria": ("death",), "outcome": "FATAL", "end_day": 6, "death_day": 7},
            "end_day",
            "day of death",
        ),
        ({"end_day": None}, "end_day", "needs its end day"),
        ({"outcome": "NOT RECOVERED/NOT RESOLVED"}, "end_day", "leave the end day empty"),
        ({"end_day": 2}, "end_day", "before the onset"),
        ({"end_day": 8, "death_day": 7}, "end_day", "after the patient's death"),
        ({"onset_day": 8, "end_day": 9, "death_day": 7}, "onset_day", "after the patient's death"),
    ],
)
def test_inconsistent_events_are_refused_naming_the_field(changes, field, message):
    with pytest.raises(ImmunoSepError, match=message) as caught:
        check_adverse_event(**{**GOOD, **changes})
    assert caught.value.field == field
