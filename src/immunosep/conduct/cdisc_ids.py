"""The CDISC identifiers of the trial and its subjects, defined once for SDTM and ADaM.

``STUDYID`` is the protocol's trial code in upper case (``IMMUNOSEP``); ``USUBJID`` is
``STUDYID-SITE-SUBJECT``, and since the patient's pseudonym is already ``<site>-<number>`` (``S01-0004``,
given at screening) it is ``STUDYID-<pseudonym>`` (``IMMUNOSEP-S01-0004``). The SDTM export and the ADaM
datasets both call :func:`usubjid`, so every ADaM ``USUBJID`` is an SDTM ``USUBJID`` (SDTMIG 3.4 section
4.1.2.1: unique within the submission, identical in every dataset of one subject).
"""

from __future__ import annotations

import re

from immunosep.errors import ImmunoSepError
from immunosep.protocol.schema import Protocol

#: A pseudonym as screening writes it: ``<site code>-<four-digit number>``.
_PSEUDONYM = re.compile(r"^[A-Za-z0-9]+-[0-9]+$")


def studyid(protocol: Protocol) -> str:
    """``STUDYID`` of the trial: the protocol's trial code in upper case (``immunosep`` -> ``IMMUNOSEP``)."""
    return protocol.trial.code.strip().upper()


def usubjid(studyid: str, pseudonym: str) -> str:
    """``USUBJID`` = ``STUDYID-SITE-SUBJECT`` (``IMMUNOSEP``, ``S01-0004`` -> ``IMMUNOSEP-S01-0004``).

    Raises :class:`~immunosep.errors.ImmunoSepError` for an empty study identifier or a pseudonym that is not
    ``<site>-<number>`` (a value that already carries the study prefix, for instance).
    """
    study = studyid.strip().upper()
    if not study:
        raise ImmunoSepError("STUDYID is empty; give the protocol's trial code")
    if not _PSEUDONYM.match(pseudonym):
        raise ImmunoSepError(f"pseudonym {pseudonym!r} is not <site>-<number> (for example S01-0004)")
    return f"{study}-{pseudonym}"


def pseudonym_of(usubjid_value: str, studyid: str) -> str:
    """The pseudonym (``SITE-SUBJECT``) inside a ``USUBJID`` of ``studyid``; the inverse of :func:`usubjid`."""
    prefix = studyid.strip().upper() + "-"
    if not usubjid_value.startswith(prefix):
        raise ImmunoSepError(f"USUBJID {usubjid_value!r} does not belong to study {studyid!r}")
    return usubjid_value[len(prefix) :]
