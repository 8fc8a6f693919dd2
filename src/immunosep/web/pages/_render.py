"""Rendering helpers for the pages: the layout context (user, menu, ``can``, CSRF token, flashes).

The menu and every role-dependent part of a template ask ``conduct.permissions`` (``can("action")``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.permissions import can, role_can
from immunosep.errors import ImmunoSepError
from immunosep.web.auth import describe
from immunosep.web.forms import FormErrors
from immunosep.web.security import ensure_csrf_token

ROLE_LABELS = {
    "investigator": "Investigator",
    "pharmacist": "Pharmacist",
    "lab": "Central lab",
    "monitor": "Monitor",
    "data_manager": "Data manager",
    "dsmb": "DSMB",
    "admin": "Administrator",
}

#: The menu, in order: (href, label, the action of ``conduct.permissions`` the page is for). A role sees
#: the entries whose action it may do, then the bedside tools, which are open to everyone.
MENU: tuple[tuple[str, str, str], ...] = (
    ("/dashboard", "Patients", "read_worklist"),
    ("/screening", "Screening", "screen"),
    ("/ae", "Adverse events", "record_ae"),
    ("/queries", "Queries", "read_queries"),
    ("/missing", "Missing data", "review_missing_data"),
    ("/sdv", "Source verification", "read_sdv"),
    ("/unblindings", "Unblindings", "review_unblindings"),
    ("/audit", "Audit trail", "read_audit_trail"),
    ("/lock", "Lock", "lock"),
    ("/pharmacy", "Preparations", "see_regimen"),
    ("/pharmacy/log", "Dosing log", "open_pharmacy_log"),
    ("/lab", "Biomarkers", "enter_biomarkers"),
    ("/dsmb", "Safety report", "read_dsmb_report"),
    ("/admin/users", "Users", "manage_users"),
    ("/admin/sites", "Sites", "manage_sites"),
)
#: The worklist is the dashboard of whoever screens (the site investigator), a patient list for the others.
DASHBOARD = ("/dashboard", "Dashboard")
BEDSIDE = ("/bedside", "Bedside calculators")


@dataclass(frozen=True)
class PageUser:
    username: str
    role: str
    role_label: str
    site: str | None


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    current: bool


def menu_of(actor: Actor) -> list[tuple[str, str]]:
    """The actor's menu (href, label): the :data:`MENU` entries it may use, then the bedside tools."""
    return list(_menu(actor.role))


@lru_cache(maxsize=32)
def _menu(role: str) -> tuple[tuple[str, str], ...]:
    """The menu of ``role`` (a function of the role alone: made once per role and process)."""
    items = [(href, label) for href, label, action in MENU if role_can(role, action)]
    if role_can(role, "screen"):
        items = [DASHBOARD if href == DASHBOARD[0] else (href, label) for href, label in items]
    return (*items, BEDSIDE)


def home_of(actor: Actor) -> str:
    """The first page of the actor's menu (where it lands after login)."""
    return menu_of(actor)[0][0]


@lru_cache(maxsize=256)
def _nav(role: str, path: str) -> tuple[NavItem, ...]:
    """The menu of ``role`` on the page at ``path``, its entry for the page marked (made once per pair)."""
    return tuple(
        NavItem(href, label, path == href or (href != "/" and path.startswith(href + "/")))
        for href, label in _menu(role)
    )


def base_context(request: Request, actor: Actor | None, db: Session | None = None) -> dict[str, Any]:
    """What the layout needs: the user badge, the actor's menu, ``can``, the CSRF token and pending flashes."""
    user = None
    nav: list[NavItem] = []
    if actor is not None:
        site = describe(db, actor).site if db is not None else None
        user = PageUser(actor.username, actor.role, ROLE_LABELS.get(actor.role, actor.role), site)
        nav = list(_nav(actor.role, request.url.path))
    flashes = request.session.pop("flash", []) if "flash" in request.session else []
    return {
        "user": user,
        "can": partial(_can, actor),
        "nav": nav,
        "csrf_token": ensure_csrf_token(request.session),
        "flashes": flashes,
        "trial_label": "research platform; bedside tools are for research use only",
    }


def _can(actor: Actor | None, action: str) -> bool:
    """``can("action")`` in a template: what the logged-in actor may do (nothing when logged out)."""
    return actor is not None and can(actor, action)


def flash(request: Request, kind: str, text: str) -> None:
    """Queue a message ("ok", "bad" or "warn") for the next page rendered in this session."""
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


def act_and_redirect(
    request: Request,
    db: Session,
    action: Callable[[], str | tuple[str, str]],
    to: str,
    *,
    failed: str = "",
) -> Response:
    """The form handler that acts and goes back: run ``action``, flash the message it returns (``"ok"``, or
    the kind it returns with it: ``("warn", text)``) or, on a service error, roll the transaction back and
    flash the error (after ``failed``) as ``"bad"``; either way redirect (303) to ``to``."""
    try:
        outcome = action()
    except ImmunoSepError as exc:
        db.rollback()
        flash(request, "bad", failed + exc.message)
    else:
        kind, message = ("ok", outcome) if isinstance(outcome, str) else outcome
        flash(request, kind, message)
    return RedirectResponse(to, status_code=303)


T = TypeVar("T")


def attempt(db: Session, errors: FormErrors, action: Callable[[], T]) -> T | None:
    """The form handler that shows its errors on the form: ``action``'s result, or None after a service error
    (the transaction rolled back, the error filed in ``errors`` under its field). ``action`` returns a value."""
    try:
        return action()
    except ImmunoSepError as exc:
        db.rollback()
        errors.add_error(exc)
        return None


def render(
    request: Request,
    template: str,
    actor: Actor | None,
    db: Session | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a full page (or an HTMX fragment: templates starting with an underscore skip the layout)."""
    templates: Jinja2Templates = request.app.state.templates
    ctx = base_context(request, actor, db) if not template.startswith("_") else {}
    if template.startswith("_"):
        ctx["csrf_token"] = ensure_csrf_token(request.session)
    response: HTMLResponse = templates.TemplateResponse(
        request, template, {**ctx, **context}, status_code=status_code
    )
    return response
