"""The JSON API under ``/api`` (schema at ``/openapi.json``)."""

from fastapi import APIRouter

from immunosep.web.api import admin, auth, bedside, clinical_data, oversight, safety, screening, treatment
from immunosep.web.deps import TransactionRoute

PREFIX = "/api"
#: The API's routers, included by the application one by one (a router of routers costs every request a
#: second level of route matching).
ROUTERS = tuple(
    m.router for m in (auth, bedside, screening, clinical_data, treatment, safety, oversight, admin)
)
router = APIRouter(route_class=TransactionRoute, prefix=PREFIX)
for _router in ROUTERS:
    router.include_router(_router)
