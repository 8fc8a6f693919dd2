"""Emergency unblinding needs a reason in words (the audit trail's answer to "why?")."""

from __future__ import annotations

import pytest

from immunosep.conduct.unblinding import emergency_unblind
from immunosep.errors import ImmunoSepError
from immunosep.store.db import session_scope


@pytest.mark.parametrize(
    "reason",
    [
        "..........",
        "\x00" * 12,
        "          x",
        "aaaaaaaaaaaa",
        "1234567890!!",
        "anaphylaxis\x00\x00",
        "-- -- -- --",
    ],
    ids=["dots", "nuls", "spaces", "one-letter", "digits", "nul-inside", "dashes"],
)
@pytest.mark.requirement("BLIND-03")
def test_a_reason_without_words_is_refused_and_nothing_is_revealed(trial, enroll, reason) -> None:
    pseudonym = enroll()
    with session_scope(trial.engine) as s, pytest.raises(ImmunoSepError) as exc:
        emergency_unblind(s, trial.actors["inv1"], pseudonym, reason)
    assert exc.value.field == "reason"


def test_a_reason_in_words_unblinds(trial, enroll) -> None:
    pseudonym = enroll()
    with session_scope(trial.engine) as s:
        shown = emergency_unblind(
            s, trial.actors["inv1"], pseudonym, "  anaphylaxis, the treating physician asks "
        )
    assert shown.pseudonym == pseudonym
