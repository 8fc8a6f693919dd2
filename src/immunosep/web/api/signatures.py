"""Electronic signatures and the casebook they cover: ``/api/patients/{p}/signatures``, ``.../casebook``,
``/api/lock/signatures``. The trial lock itself (signed) is ``POST /api/lock`` (``web.api.oversight``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.signatures import (
    Credentials,
    casebook_signatures,
    lock_signatures,
    sign_casebook,
)
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.security import session_token
from immunosep.web.signing import signing

router = APIRouter(route_class=TransactionRoute, tags=["signatures"])


class SignIn(BaseModel):
    """The signature's components: the password, and the username at the first signing of the session."""

    password: str = Field(min_length=1, max_length=1000)
    username: str = Field(default="", max_length=100)


class CasebookSignIn(SignIn):
    meaning: str = Field(
        max_length=80, description="from the controlled list, e.g. 'approved as investigator'"
    )


@router.post("/patients/{pseudonym}/signatures", status_code=201, responses={422: {}, 429: {}, 409: {}})
def post_signature(
    pseudonym: str,
    body: CasebookSignIn,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """Sign the patient's casebook as it stands (re-entering the password; the first signing of a session
    also the username). A refusal is audited and counted like a failed login."""
    creds = Credentials(body.password, body.username)
    token = session_token(request.session)
    view = signing(
        request,
        db,
        actor,
        lambda: sign_casebook(db, actor, pseudonym, body.meaning, creds, session_token=token),
    )
    return asdict(view)


@router.get("/patients/{pseudonym}/signatures")
def get_signatures(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """The casebook's signatures, each checked against the records now (valid or invalidated, and what changed)."""
    _, views = casebook_signatures(db, actor, pseudonym)
    return [asdict(v) for v in views]


@router.get("/patients/{pseudonym}/casebook")
def get_casebook(
    pseudonym: str, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> dict[str, Any]:
    """The casebook as signed: its records (never an arm), its SHA-256 and its signatures."""
    book, views = casebook_signatures(db, actor, pseudonym)
    return {
        "pseudonym": book.pseudonym,
        "digest": book.digest,
        "records": [
            {"key": r.key, "section": r.section, "label": r.label, "values": dict(r.values)}
            for r in book.records
        ],
        "signatures": [asdict(v) for v in views],
    }


@router.get("/lock/signatures")
def get_lock_signatures(
    actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> list[dict[str, Any]]:
    """The signatures of the trial lock, each checked against every casebook now."""
    return [asdict(v) for v in lock_signatures(db, actor)]
