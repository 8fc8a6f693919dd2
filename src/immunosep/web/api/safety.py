"""Adverse events with MedDRA coding, the SUSAR list, emergency unblinding and withdrawal."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.clinical.adverse_events import ACTIONS, OUTCOMES, SERIOUSNESS_CRITERIA
from immunosep.conduct.access import Actor
from immunosep.conduct.adverse_events import adverse_events, record_adverse_event, susar_report
from immunosep.conduct.unblinding import emergency_unblind, unblinding_report
from immunosep.conduct.withdrawal import compact, withdraw
from immunosep.web.bounds import Day
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.meddra_search import search_terms

router = APIRouter(route_class=TransactionRoute, tags=["safety"])


class AdverseEventIn(BaseModel):
    onset_day: Day
    term: str = Field(max_length=200, description="MedDRA preferred or lowest level term (name or code)")
    serious: bool
    criteria: list[str] = Field(
        default_factory=list,
        max_length=len(SERIOUSNESS_CRITERIA),
        description=f"seriousness criteria ticked, required exactly when serious: {', '.join(SERIOUSNESS_CRITERIA)}",
    )
    relatedness: str = Field(max_length=30)
    expected: bool
    action: str = Field(max_length=40, description=f"action taken (CDISC ACN): {', '.join(ACTIONS)}")
    outcome: str = Field(max_length=40, description=f"outcome (CDISC OUT): {', '.join(OUTCOMES)}")
    end_day: Day | None = Field(default=None, description="study day the event ended; empty while it goes on")
    verbatim: str = Field(default="", max_length=200)


class UnblindIn(BaseModel):
    reason: str


class WithdrawIn(BaseModel):
    erase_data: bool


@router.get("/meddra")
def get_meddra_terms(
    request: Request, q: str = Query(min_length=2, max_length=100), actor: Actor = Depends(current_actor)
) -> list[dict[str, str]]:
    """MedDRA terms whose name contains ``q`` (preferred term and its primary SOC)."""
    return [asdict(t) for t in search_terms(request.app.state.meddra, q)]


@router.post("/patients/{pseudonym}/adverse-events")
def post_adverse_event(
    pseudonym: str,
    body: AdverseEventIn,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Record a treatment-emergent adverse event; a SUSAR is flagged at once."""
    return asdict(
        record_adverse_event(db, actor, pseudonym, **body.model_dump(), meddra=request.app.state.meddra)
    )


@router.get("/patients/{pseudonym}/adverse-events")
def get_adverse_events(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    return [asdict(r) for r in adverse_events(db, actor, pseudonym)]


@router.get("/susars")
def get_susars(actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Every SUSAR in scope."""
    return [asdict(r) for r in susar_report(db, actor)]


@router.post("/patients/{pseudonym}/unblind")
def post_unblind(
    pseudonym: str, body: UnblindIn, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """Emergency unblinding by the site investigator, with a recorded reason."""
    return asdict(emergency_unblind(db, actor, pseudonym, body.reason))


@router.get("/unblindings")
def get_unblindings(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """Every emergency unblinding in scope, without the arm."""
    return [asdict(e) for e in unblinding_report(db, actor)]


@router.post("/patients/{pseudonym}/withdraw")
def post_withdraw(
    pseudonym: str,
    body: WithdrawIn,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Withdrawal of consent, optionally with removal of all the patient's data.

    With removal, the erasure is committed and the database then compacted (:func:`compact`), so the
    values leave the database files too, as :func:`withdraw_and_erase` does from the command line.
    """
    result = withdraw(db, actor, pseudonym, erase_data=body.erase_data)
    if body.erase_data:
        db.commit()
        compact(request.app.state.engine)
    return asdict(result)
