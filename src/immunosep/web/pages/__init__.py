"""Server-rendered pages (Jinja2 + HTMX), one router per area of work."""

from fastapi import APIRouter

from immunosep.web.pages import auth, bedside

router = APIRouter(include_in_schema=False)
for _module in (auth, bedside):
    router.include_router(_module.router)
