"""The pharmacist's day regimen and the dosing log; the blinded view of administrations."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.dosing import administrations, day_regimen, patients_on_treatment, record_dose
from immunosep.web.bounds import Day, Hour, PathDay
from immunosep.web.deps import TransactionRoute, current_actor, get_db, logs_access

router = APIRouter(route_class=TransactionRoute, tags=["treatment"])


class DoseIn(BaseModel):
    study_day: Day
    route: Literal["iv", "sc"]
    hour: Hour
    given: bool
    missed_reason: str = Field(default="", max_length=200)


@router.get("/patients/{pseudonym}/regimen/{study_day}", dependencies=[Depends(logs_access)])
def get_regimen(
    pseudonym: str, study_day: PathDay, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """The day's injections, active or dummy, after renal adjustment, with the creatinine clearance used
    (``crcl_ml_min``, the CRF day it came from ``crcl_study_day``, ``clearance`` in words) and the routes
    held while none is known (``held_routes``); pharmacist of the site only."""
    return asdict(day_regimen(db, actor, pseudonym, study_day))


@router.post("/patients/{pseudonym}/doses")
def post_dose(
    pseudonym: str, body: DoseIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Log one scheduled injection as given or missed (pharmacist), with the clearance it used and its
    CRF day; an IV injection is refused as given while no clearance is known (422, field ``route``)."""
    r = record_dose(
        db,
        actor,
        pseudonym,
        body.study_day,
        body.route,
        body.hour,
        given=body.given,
        missed_reason=body.missed_reason,
    )
    fields = ("study_day", "hour", "route", "drug", "dose", "unit", "volume_ml", "dummy", "renal_adjusted")
    return {f: getattr(r, f) for f in (*fields, "crcl_ml_min", "crcl_study_day", "given", "missed_reason")}


@router.get("/patients/{pseudonym}/doses")
def get_doses(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """Which scheduled injections were given or missed (no drug, dose or volume)."""
    return [asdict(a) for a in administrations(db, actor, pseudonym)]


@router.get("/pharmacy/on-treatment", dependencies=[Depends(logs_access)])
def get_on_treatment(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """The site's patients on study treatment today, with the day's injections logged of those due
    (pharmacist)."""
    return [asdict(t) for t in patients_on_treatment(db, actor)]
