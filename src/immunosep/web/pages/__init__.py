"""Server-rendered pages (Jinja2 + HTMX), one router per area of work."""

from fastapi import APIRouter

from immunosep.web.deps import TransactionRoute
from immunosep.web.pages import admin, auth, bedside, lab, oversight, patients, pharmacy

#: The pages' routers, included by the application one by one (see ``web.api.ROUTERS``).
ROUTERS = tuple(m.router for m in (auth, bedside, patients, lab, pharmacy, oversight, admin))
router = APIRouter(route_class=TransactionRoute, include_in_schema=False)
for _router in ROUTERS:
    router.include_router(_router)
