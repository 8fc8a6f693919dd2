"""Server-rendered pages (Jinja2 + HTMX), one router per area of work."""

from fastapi import APIRouter

from immunosep.web.pages import admin, auth, bedside, lab, oversight, patients, pharmacy

router = APIRouter(include_in_schema=False)
for _module in (auth, bedside, patients, lab, pharmacy, oversight, admin):
    router.include_router(_module.router)
