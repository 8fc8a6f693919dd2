"""STUDYID and USUBJID, defined once for SDTM and ADaM."""

from __future__ import annotations

import pytest

from immunosep.conduct import cdisc_ids
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
