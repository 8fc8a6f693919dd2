"""What every SDTM domain shares: the subjects with their reference dates, ISO 8601 dates, --DY and EPOCH.

Study days in the database count from the day of the first dose (day 1), as the protocol does. SDTM's
reference start (``RFSTDTC``) is the first dose too, or the randomization when a patient was never dosed,
so a stored study day ``d`` is the calendar date ``RFSTDTC date + (d - 1)`` (``+ d`` for days before day 1)
and ``--DY`` computed back from that date by the SDTMIG rule (no day 0) gives ``d`` again. Times are UTC,
written as ISO 8601 to the second (``2026-01-31T08:00:00``), dates as ``2026-01-31``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.conduct.cdisc_ids import studyid, usubjid
from immunosep.conduct.trial import protocol_of
from immunosep.protocol.schema import Protocol
from immunosep.store.models import (
    Consent,
    DoseRecord,
    Outcome,
    Patient,
    RandomizationSlot,
    ScreeningEntry,
    Site,
    Withdrawal,
)

SCREENING, TREATMENT, FOLLOW_UP = "SCREENING", "TREATMENT", "FOLLOW-UP"


def iso_datetime(value: datetime | None) -> str:
    """ISO 8601 to the second, UTC, no microseconds (``""`` for None)."""
    return value.replace(microsecond=0, tzinfo=None).isoformat(timespec="seconds") if value else ""


def iso_date(value: date | None) -> str:
    return value.isoformat() if value else ""


@dataclass(frozen=True)
class Subject:
    """One subject of the export: identifiers, the arm (unblinded use only) and the reference dates."""

    usubjid: str
    subjid: str
    siteid: str
    patient: Patient | None  # None: erased at withdrawal, only the withdrawal record remains
    arm: str  # protocol arm code from the used randomization slot ("" when none)
    randomized_at: datetime | None
    consented_at: datetime | None
    screened_at: datetime | None
    first_dose_at: datetime | None
    last_dose_at: datetime | None
    death_day: int | None
    last_alive_day: int | None
    withdrawn_at: datetime | None
    country: str = ""  # the site's ISO 3166-1 alpha-3 code ("" when the site has none)

    @property
    def erased(self) -> bool:
        return self.patient is None

    @property
    def reference(self) -> datetime | None:
        """RFSTDTC: the first dose, else the randomization (never dosed); None when erased (dosing unknown)."""
        if self.erased:
            return None
        return self.first_dose_at or self.randomized_at

    def day_date(self, study_day: int | None) -> date | None:
        """Calendar date of a stored study day (day 1 = the reference date; no day 0)."""
        ref = self.reference
        if ref is None or study_day is None:
            return None
        return ref.date() + timedelta(days=study_day - 1 if study_day >= 1 else study_day)

    def dy(self, when: date | datetime | None) -> int | None:
        """--DY by SDTMIG: date - RFSTDTC date + 1 on or after the reference, date - RFSTDTC date before it."""
        ref = self.reference
        if ref is None or when is None:
            return None
        d = when.date() if isinstance(when, datetime) else when
        delta = (d - ref.date()).days
        return delta + 1 if delta >= 0 else delta

    def epoch(self, when: date | datetime | None, treatment_days: int) -> str:
        """EPOCH of an observation: screening before the reference start, treatment to its end, then follow-up."""
        ref = self.reference
        if ref is None or when is None:
            return ""
        end = self.treatment_end(treatment_days)
        if isinstance(when, datetime):
            before, within = when < ref, end is not None and when <= end
        else:
            before, within = when < ref.date(), end is not None and when <= end.date()
        if before:
            return SCREENING
        return TREATMENT if within else FOLLOW_UP

    def treatment_end(self, treatment_days: int) -> datetime | None:
        """End of the treatment epoch: the last injection given; never dosed, the end of the planned days."""
        if self.last_dose_at is not None:
            return self.last_dose_at
        ref = self.reference
        if ref is None:
            return None
        return datetime.combine(ref.date() + timedelta(days=treatment_days - 1), time(23, 59, 59), ref.tzinfo)

    def end_day(self) -> int | None:
        """Study day of the end of participation: death, else the last day known alive."""
        return self.death_day if self.death_day is not None else self.last_alive_day


@dataclass(frozen=True)
class Context:
    """The trial as the domains need it: protocol, STUDYID and the subjects (by USUBJID, sorted)."""

    protocol: Protocol
    studyid: str
    subjects: tuple[Subject, ...]
    blinded: bool

    def by_patient_id(self) -> dict[int, Subject]:
        return {s.patient.id: s for s in self.subjects if s.patient is not None}

    def row(self, domain: str, subject: Subject, **values: Any) -> dict[str, Any]:
        return {"STUDYID": self.studyid, "DOMAIN": domain, "USUBJID": subject.usubjid, **values}


def schedule_hour(study_day: int, hour: int) -> int:
    """Hours from hour 0 of study day 1 to a scheduled injection (the dosing log's day and hour)."""
    return (study_day - 1) * 24 + hour


def dose_time(subject: Subject, study_day: int, hour: int, first_slot: int) -> datetime | None:
    """When a scheduled injection was due: the first dose's time plus the schedule's hours since its slot.

    ``first_slot`` is :func:`schedule_hour` of the first injection given (whose time is ``first_dose_at``).
    """
    if subject.first_dose_at is None:
        return None
    return subject.first_dose_at + timedelta(hours=schedule_hour(study_day, hour) - first_slot)


def load_context(session: Session, *, blinded: bool) -> Context:
    """Collect the randomized subjects (those erased at withdrawal included, as identifiers only)."""
    p = protocol_of(session)
    study = studyid(p)
    rows = session.execute(
        select(Patient, Site.code, Site.country)
        .join(Site)
        .where(Patient.status.in_(("randomized", "withdrawn")))
    ).all()
    slots = {
        s.patient_id: s
        for s in session.execute(select(RandomizationSlot).where(RandomizationSlot.patient_id.is_not(None)))
        .scalars()
        .all()
    }
    consents = dict(session.execute(select(Consent.patient_id, Consent.consented_at)).all())
    screened = dict(session.execute(select(ScreeningEntry.patient_id, ScreeningEntry.screened_at)).all())
    outcomes = {o.patient_id: o for o in session.execute(select(Outcome)).scalars()}
    given: dict[int, list[DoseRecord]] = {}
    for d in session.execute(
        select(DoseRecord).where(DoseRecord.given.is_(True)).order_by(DoseRecord.study_day, DoseRecord.hour)
    ).scalars():
        given.setdefault(d.patient_id, []).append(d)
    withdrawals = {w.pseudonym: w for w in session.execute(select(Withdrawal)).scalars()}
    subjects: list[Subject] = []
    for pt, site, country in rows:
        slot = slots.get(pt.id)
        o = outcomes.get(pt.id)
        doses = given.get(pt.id, [])
        w = withdrawals.get(pt.pseudonym)
        subject = Subject(
            usubjid=usubjid(study, pt.pseudonym),
            subjid=pt.pseudonym,
            siteid=site,
            patient=pt,
            arm=slot.arm if slot else "",
            randomized_at=slot.allocated_at if slot else None,
            consented_at=consents.get(pt.id),
            screened_at=screened.get(pt.id),
            first_dose_at=pt.first_dose_at,
            last_dose_at=None,
            death_day=o.death_day if o else None,
            last_alive_day=o.last_known_alive_day if o else None,
            withdrawn_at=w.withdrawn_at if w else None,
            country=country,
        )
        if doses:
            first_slot = schedule_hour(doses[0].study_day, doses[0].hour)
            last = doses[-1]
            subject = replace(subject, last_dose_at=dose_time(subject, last.study_day, last.hour, first_slot))
        subjects.append(subject)
    sites = {
        i: (code, country) for i, code, country in session.execute(select(Site.id, Site.code, Site.country))
    }
    slot_by_id = {s.id: s for s in session.execute(select(RandomizationSlot)).scalars()}
    for w in withdrawals.values():
        if not w.data_erased:
            continue
        slot = slot_by_id.get(w.slot_id) if w.slot_id is not None else None
        subjects.append(
            Subject(
                usubjid=usubjid(study, w.pseudonym),
                subjid=w.pseudonym,
                siteid=sites.get(w.site_id, ("", ""))[0],
                patient=None,
                arm=slot.arm if slot else "",
                randomized_at=slot.allocated_at if slot else None,
                consented_at=None,
                screened_at=None,
                first_dose_at=None,
                last_dose_at=None,
                death_day=None,
                last_alive_day=None,
                withdrawn_at=w.withdrawn_at,
                country=sites.get(w.site_id, ("", ""))[1],
            )
        )
    subjects.sort(key=lambda s: s.usubjid)
    return Context(p, study, tuple(subjects), blinded)
