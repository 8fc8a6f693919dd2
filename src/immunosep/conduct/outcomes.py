"""Outcomes: vital status to the last follow-up day, ICU discharge day, infection state on day 15."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunosep.clinical.adverse_events import FATAL
from immunosep.conduct import sdv
from immunosep.conduct.access import (
    Actor,
    begin,
    ensure_writable,
    get_patient,
)
from immunosep.conduct.edit_checks import on_outcome_saved
from immunosep.conduct.permissions import require
from immunosep.conduct.trial import protocol_of
from immunosep.errors import ImmunoSepError
from immunosep.store.models import AdverseEvent, Outcome, Patient

_UNSET = object()
#: The outcome fields that are study days (1 to the last mortality day).
OUTCOME_DAYS = ("death_day", "last_known_alive_day", "icu_discharge_day")
#: How messages name each field.
_LABELS = {
    "death_day": "the day of death",
    "last_known_alive_day": "the last day known alive",
    "icu_discharge_day": "the day of ICU discharge",
    "infection_day15": "the infection state on day 15",
}


@dataclass(frozen=True)
class OutcomeRecord:
    pseudonym: str
    death_day: int | None
    last_known_alive_day: int | None
    icu_discharge_day: int | None
    infection_day15: str | None


def _outcome(session: Session, patient: Patient) -> Outcome | None:
    return session.execute(select(Outcome).where(Outcome.patient_id == patient.id)).scalar_one_or_none()


def record_outcome(
    session: Session,
    actor: Actor,
    pseudonym: str,
    *,
    death_day: int | object | None = _UNSET,
    last_known_alive_day: int | object | None = _UNSET,
    icu_discharge_day: int | object | None = _UNSET,
    infection_day15: str | object | None = _UNSET,
    reason: str = "",
) -> OutcomeRecord:
    """Set any of the outcome fields; changing a value already set needs a reason."""
    require(actor, "record_outcome")
    begin(session, actor, reason or "outcome")
    patient = get_patient(session, actor, pseudonym)
    ensure_writable(session, patient)
    if patient.status != "randomized":
        raise ImmunoSepError(f"patient {pseudonym} is not randomized")
    p = protocol_of(session)
    last_day = max(p.endpoints.mortality.days)
    changes = {
        k: v
        for k, v in {
            "death_day": death_day,
            "last_known_alive_day": last_known_alive_day,
            "icu_discharge_day": icu_discharge_day,
            "infection_day15": infection_day15,
        }.items()
        if v is not _UNSET
    }
    for k in OUTCOME_DAYS:
        v = changes.get(k)
        if v is not None and not (isinstance(v, int) and 1 <= v <= last_day):
            raise ImmunoSepError(f"{_LABELS[k]} must be a study day 1-{last_day} (got {v!r})", field=k)
    levels = p.endpoints.infection_day15.levels
    if changes.get("infection_day15") is not None and changes["infection_day15"] not in levels:
        raise ImmunoSepError(
            f"the infection state on day 15 is one of: {', '.join(levels)}", field="infection_day15"
        )
    row = _outcome(session, patient)
    if row is None:
        row = Outcome(patient_id=patient.id)
        session.add(row)
    else:
        for k, v in changes.items():
            if getattr(row, k) is not None and getattr(row, k) != v and not reason.strip():
                stored = getattr(row, k)
                raise ImmunoSepError(
                    f"{_LABELS[k]} of {pseudonym} is already set ({stored}); a correction needs a reason",
                    field=k,
                )
    new_death = changes.get("death_day", row.death_day)
    fatal_ends = session.execute(
        select(AdverseEvent.end_day).where(
            AdverseEvent.patient_id == patient.id, AdverseEvent.outcome == FATAL
        )
    ).scalars()
    for end in fatal_ends:
        if new_death != end:
            raise ImmunoSepError(
                f"an adverse event of {pseudonym} is fatal on day {end}: the day of death must be that day "
                "(correct the adverse event first if it was not fatal)",
                field="death_day",
            )
    for k, v in changes.items():
        setattr(row, k, v)
    death, alive = row.death_day, row.last_known_alive_day
    if death is not None and alive is not None and alive >= death:
        raise ImmunoSepError(
            "last day known alive must be before the day of death", field="last_known_alive_day"
        )
    session.flush()
    sdv.reset_changed(session, "outcomes", row)  # a verified value that changed returns to unverified
    if "death_day" in changes:
        on_outcome_saved(session, actor, patient, row)
    return OutcomeRecord(
        pseudonym, row.death_day, row.last_known_alive_day, row.icu_discharge_day, row.infection_day15
    )


def get_outcome(session: Session, actor: Actor, pseudonym: str) -> OutcomeRecord:
    require(actor, "read_outcomes")
    patient = get_patient(session, actor, pseudonym)
    row = _outcome(session, patient)
    if row is None:
        return OutcomeRecord(pseudonym, None, None, None, None)
    return OutcomeRecord(
        pseudonym, row.death_day, row.last_known_alive_day, row.icu_discharge_day, row.infection_day15
    )
