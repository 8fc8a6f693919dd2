"""Server-rendered pages (Jinja2 + HTMX), one router per area of work."""

from immunosep.web.pages import (
    admin,
    auth,
    bedside,
    clinical_data,
    lab,
    oversight,
    patients,
    pharmacy,
    safety,
    screening,
)

#: The pages' routers, included by the application one by one (see ``web.api.ROUTERS``).
ROUTERS = tuple(
    m.router
    for m in (auth, bedside, patients, screening, clinical_data, safety, lab, pharmacy, oversight, admin)
)
