"""Signing from the web: the login throttle counts wrong signature passwords, and a refusal is audited.

A refused signing (``conduct.signatures.SignatureRefused``) rolls back what it began, then records the
refusal in the request's session and commits it, before the error goes on to the client: the audit entry
survives the refusal. The throttle is the login's (``app.state.throttle``), under the signer's username,
so password guesses at the signature and at the login form share one budget; an address trusted for the
account (its owner logged in there) is not exempt here, since a signature is made in an open session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.signatures import SignatureRefused, record_refusal
from immunosep.web.auth import client_address, login_key
from immunosep.web.security import LoginThrottle

T = TypeVar("T")


def signing(request: Request, db: Session, actor: Actor, sign: Callable[[], T]) -> T:
    """Run ``sign()`` (a signing service) under the login throttle; audit and re-raise a refusal.

    Raises ``web.security.TooManyAttempts`` while the throttle delays this user or address.
    """
    throttle: LoginThrottle = request.app.state.throttle
    attempt = throttle.admit(login_key(actor.username), client_address(request), trust_address=False)
    try:
        result = sign()
    except SignatureRefused as exc:
        throttle.failed(attempt)
        db.rollback()
        record_refusal(db, actor, exc.refused)
        db.commit()
        raise
    except BaseException:
        throttle.abandoned(attempt)
        raise
    throttle.succeeded(attempt)
    return result
