"""Each patient's list of daily CRF days (``crf_days_entered``, revision 0011), derived from ``daily_crf``.

A trigger keeps the list as CRF rows are inserted; the dashboard shows it. It is derived, so it is not
audited: ``audit verify`` compares it with the rows (:func:`disagreeing`), and ``immunosep db
rebuild-crf-days`` writes the lists that disagree afresh from the rows (:func:`rebuild`), days in entry
order as the trigger writes them. The rows, which are audited, are never changed here.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from immunosep.store.models import CrfDaysEntered, DailyCrf, Patient


def entered(session: Session) -> dict[int, list[int]]:
    """Each patient's CRF study days from the rows, in entry order (the rows' ids), by patient id."""
    days: dict[int, list[int]] = {}
    rows = session.execute(select(DailyCrf.patient_id, DailyCrf.study_day).order_by(DailyCrf.id))
    for patient_id, day in rows:
        days.setdefault(patient_id, []).append(day)
    return days


def listed(session: Session) -> dict[int, str]:
    """Each patient's list as stored (``"1,3,2"``), by patient id."""
    return {p: days for p, days in session.execute(select(CrfDaysEntered.patient_id, CrfDaysEntered.days))}


def disagreeing(session: Session) -> list[int]:
    """Ids of the patients whose list does not hold exactly their rows' days (edited, unreadable, missing,
    or left without rows), in order."""
    return _wrong(entered(session), listed(session))


def rebuild(session: Session) -> list[str]:
    """Write afresh from the rows every list that disagrees with them; the pseudonyms of those patients.

    Under the writers' lock (a CRF row inserted meanwhile waits, its trigger after the new list), in the
    session's transaction: the caller commits."""
    from immunosep.store import audit

    audit.acquire_chain_lock(session)
    rows = entered(session)
    wrong = _wrong(rows, listed(session))
    if not wrong:
        return []
    session.execute(delete(CrfDaysEntered).where(CrfDaysEntered.patient_id.in_(wrong)))
    fresh = [{"patient_id": p, "days": ",".join(map(str, rows[p]))} for p in wrong if p in rows]
    if fresh:
        session.execute(insert(CrfDaysEntered), fresh)
    names = {
        p: name
        for p, name in session.execute(select(Patient.id, Patient.pseudonym).where(Patient.id.in_(wrong)))
    }
    return [names.get(p, f"patient id {p}") for p in wrong]


def _wrong(rows: dict[int, list[int]], lists: dict[int, str]) -> list[int]:
    return [p for p in sorted(rows.keys() | lists.keys()) if not _agrees(lists.get(p), rows.get(p, []))]


def _agrees(days: str | None, rows: list[int]) -> bool:
    """Whether a stored list holds the rows' days (any order: the trigger's is entry order)."""
    if days is None:
        return not rows
    try:
        return sorted(int(d) for d in days.split(",")) == sorted(rows)
    except ValueError:
        return False
