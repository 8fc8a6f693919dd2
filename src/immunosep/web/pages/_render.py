"""Rendering helpers for the pages: the layout context (user, role navigation, CSRF token, flashes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.web.auth import describe
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

#: The pages each role works in, in menu order (href, label). The bedside tools are open to everyone.
NAVIGATION: dict[str, list[tuple[str, str]]] = {
    "investigator": [
        ("/dashboard", "Dashboard"),
        ("/screening", "Screening"),
        ("/ae", "Adverse events"),
        ("/queries", "Queries"),
    ],
    "pharmacist": [("/pharmacy", "Preparations"), ("/pharmacy/log", "Dosing log")],
    "lab": [("/lab", "Biomarkers")],
    "monitor": [
        ("/dashboard", "Patients"),
        ("/queries", "Queries"),
        ("/missing", "Missing data"),
        ("/unblindings", "Unblindings"),
    ],
    "data_manager": [
        ("/dashboard", "Patients"),
        ("/queries", "Queries"),
        ("/missing", "Missing data"),
        ("/unblindings", "Unblindings"),
        ("/lock", "Lock"),
    ],
    "dsmb": [("/dsmb", "Safety report")],
    "admin": [("/admin/users", "Users"), ("/admin/sites", "Sites")],
}
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


def home_of(role: str) -> str:
    """The first page of a role's menu (where it lands after login)."""
    return NAVIGATION.get(role, [BEDSIDE])[0][0]


def base_context(request: Request, actor: Actor | None, db: Session | None = None) -> dict[str, Any]:
    """What the layout needs: the user badge, the role's menu, the CSRF token and pending flashes."""
    user = None
    nav: list[NavItem] = []
    if actor is not None:
        site = describe(db, actor).site if db is not None else None
        user = PageUser(actor.username, actor.role, ROLE_LABELS.get(actor.role, actor.role), site)
        path = request.url.path
        nav = [
            NavItem(href, label, path == href or (href != "/" and path.startswith(href + "/")))
            for href, label in [*NAVIGATION.get(actor.role, []), BEDSIDE]
        ]
    flashes = request.session.pop("flash", []) if "flash" in request.session else []
    return {
        "user": user,
        "nav": nav,
        "csrf_token": ensure_csrf_token(request.session),
        "flashes": flashes,
        "trial_label": "research platform; bedside tools are for research use only",
    }


def flash(request: Request, kind: str, text: str) -> None:
    """Queue a message ("ok", "bad" or "warn") for the next page rendered in this session."""
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


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
