"""The JSON API under ``/api`` (schema at ``/openapi.json``)."""

from immunosep.web.api import (
    admin,
    auth,
    bedside,
    clinical_data,
    oversight,
    safety,
    screening,
    signatures,
    treatment,
)

PREFIX = "/api"
#: The API's routers, included by the application one by one under :data:`PREFIX` (a router of routers
#: costs every request a second level of route matching).
ROUTERS = tuple(
    m.router
    for m in (auth, bedside, screening, clinical_data, treatment, safety, oversight, signatures, admin)
)
