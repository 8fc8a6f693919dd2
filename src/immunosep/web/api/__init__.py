"""The JSON API under ``/api`` (schema at ``/openapi.json``)."""

from fastapi import APIRouter

from immunosep.web.api import admin, auth, bedside, clinical_data, oversight, safety, screening, treatment
from immunosep.web.deps import TransactionRoute

router = APIRouter(route_class=TransactionRoute, prefix="/api")
for _module in (auth, bedside, screening, clinical_data, treatment, safety, oversight, admin):
    router.include_router(_module.router)
