"""Server-rendered pages (Jinja2 + HTMX), one router per area of work."""

from fastapi import APIRouter

from immunosep.web.deps import TransactionRoute
from immunosep.web.pages import admin, auth, bedside, lab, oversight, patients, pharmacy

router = APIRouter(route_class=TransactionRoute, include_in_schema=False)
for _module in (auth, bedside, patients, lab, pharmacy, oversight, admin):
    router.include_router(_module.router)
