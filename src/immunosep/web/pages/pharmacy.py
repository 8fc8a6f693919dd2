"""The unblinded pharmacist's pages: the day's preparations (active or dummy, renal-adjusted dose) and
the dosing log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.datastructures import FormData
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from immunosep.conduct.access import Actor
from immunosep.conduct.dosing import (
    administrations,
    day_regimen,
    due_hours,
    patients_on_treatment,
    record_dose,
)
from immunosep.conduct.permissions import require
from immunosep.errors import ImmunoSepError
from immunosep.web.deps import TransactionRoute, current_actor, get_db, logs_access
from immunosep.web.forms import FormErrors, checked, form_data, number, text
from immunosep.web.pages._render import flash, render

router = APIRouter(route_class=TransactionRoute)
RECENT = "pharmacy_recent"


def _remember(request: Request, pseudonym: str) -> list[str]:
    """The pharmacist's recently opened patients (in the session), newest first."""
    recent = [p for p in request.session.get(RECENT, []) if p != pseudonym]
    recent = [pseudonym, *recent][:12]
    request.session[RECENT] = recent
    return recent


@router.get("/pharmacy", dependencies=[Depends(logs_access)])
def preparations(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "see_regimen")
    values: dict[str, Any] = dict(request.query_params)
    errors = FormErrors()
    pseudonym = text(values, "pseudonym").upper()
    day = number(values, "study_day", errors, integer=True) if values.get("study_day") else None
    regimen, slots = None, []
    if pseudonym and not errors:
        try:
            regimen = day_regimen(db, actor, pseudonym, int(day or 1))
        except ImmunoSepError as exc:
            errors.add_error(exc, {"study_day": "study_day"})
        else:
            _remember(request, pseudonym)
            logged = {(a.study_day, a.hour, a.route): a for a in administrations(db, actor, pseudonym)}
            for dose in regimen.doses:
                for hour in due_hours(regimen.study_day, dose.interval_hours):
                    slots.append((dose, hour, logged.get((regimen.study_day, hour, dose.route))))
    return render(
        request,
        "pharmacy.html",
        actor,
        db,
        title="Preparations",
        v={"pseudonym": pseudonym, "study_day": values.get("study_day", "1")},
        errors=errors,
        regimen=regimen,
        slots=sorted(slots, key=lambda s: (s[1], s[0].route)),
        recent=request.session.get(RECENT, []),
        today=patients_on_treatment(db, actor),
    )


@router.post("/pharmacy/dose")
def log_dose(
    request: Request,
    actor: Actor = Depends(current_actor),
    db: Session = Depends(get_db),
    form: FormData = Depends(form_data),
) -> Response:
    errors = FormErrors()
    pseudonym = text(form, "pseudonym").upper()
    day = number(form, "study_day", errors, required=True, integer=True)
    hour = number(form, "hour", errors, required=True, integer=True)
    given = checked(form, "given")
    if errors:
        flash(request, "bad", "; ".join(f"{k}: {v}" for k, v in errors.items()))
    else:
        assert day is not None and hour is not None
        try:
            record_dose(
                db,
                actor,
                pseudonym,
                int(day),
                text(form, "route"),
                int(hour),
                given=given,
                missed_reason=text(form, "missed_reason"),
            )
            flash(
                request,
                "ok",
                f"{pseudonym} day {int(day)} {int(hour):02d}:00 {text(form, 'route').upper()}: "
                + ("given" if given else "missed")
                + ".",
            )
        except ImmunoSepError as exc:
            db.rollback()
            flash(request, "bad", exc.message)
    return RedirectResponse(f"/pharmacy?pseudonym={pseudonym}&study_day={int(day or 1)}", status_code=303)


@router.get("/pharmacy/log")
def dosing_log(
    request: Request, actor: Actor = Depends(current_actor), db: Session = Depends(get_db)
) -> Response:
    require(actor, "open_pharmacy_log")
    pseudonym = text(dict(request.query_params), "pseudonym").upper()
    errors = FormErrors()
    rows = []
    if pseudonym:
        try:
            rows = administrations(db, actor, pseudonym)
        except ImmunoSepError as exc:
            errors.add_error(exc, {})
            errors.setdefault("pseudonym", errors.pop("_form"))
    return render(
        request,
        "dosing_log.html",
        actor,
        db,
        title="Dosing log",
        v={"pseudonym": pseudonym},
        errors=errors,
        rows=rows,
        recent=request.session.get(RECENT, []),
    )
