"""Investigator pages: the dashboard and the patient page (the record every other page links back to).

The forms about a patient mirror ``web.api``: screening, consent, classification and randomization in
:mod:`.screening`, the daily CRF and outcomes in :mod:`.clinical_data`, adverse events, emergency
unblinding and withdrawal in :mod:`.safety`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from immunosep.conduct import sdv
from immunosep.conduct.access import Actor, get_patient, scope_site_ids
from immunosep.conduct.adverse_events import adverse_events
from immunosep.conduct.crf import daily_records
from immunosep.conduct.dosing import administrations
from immunosep.conduct.outcomes import get_outcome
from immunosep.conduct.permissions import can, require
from immunosep.conduct.queries import aging
from immunosep.conduct.screening import CONSENT_GIVERS
from immunosep.conduct.sites import list_sites
from immunosep.conduct.trial import protocol_of
from immunosep.conduct.worklist import worklist
from immunosep.web.deps import TransactionRoute, current_actor, get_db, inline
from immunosep.web.pages._render import render

router = APIRouter(route_class=TransactionRoute)


# -- dashboard ------------------------------------------------------------------------------------------
@router.get("/dashboard")
@inline
def dashboard(
    request: Request,
    site: str | None = None,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
) -> Response:
    """Patients in scope, today's tasks, overdue CRFs and draws (investigators, monitors, data managers);
    ``?site=S03`` narrows the list to one site for those who see several."""
    if scope_site_ids(actor) is None:
        sites = [info.code for info in list_sites(db, actor)]
    else:
        sites = list(actor.site_codes) if len(actor.site_codes) > 1 else []
    work = worklist(db, actor, site=site or None)
    oversight: dict[str, Any] = {}
    if can(actor, "read_sdv"):  # the monitor's and data manager's view: SDV progress and query aging
        sdv_sites, sdv_patients = sdv.progress(db, actor)
        oversight = {
            "sdv_sites": sdv_sites,
            "sdv_patients": {x.name: x for x in sdv_patients},
            "aging": {a.site: a for a in aging(db, actor)},
        }
    return render(
        request,
        "dashboard.html",
        actor,
        db,
        title="Dashboard",
        work=work,
        sites=sites,
        site=site or "",
        **oversight,
    )


# -- patient page ---------------------------------------------------------------------------------------
@router.get("/patients/{pseudonym}")
def patient_page(
    pseudonym: str, request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "open_patient_record")
    patient = get_patient(db, actor, pseudonym)
    randomized = patient.status == "randomized"
    p = protocol_of(db)
    return render(
        request,
        "patient.html",
        actor,
        db,
        title=pseudonym,
        patient=patient,
        stratum_label={s.code: s.label for s in p.strata}.get(patient.stratum or "", ""),
        days=daily_records(db, actor, pseudonym) if randomized else [],
        doses=administrations(db, actor, pseudonym) if randomized else [],
        aes=adverse_events(db, actor, pseudonym) if randomized else [],
        outcome=get_outcome(db, actor, pseudonym) if randomized else None,
        givers=CONSENT_GIVERS,
        treatment_days=p.treatment.days,
    )
