"""Administrator pages: user accounts and sites."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.permissions import can, require
from immunosep.conduct.sites import list_sites, rename_site, set_site_country
from immunosep.conduct.users import create_user, deactivate_user, decide, pending_approvals, reset_password
from immunosep.errors import ImmunoSepError
from immunosep.store.models import ROLES
from immunosep.web.deps import TransactionRoute, current_actor, get_db
from immunosep.web.forms import FormErrors, form_data, text
from immunosep.web.pages._render import ROLE_LABELS, flash, render

router = APIRouter(route_class=TransactionRoute)


def _users_page(
    request: Request,
    actor: Actor,
    db: Session,
    values: dict[str, Any],
    errors: FormErrors,
    status_code: int = 200,
) -> Response:
    require(actor, "manage_users")
    return render(
        request,
        "admin_users.html",
        actor,
        db,
        status_code=status_code,
        title="Users",
        v=values,
        errors=errors,
        roles=[("", "—"), *((r, ROLE_LABELS[r]) for r in ROLES)],
        sites=list_sites(db, actor),
        pending=pending_approvals(db, actor) if can(actor, "approve_account") else [],
    )


@router.get("/admin/users")
def users_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    return _users_page(request, actor, db, {}, FormErrors())


@router.post("/admin/users")
def users_submit(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    values: dict[str, Any] = {k: form.get(k) for k in ("username", "role")}
    values["sites"] = [str(s) for s in form.getlist("sites")]
    errors = FormErrors()
    action = form.get("action")
    if action in ("approve", "refuse"):
        try:
            approval = decide(db, actor, _approval_id(form.get("approval_id")), approve=action == "approve")
            flash(request, "ok", f"Account change {approval.id} {approval.status}.")
        except ImmunoSepError as exc:
            db.rollback()
            flash(request, "bad", exc.message)
        return RedirectResponse("/admin/users", status_code=303)
    if action == "reset":
        try:
            result = reset_password(
                db, actor, text(values, "username"), str(form.get("password") or ""), text(form, "reason")
            )
        except ImmunoSepError as exc:
            db.rollback()
            errors.add(exc.field if exc.field in ("password", "reason") else "reset_username", exc.message)
            return _users_page(request, actor, db, values, errors, status_code=422)
        done = "waits for a second administrator" if result.pending_approval else "was reset"
        flash(request, "ok", f"The password of {result.username} {done}.")
        return RedirectResponse("/admin/users", status_code=303)
    if action == "deactivate":
        try:
            deactivate_user(db, actor, text(values, "username"))
            flash(request, "ok", f"User {text(values, 'username')} deactivated.")
            return RedirectResponse("/admin/users", status_code=303)
        except ImmunoSepError as exc:
            db.rollback()
            errors.add("username", exc.message)
            return _users_page(request, actor, db, values, errors, status_code=422)
    try:
        user = create_user(
            db,
            actor,
            text(values, "username"),
            str(form.get("password") or ""),
            text(values, "role"),
            values["sites"] or None,
        )
    except ImmunoSepError as exc:
        db.rollback()
        errors.add_error(exc, {"site": "sites"})
        return _users_page(request, actor, db, values, errors, status_code=422)
    waits = "" if user.active else "; it waits for a second administrator's approval (four eyes)"
    flash(request, "ok", f"User {user.username} ({ROLE_LABELS.get(user.role, user.role)}) created{waits}.")
    return RedirectResponse("/admin/users", status_code=303)


def _approval_id(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise ImmunoSepError("choose a pending account change", field="approval") from None


@router.get("/admin/sites")
def sites_page(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "manage_sites")
    return render(request, "admin_sites.html", actor, db, title="Sites", sites=list_sites(db, actor))


@router.post("/admin/sites/{code}")
def site_rename(
    code: str,
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    require(actor, "edit_sites")  # another role is refused (403), not sent back with a message
    try:
        if "country" in form:  # the country form of the row; the name form sends no country
            info = set_site_country(db, actor, code, text(form, "country"))
            flash(request, "ok", f"Site {code} is in {info.country}.")
        else:
            rename_site(db, actor, code, text(form, "name"))
            flash(request, "ok", f"Site {code} renamed.")
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", exc.message)
    return RedirectResponse("/admin/sites", status_code=303)
