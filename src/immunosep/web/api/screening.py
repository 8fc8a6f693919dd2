"""Screening, consent, classification and randomization (investigators; the screening log for readers)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.classification import classify_patient
from immunosep.conduct.randomization import allocate
from immunosep.conduct.screening import ScreeningInput, record_consent, screen, screening_log
from immunosep.web.deps import TransactionRoute, current_actor, get_db

router = APIRouter(route_class=TransactionRoute, tags=["screening and randomization"])


class ConsentIn(BaseModel):
    given_by: Literal["patient", "relative"]


@router.post("/screening")
def post_screening(
    body: ScreeningInput, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Screen a patient at the investigator's site (``conduct.screening.ScreeningInput``: units in the
    names, exclusions as protocol codes, onset with a time zone); returns the pseudonym and every
    exclusion reason. The screening time is now."""
    return asdict(screen(db, actor, replace(body, screened_at=None)))


@router.get("/screening")
def get_screening_log(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """The screening log of the sites in scope."""
    return [asdict(r) for r in screening_log(db, actor)]


@router.post("/patients/{pseudonym}/consent", status_code=204)
def post_consent(
    pseudonym: str, body: ConsentIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> None:
    """Record written informed consent."""
    record_consent(db, actor, pseudonym, body.given_by)


@router.post("/patients/{pseudonym}/classify")
def post_classify(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Classify from the baseline draw: stratum and whether the patient is enrolled."""
    return asdict(classify_patient(db, actor, pseudonym))


@router.post("/patients/{pseudonym}/randomize")
def post_randomize(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Allocate the next sealed slot of the site's list: slot and kit number, never the arm."""
    return asdict(allocate(db, actor, pseudonym))
