"""``POST /api/login``, ``POST /api/logout``, ``GET /api/me``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.users import change_password
from immunosep.web.auth import LoginFailed, TooManyAttempts, describe, log_in, log_out
from immunosep.web.deps import TransactionRoute, current_actor, get_db, read_only_db
from immunosep.web.security import session_token

router = APIRouter(route_class=TransactionRoute, tags=["session"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class PasswordChangeIn(BaseModel):
    old_password: str = Field(max_length=1000)
    new_password: str = Field(max_length=1000)


class MeOut(BaseModel):
    username: str
    role: str
    site: str | None
    sites: list[str]
    blinded: bool


class LoginOut(MeOut):
    csrf_token: str = Field(description="send it as X-CSRF-Token with every state-changing request")


@router.post(
    "/login", response_model=LoginOut, responses={401: {}, 429: {}}, dependencies=[Depends(read_only_db)]
)
def login(body: LoginRequest, request: Request, db: Session = Depends(get_db)) -> object:
    """Log in with username and password; sets the session cookie and returns the CSRF token."""
    try:
        actor, token = log_in(request, db, body.username, body.password)
    except TooManyAttempts as exc:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(int(exc.retry_after_s) + 1)}
        )
    except LoginFailed as exc:
        return JSONResponse({"detail": str(exc)}, status_code=401)
    return LoginOut(**describe(db, actor).__dict__, csrf_token=token)


@router.post("/logout", status_code=204)
def logout(request: Request) -> None:
    """End the session on the server (a replayed cookie then gets 401) and clear the cookie."""
    log_out(request)


@router.get("/me", response_model=LoginOut)
def me(request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)) -> LoginOut:
    """The logged-in user, role and site(s), and the session's CSRF token."""
    return LoginOut(**describe(db, actor).__dict__, csrf_token=request.session["csrf"])


@router.post("/me/password", status_code=204)
def post_password(
    body: PasswordChangeIn,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> None:
    """Change your own password (the current one proves it); your other sessions end, this one stays."""
    change_password(
        db, actor, body.old_password, body.new_password, keep_session=session_token(request.session)
    )
