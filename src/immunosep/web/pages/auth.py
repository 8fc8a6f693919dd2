"""The login form, logout, the password change and the start page (which sends each role to its own first page)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.users import change_password
from immunosep.errors import ImmunoSepError
from immunosep.web.auth import LoginFailed, TooManyAttempts, log_in, log_out
from immunosep.web.deps import TransactionRoute, current_actor, get_db, optional_actor, read_only_db
from immunosep.web.forms import FormErrors, form_data, text
from immunosep.web.pages._render import flash, home_of, render
from immunosep.web.security import session_token

router = APIRouter(route_class=TransactionRoute)


def _safe_next(url: str) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else ""


@router.get("/")
def start(actor: Actor = Depends(current_actor)) -> Response:
    return RedirectResponse(home_of(actor), status_code=303)


@router.get("/login")
def login_form(request: Request, actor: Actor | None = Depends(optional_actor)) -> Response:
    if actor is not None:
        return RedirectResponse(home_of(actor), status_code=303)
    next_url = _safe_next(request.query_params.get("next", ""))
    return render(request, "login.html", None, title="Sign in", username="", next_url=next_url, error="")


@router.post("/login", dependencies=[Depends(read_only_db)])
async def login_submit(request: Request, db: Session = Depends(get_db)) -> Response:
    form = await request.form()
    username, password = text(form, "username"), str(form.get("password") or "")
    next_url = _safe_next(text(form, "next"))
    try:  # argon2 and the database in a worker thread, never on the event loop
        actor, _ = await run_in_threadpool(log_in, request, db, username, password)
    except (LoginFailed, TooManyAttempts) as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401
        return render(
            request,
            "login.html",
            None,
            status_code=status,
            title="Sign in",
            username=username,
            next_url=next_url,
            error=str(exc),
        )
    return RedirectResponse(next_url or home_of(actor), status_code=303)


@router.post("/logout")
def logout(request: Request) -> Response:
    log_out(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/account/password")
def password_form(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    return render(request, "account_password.html", actor, db, title="Change password", errors=FormErrors())


@router.post("/account/password")
def password_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    """Change your own password; your other sessions end, this one stays."""
    errors = FormErrors()
    old, new = str(form.get("old_password") or ""), str(form.get("password") or "")
    if new != str(form.get("password_again") or ""):
        errors.add("password_again", "the two new passwords differ")
    else:
        try:
            change_password(db, actor, old, new, keep_session=session_token(request.session))
            flash(request, "ok", "Password changed; your other sessions have ended.")
            return RedirectResponse(home_of(actor), status_code=303)
        except ImmunoSepError as exc:
            db.rollback()
            errors.add(exc.field or "password", exc.message)
    return render(
        request, "account_password.html", actor, db, status_code=422, title="Change password", errors=errors
    )
