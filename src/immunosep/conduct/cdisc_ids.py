"""The CDISC identifiers of the trial and its subjects, defined once for SDTM and ADaM.

``STUDYID`` is the protocol's trial code in upper case (``IMMUNOSEP``); ``USUBJID`` is
``STUDYID-SITE-SUBJECT``, and since the patient's pseudonym is already ``<site>-<number>`` (``S01-0004``,
given at screening) it is ``STUDYID-<pseudonym>`` (``IMMUNOSEP-S01-0004``). The SDTM export and the ADaM
datasets both call :func:`usubjid`, so every ADaM ``USUBJID`` is an SDTM ``USUBJID`` (SDTMIG 3.4 section
4.1.2.1: unique within the submission, identical in every dataset of one subject).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


def aeseq_order(subject: Sequence[str], onset_day: Sequence[float], record_id: Sequence[int]) -> list[int]:
    """``AESEQ`` of each adverse event, in the order given: 1, 2, ... within a subject, the subject's events
    ordered by onset study day and then by record id (the store's ``adverse_events.id``, which orders events
    reported on the same day as they were entered). SDTM AE and ADaM ADAE both number events with it, so
    ADAE ``AESEQ`` is SDTM ``AESEQ``. An event without an onset day (None or NaN) sorts after the subject's
    dated events; subjects compare as text.

    One stable sort of the four keys in numpy (a Python sort key per event took 0.5 s of ADAE's derivation
    for 344,000 events).
    """
    import numpy as np  # here: the bedside commands import this module and must start without numpy

    if not len(subject) == len(onset_day) == len(record_id):
        raise ImmunoSepError("aeseq_order needs one subject, onset day and record id per adverse event")
    n = len(subject)
    if n == 0:
        return []
    _, subject_rank = np.unique(np.array([str(s) for s in subject], dtype=str), return_inverse=True)
    day = np.asarray(onset_day, dtype=float)  # None -> NaN
    missing = np.isnan(day)
    order = np.lexsort(
        (np.asarray(record_id, dtype=np.int64), np.where(missing, 0.0, day), missing, subject_rank)
    )
    ranked = subject_rank[order]
    position = np.arange(n)
    first = np.r_[True, ranked[1:] != ranked[:-1]]
    seq = np.empty(n, dtype=np.int64)
    seq[order] = position - np.maximum.accumulate(np.where(first, position, 0)) + 1
    return [int(x) for x in seq]
