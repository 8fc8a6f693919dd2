"""STUDYID and USUBJID, defined once for SDTM and ADaM."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunosep.conduct import cdisc_ids
from immunosep.conduct.cdisc_ids import aeseq_order
from immunosep.errors import ImmunoSepError
from immunosep.protocol import default_protocol


def test_usubjid_is_studyid_site_subject_and_inverts():
    study = cdisc_ids.studyid(default_protocol())
    assert study == "IMMUNOSEP"
    assert cdisc_ids.usubjid(study, "S01-0004") == "IMMUNOSEP-S01-0004"
    assert cdisc_ids.usubjid("immunosep", "S12-0100") == "IMMUNOSEP-S12-0100"
    assert cdisc_ids.pseudonym_of("IMMUNOSEP-S01-0004", study) == "S01-0004"


@pytest.mark.parametrize("pseudonym", ["", "0004", "IMMUNOSEP-S01-0004", "S01 0004"])
def test_usubjid_refuses_what_is_not_a_pseudonym(pseudonym):
    with pytest.raises(ImmunoSepError, match="pseudonym"):
        cdisc_ids.usubjid("IMMUNOSEP", pseudonym)


def test_usubjid_refuses_an_empty_study_and_a_foreign_usubjid():
    with pytest.raises(ImmunoSepError, match="STUDYID"):
        cdisc_ids.usubjid(" ", "S01-0004")
    with pytest.raises(ImmunoSepError, match="does not belong"):
        cdisc_ids.pseudonym_of("OTHER-S01-0004", "IMMUNOSEP")


def _aeseq_by_sorted(subject, onset_day, record_id):
    """AESEQ by the rule's plain statement: Python's stable sort on (subject as text, undated last, day, id)."""

    def key(i):
        day = onset_day[i]
        missing = day is None or math.isnan(day)
        return str(subject[i]), missing, 0.0 if missing else day, record_id[i]

    seq = [0] * len(subject)
    previous, n = None, 0
    for i in sorted(range(len(subject)), key=key):
        n = n + 1 if str(subject[i]) == previous else 1
        previous = str(subject[i])
        seq[i] = n
    return seq


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S01-0001", "S01-0002", "S02-0001", "S10-0001", "Sé-0003"]),
            st.one_of(st.none(), st.just(math.nan), st.integers(-3, 30).map(float)),
            st.integers(1, 40),
        ),
        max_size=60,
    )
)
def test_aeseq_order_numbers_events_as_the_plain_sort_does(events):
    subject, onset, record = ([e[k] for e in events] for k in range(3))
    assert aeseq_order(subject, onset, record) == _aeseq_by_sorted(subject, onset, record)


def test_aeseq_order_of_no_events_is_empty():
    assert aeseq_order([], [], []) == []
