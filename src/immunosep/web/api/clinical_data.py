"""Biomarker draws (central lab), the daily CRF and outcomes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from pydantic.dataclasses import dataclass
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.biospecimens import record_draw
from immunosep.conduct.crf import INPUT_FIELDS, DailyInputs, DailyRecord, daily_records, record_day
from immunosep.conduct.outcomes import get_outcome, record_outcome
from immunosep.web.bounds import Day, PathDay
from immunosep.web.deps import TransactionRoute, current_actor, get_db, grouped, inline

router = APIRouter(route_class=TransactionRoute, tags=["clinical data"])


class DrawIn(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    study_day: Day
    ferritin_ng_ml: float | None = None
    hla_dr_per_monocyte: float | None = None
    reason: str = ""


@dataclass(frozen=True, config=ConfigDict(extra="ignore", allow_inf_nan=False))
class DailyIn(DailyInputs):
    """The daily CRF (``conduct.crf.DailyInputs``: null = not measured, units in the names, bilirubin and
    creatinine with their unit) and, for a day already entered, the reason for the correction."""

    reason: str = Field(default="", description="required when correcting a day already entered")


class OutcomeIn(BaseModel):
    """Only the fields given are changed; changing a stored value needs a reason."""

    death_day: Day | None = None
    last_known_alive_day: Day | None = None
    icu_discharge_day: Day | None = None
    infection_day15: str | None = Field(default=None, max_length=20)
    reason: str = ""


@router.post("/patients/{pseudonym}/draws")
def post_draw(
    pseudonym: str, body: DrawIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """The central lab's ferritin (ng/mL) and mHLA-DR (receptors per monocyte) for one protocol day."""
    return asdict(
        record_draw(
            db,
            actor,
            pseudonym,
            body.study_day,
            ferritin_ng_ml=body.ferritin_ng_ml,
            hla_dr_per_monocyte=body.hla_dr_per_monocyte,
            reason=body.reason,
        )
    )


@router.post("/patients/{pseudonym}/crf/{study_day}")
@grouped
def post_daily_crf(
    pseudonym: str,
    study_day: PathDay,
    body: DailyIn,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Enter (or correct, with a reason) one patient-day; SOFA is computed from the inputs."""
    inputs = DailyInputs(**{name: getattr(body, name) for name in INPUT_FIELDS})
    return _day_json(record_day(db, actor, pseudonym, study_day, inputs, reason=body.reason))


@router.get("/patients/{pseudonym}/crf")
@inline
def get_daily_crf(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """Every recorded patient-day with its SOFA."""
    return [_day_json(r) for r in daily_records(db, actor, pseudonym)]


def _day_json(record: DailyRecord) -> dict[str, Any]:
    """A patient-day as JSON: what ``dataclasses.asdict`` gives, without its deep copies (a hot path)."""
    return {
        "pseudonym": record.pseudonym,
        "study_day": record.study_day,
        "inputs": {name: getattr(record.inputs, name) for name in INPUT_FIELDS},
        "sofa_total": record.sofa_total,
        "sofa_components": dict(record.sofa_components),
        "sofa_missing": record.sofa_missing,
    }


@router.post("/patients/{pseudonym}/outcome")
def post_outcome(
    pseudonym: str, body: OutcomeIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Vital status, ICU discharge day and infection state on day 15."""
    changes = body.model_dump(exclude_unset=True)
    reason = changes.pop("reason", "")
    return asdict(record_outcome(db, actor, pseudonym, reason=reason, **changes))


@router.get("/patients/{pseudonym}/outcome")
def get_patient_outcome(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    return asdict(get_outcome(db, actor, pseudonym))
